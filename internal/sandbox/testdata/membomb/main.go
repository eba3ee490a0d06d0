// Command membomb allocates until memory runs out.
package main

import aegis "github.com/aegis-platform/aegis/sdk/go"

var hold [][]byte

func init() {
	aegis.HandleHTTP(func(r *aegis.Request) *aegis.Response {
		for {
			b := make([]byte, 1<<20)
			b[0] = 1
			hold = append(hold, b)
		}
	})
}

func main() {}
