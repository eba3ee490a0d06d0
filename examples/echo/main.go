// Command echo answers POST /echo with the message it was sent. It is the
// smallest useful function: no grants at all, so it can touch nothing but
// its own request, and it serves as the workload the benchmarks measure,
// which is why it is kept free of needless work.
package main

import (
	"encoding/json"
	"net/http"

	aegis "github.com/aegis-platform/aegis/sdk/go"
)

// main never runs: a c-shared WebAssembly module is driven by the host
// through its exports, and the handler is registered in init. Package main
// still needs the function to build.
func main() {}

func init() { aegis.HandleHTTP(echo) }

// message is the whole request and response body. Decoding into a fixed
// struct, rather than a map, costs one string allocation and drops any
// other fields, so the reply is exactly {"message": ...} whatever was sent.
type message struct {
	Message string `json:"message"`
}

func echo(req *aegis.Request) *aegis.Response {
	m, errMsg := parse(req.Body)
	if errMsg != "" {
		return aegis.Error(http.StatusBadRequest, errMsg)
	}
	return aegis.JSON(http.StatusOK, &m)
}

// parse is separate from the handler so it can be tested without the
// sandbox. Its error messages are fixed strings that never quote the body.
//
// json.Unmarshal is the idiomatic choice and is kept here, but its
// reflection is about a fifth of this function's time inside the sandbox
// (docs/performance.md). A function on a hot path with a body this fixed
// can read it by hand instead, as sdk/go/meta.go does for the request meta,
// with json.Unmarshal as the reference its tests and fuzz target compare
// against.
func parse(body []byte) (message, string) {
	var m message
	if err := json.Unmarshal(body, &m); err != nil {
		return m, `body must be a JSON object with a string field "message"`
	}
	if m.Message == "" {
		return m, `"message" is required`
	}
	return m, ""
}
