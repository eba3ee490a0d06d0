// Command stdout writes to stdout, stderr and the log call; path /flood
// writes far more than the per-invocation output budget.
package main

import (
	"fmt"
	"os"
	"strings"

	aegis "github.com/aegis-platform/aegis/sdk/go"
)

func init() {
	aegis.HandleHTTP(func(r *aegis.Request) *aegis.Response {
		if r.Path == "/flood" {
			line := strings.Repeat("x", 1023)
			for i := 0; i < 1024; i++ {
				fmt.Println(line)
			}
			return nil
		}
		fmt.Println("line one")
		fmt.Print("line two\nline three")
		fmt.Fprintln(os.Stderr, "a warning")
		aegis.Log("error", "an error")
		return nil
	})
}

func main() {}
