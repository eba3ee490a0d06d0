// Command loop never returns: it spins on the CPU (path /spin) or sleeps
// (path /sleep), so tests can check that a timeout stops both.
package main

import (
	"time"

	aegis "github.com/aegis-platform/aegis/sdk/go"
)

var sink int

func init() {
	aegis.HandleHTTP(func(r *aegis.Request) *aegis.Response {
		if r.Path == "/sleep" {
			time.Sleep(time.Hour)
		}
		for i := 0; ; i++ {
			sink += i
		}
	})
}

func main() {}
