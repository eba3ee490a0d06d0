// Command gokv performs a number of key-value calls in one invocation, so
// the cost of one host call can be found by difference: the body is
// "get N" or "put N", and the handler answers with how many calls it made.
// N = 0 runs the same invocation with no kv call at all.
package main

import (
	"strconv"
	"strings"

	aegis "github.com/aegis-platform/aegis/sdk/go"
)

// value is what every put stores: small, like most table rows.
var value = []byte(strings.Repeat("v", 64))

func init() {
	aegis.HandleHTTP(func(r *aegis.Request) *aegis.Response {
		op, count, _ := strings.Cut(string(r.Body), " ")
		n, err := strconv.Atoi(count)
		if err != nil {
			return aegis.Error(400, "body must be \"get N\" or \"put N\"")
		}
		kv := aegis.KV("bench")
		for i := 0; i < n; i++ {
			switch op {
			case "get":
				_, err = kv.Get("k")
			case "put":
				err = kv.Put("k", value)
			default:
				return aegis.Error(400, "unknown operation "+op)
			}
			if err != nil {
				return aegis.Error(500, op+": "+err.Error())
			}
		}
		return aegis.Text(200, strconv.Itoa(n))
	})
}

func main() {}
