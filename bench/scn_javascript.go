package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// Scenario 18: a function written in JavaScript, a wasi:http component
// built with componentize-js, against the Go echo. Two figures:
//
//   - cold start: compile the module on an engine with an empty cache and
//     answer one request. The component carries a JavaScript engine
//     (13 MB), which is what a first deploy pays; the server's disk cache
//     spares a restart most of it.
//   - sustained invoke: Function.Invoke one after the other. A component
//     gets a fresh instance for every invocation (its runtime cannot serve
//     two requests on one), drawn from a small pool refilled in the
//     background, so the figure is bounded by how fast instances are made.
func init() {
	register(Scenario{ID: 18, Name: "JavaScript component (componentize-js) vs Go echo: cold start and sustained invoke", Run: runJSComponent})
}

var fixtureJSEcho = filepath.Join("bench", "testdata", "jsecho")

func runJSComponent(ctx context.Context, env *Env) ([]*Result, error) {
	js, err := env.JSComponent(ctx, fixtureJSEcho)
	if err != nil {
		return nil, err
	}
	goEcho, err := env.GoModule(ctx, fixtureGoEcho)
	if err != nil {
		return nil, err
	}

	coldStart := func(wasm []byte) func() (float64, error) {
		return func() (float64, error) {
			eng, err := newBenchEngine(ctx)
			if err != nil {
				return 0, err
			}
			defer eng.Close(ctx)
			start := time.Now()
			f, err := newBenchFunction(ctx, eng, wasm, "")
			if err != nil {
				return 0, err
			}
			defer f.Close(ctx)
			if err := invoker(ctx, f, true)(); err != nil {
				return 0, err
			}
			return ms(time.Since(start)), nil
		}
	}
	rounds := env.Rounds
	b, s, samples, err := Alternate(rounds, coldStart(goEcho), coldStart(js))
	if err != nil {
		return nil, fmt.Errorf("cold start: %w", err)
	}
	cold := ratioResult("cold start (compile + first answer), JavaScript echo", "ms", "Go echo", b, s, samples)
	cold.RatioNote = "JavaScript / Go"
	cold.Target = "report"
	cold.Notes = "A new engine with an empty compilation cache each round: Compile, NewFunction (its first instance) and one Invoke. " +
		"The component embeds a JavaScript engine; a restart with the server's disk cache pays a fraction of this."

	b, s, samples, err = alternateInvokes(ctx, env, goEcho, js)
	if err != nil {
		return nil, err
	}
	warm := ratioResult("sustained invoke, JavaScript echo", "ns/op", "Go echo (warm instance)", b, s, samples)
	warm.RatioNote = "JavaScript / Go"
	warm.Target = "report"
	warm.Notes = "Function.Invoke back to back, POST /echo with a 5-byte body. The Go echo reuses its warm instance; " +
		"the component is given a fresh one each time (isolation per request is forced for components), so this is close to the cost of making an instance."
	return []*Result{cold, warm}, nil
}
