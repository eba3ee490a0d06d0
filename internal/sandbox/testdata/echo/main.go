// Command echo answers with the request body, and counts invocations in a
// global so tests can tell a reused instance from a fresh one.
package main

import (
	"strconv"

	aegis "github.com/aegis-platform/aegis/sdk/go"
)

var count int

func init() {
	aegis.HandleHTTP(func(r *aegis.Request) *aegis.Response {
		count++
		return &aegis.Response{
			Status: 200,
			Header: map[string]string{
				"X-Count":  strconv.Itoa(count),
				"X-Method": r.Method,
				"X-Path":   r.Path,
				"X-Param":  r.Params["id"],
				"X-Query":  r.Query.Get("q"),
				"X-Header": r.Header.Get("X-Test"),
			},
			Body: r.Body,
		}
	})
}

// benchNoop is the baseline for BenchmarkRawCall: an exported function
// that does nothing, called straight through wazero.
//
//go:wasmexport bench_noop
func benchNoop() int32 { return 0 }

func main() {}
