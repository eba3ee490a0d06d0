// Command huge answers with a body of the size given in the request body
// (in bytes, decimal).
package main

import (
	"bytes"
	"strconv"

	aegis "github.com/aegis-platform/aegis/sdk/go"
)

func init() {
	aegis.HandleHTTP(func(r *aegis.Request) *aegis.Response {
		n, err := strconv.Atoi(string(r.Body))
		if err != nil {
			return aegis.Error(400, err.Error())
		}
		return &aegis.Response{Status: 200, Body: bytes.Repeat([]byte("x"), n)}
	})
}

func main() {}
