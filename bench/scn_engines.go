package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"runtime"
	"time"
)

// Scenario 10 puts the two engines the sandbox builds with side by side:
// the same Go echo through the same gateway, served by an `aegis server`
// built as released (wazy) and one built with -tags aegis_wazero, each a
// child process, driven by wrk in alternating rounds with a bare net/http
// echo as the common baseline. It is the evidence the engine choice rests
// on (RATIONALE.md), measured again on every full run.
func init() {
	register(Scenario{ID: 10, Name: "engines side by side: Go echo on the default build and on -tags aegis_wazero", Run: runEngines})
}

// engineBuild is one child server and what the scenario learns of it.
type engineBuild struct {
	tag    string // build tag; "" for the default build
	engine string // as `aegis version` names it
	child  *childServer
	key    string
	script string
	rps    []Pair // against the bare baseline
	p99    []Pair
}

func runEngines(ctx context.Context, env *Env) ([]*Result, error) {
	wrk, err := findWrk(ctx)
	if err != nil {
		return nil, err
	}
	wasm, manifest, err := echoApp(ctx, env)
	if err != nil {
		return nil, err
	}
	builds := []*engineBuild{{tag: ""}, {tag: "aegis_wazero"}}
	defer func() {
		for _, b := range builds {
			if b.child != nil {
				b.child.stop()
			}
		}
	}()
	dir := env.TempDir()
	hc := newBenchClient()
	for i, b := range builds {
		bin, err := buildAegis(ctx, env, b.tag)
		if err != nil {
			return nil, err
		}
		if b.engine, err = engineOf(ctx, bin); err != nil {
			return nil, err
		}
		if b.child, err = startChild(ctx, bin, env.TempDir(), env.Verbose); err != nil {
			return nil, fmt.Errorf("%s: %w", b.engine, err)
		}
		if _, err := b.child.Deploy(ctx, "echo", manifest, wasm, "echo"); err != nil {
			return nil, fmt.Errorf("%s: deploy echo: %w", b.engine, err)
		}
		if b.key, err = b.child.Key(ctx, "bench"); err != nil {
			return nil, err
		}
		if _, err := echoPost(ctx, hc, b.child.Gateway+"/echo", b.key); err != nil {
			return nil, fmt.Errorf("%s: %w", b.engine, err)
		}
		if b.script, err = writeWrkScript(dir, fmt.Sprintf("engine%d.lua", i), b.key); err != nil {
			return nil, err
		}
		if !env.Quick {
			if _, err := runWrk(ctx, wrk, b.script, b.child.Gateway+"/echo", time.Second); err != nil {
				return nil, fmt.Errorf("%s warm-up: %w", b.engine, err)
			}
		}
	}
	if builds[0].engine == builds[1].engine {
		return nil, fmt.Errorf("both builds run %s: the build tag chose nothing", builds[0].engine)
	}
	baseURL, stopBase, err := startBareEcho()
	if err != nil {
		return nil, err
	}
	defer stopBase()
	baseScript, err := writeWrkScript(dir, "engine-base.lua", "")
	if err != nil {
		return nil, err
	}

	dur := 5 * time.Second
	if env.Quick {
		dur = time.Second
	}
	var between []Pair // default build's req/s, then the other's
	for i := 0; i < env.Rounds; i++ {
		base, err := runWrk(ctx, wrk, baseScript, baseURL, dur)
		if err != nil {
			return nil, fmt.Errorf("baseline round %d: %w", i+1, err)
		}
		var rps [2]float64
		for j, b := range builds {
			r, err := runWrk(ctx, wrk, b.script, b.child.Gateway+"/echo", dur)
			if err != nil {
				return nil, fmt.Errorf("%s round %d: %w", b.engine, i+1, err)
			}
			rps[j] = r.rps
			b.rps = append(b.rps, Pair{Baseline: base.rps, Subject: r.rps})
			b.p99 = append(b.p99, Pair{Baseline: base.p99.Seconds() * 1e3, Subject: r.p99.Seconds() * 1e3})
		}
		between = append(between, Pair{Baseline: rps[0], Subject: rps[1]})
	}

	settings := fmt.Sprintf("wrk -t%d -c%d -d%s --latency, %d alternating rounds (bare, default build, -tags aegis_wazero), loopback, each server a child process; wrk shares the machine's %d cores with the servers",
		wrkThreads, wrkConns, dur, env.Rounds, runtime.NumCPU())
	var out []*Result
	for _, b := range builds {
		how := "default build"
		if b.tag != "" {
			how = "-tags " + b.tag
		}
		r := pairResult(fmt.Sprintf("Go echo throughput, %s (%s)", b.engine, how), "req/s", "bare net/http", b.rps, true)
		r.Target = "report"
		r.Notes = "examples/echo with an API key through a built `aegis server`. " + settings
		l := pairResult(fmt.Sprintf("Go echo p99 latency, %s", b.engine), "ms", "bare net/http", b.p99, false)
		l.Target = "report"
		rss, err := b.child.rss()
		if err != nil {
			return nil, err
		}
		m := &Result{Name: fmt.Sprintf("server RSS after the load, %s", b.engine), Unit: "MB", Subject: mb(rss), Target: "report",
			Notes: "VmRSS of the child server after every round: embedded JetStream, the echo app and its warm instances"}
		out = append(out, r, l, m)
	}
	cmp := pairResult(fmt.Sprintf("Go echo throughput, %s / %s", builds[1].engine, builds[0].engine), "req/s", builds[0].engine, between, true)
	cmp.Target = "report"
	cmp.Notes = "the two builds' throughput in the same rounds: below 1 means the default engine serves more"
	return append(out, cmp), nil
}

// engineOf asks a built aegis binary which engine it runs guests on.
func engineOf(ctx context.Context, bin string) (string, error) {
	out, err := exec.CommandContext(ctx, bin, "version", "-o", "json").Output()
	if err != nil {
		return "", fmt.Errorf("%s version: %w", bin, err)
	}
	var v struct {
		Engine string `json:"engine"`
	}
	if err := json.Unmarshal(out, &v); err != nil || v.Engine == "" {
		return "", fmt.Errorf("%s version: no engine in %q", bin, out)
	}
	return v.Engine, nil
}
