// Command panic panics on path /panic and answers "fine" otherwise.
package main

import aegis "github.com/aegis-platform/aegis/sdk/go"

func init() {
	aegis.HandleHTTP(func(r *aegis.Request) *aegis.Response {
		if r.Path == "/panic" {
			panic("boom")
		}
		return aegis.Text(200, "fine")
	})
}

func main() {}
