package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/aegis-platform/aegis/manifest"
)

// Scenario 17: the price of writing a Go function as a net/http handler.
// The same echo, once with aegis.HandleHTTP (the SDK's own request type)
// and once as an http.ServeMux behind aegis.Handle, invoked warm in one
// engine, alternately. The difference is what building the *http.Request,
// the mux's pattern match and buffering the ResponseWriter cost inside
// the guest.
func init() {
	register(Scenario{ID: 17, Name: "Go SDK shapes: net/http handler (aegis.Handle, ServeMux) vs aegis.HandleHTTP, warm invoke", Run: runSDKShape})
}

var fixtureGoHTTP = filepath.Join("bench", "testdata", "gohttp")

func runSDKShape(ctx context.Context, env *Env) ([]*Result, error) {
	fast, err := env.GoModule(ctx, fixtureGoEcho)
	if err != nil {
		return nil, err
	}
	shaped, err := env.GoModule(ctx, fixtureGoHTTP)
	if err != nil {
		return nil, err
	}
	b, s, samples, err := alternateInvokes(ctx, env, fast, shaped)
	if err != nil {
		return nil, err
	}
	r := ratioResult("invoke, Go echo as net/http ServeMux", "ns/op", "aegis.HandleHTTP echo", b, s, samples)
	r.RatioNote = "net/http shape / HandleHTTP"
	r.Target = "report"
	r.Notes = "Function.Invoke of a warm reuse instance, both modules built from the same SDK; the request is POST /echo with a 5-byte body. " +
		"What the ratio adds is paid inside the guest on every request; the gateway's own cost (scenario 1) is the same for both."
	return []*Result{r}, nil
}

// alternateInvokes measures Function.Invoke of an echo, back to back, of
// base and subject in one engine, in alternating rounds: the median ns/op
// of each and the rounds' pairs.
func alternateInvokes(ctx context.Context, env *Env, base, subject []byte) (float64, float64, []Pair, error) {
	eng, err := newBenchEngine(ctx)
	if err != nil {
		return 0, 0, nil, err
	}
	defer eng.Close(ctx)
	budget := invokeBudget(env)
	loops := make([]*perOpLoop, 2)
	for i, wasm := range [][]byte{base, subject} {
		f, err := newBenchFunction(ctx, eng, wasm, manifest.IsolationReuse)
		if err != nil {
			return 0, 0, nil, err
		}
		defer f.Close(ctx)
		if loops[i], err = calibrate(budget, invoker(ctx, f, true)); err != nil {
			return 0, 0, nil, fmt.Errorf("invoke: %w", err)
		}
	}
	return Alternate(env.Rounds, loops[0].nsPerOp, loops[1].nsPerOp)
}
