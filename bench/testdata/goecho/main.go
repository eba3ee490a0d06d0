// Command goecho is the minimal Go function: HTTP requests get their body
// back, events succeed. bench_noop is an exported empty function, the
// baseline a raw wazero call is measured on: entering a Go module costs more
// than entering a C one (the Go runtime switches stacks), so each guest
// language is compared with a raw call into the same module.
package main

import aegis "github.com/aegis-platform/aegis/sdk/go"

func init() {
	aegis.HandleHTTP(func(r *aegis.Request) *aegis.Response {
		return &aegis.Response{Status: 200, Body: r.Body}
	})
	aegis.HandleEvent(func(*aegis.Event) error { return nil })
}

//go:wasmexport bench_noop
func benchNoop() int32 { return 0 }

func main() {}
