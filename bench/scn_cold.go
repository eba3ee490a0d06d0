package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/aegis-platform/aegis/client"
)

// Scenario 5: how much slower the first response is than a warm one, right
// after a deploy and right after a server restart.
func init() {
	register(Scenario{ID: 5, Name: "cold start: first response after deploy and after restart", Run: runCold})
}

// withNonce returns wasm with a custom section appended whose payload is
// nonce. Custom sections do not change what a module does, but they change
// its bytes, and so its SHA-256 and wazero's compilation cache key: a
// deploy of the result compiles from scratch, as a real new version would.
func withNonce(wasm []byte, nonce string) []byte {
	const name = "aegis-bench-nonce"
	var payload []byte
	payload = binary.AppendUvarint(payload, uint64(len(name)))
	payload = append(payload, name...)
	payload = append(payload, nonce...)
	out := append([]byte(nil), wasm...)
	out = append(out, 0) // custom section id
	out = binary.AppendUvarint(out, uint64(len(payload)))
	return append(out, payload...)
}

// coldState is the server the scenario is measuring; a restart replaces it.
type coldState struct {
	env      *Env
	in       *Instance
	key      string
	manifest string
	hc       *http.Client
}

func (s *coldState) url() string { return s.in.Gateway + "/echo" }

// warm is the median of several sequential requests after one that is
// thrown away, so the baseline is a truly warm instance and connection.
func (s *coldState) warm(ctx context.Context) (float64, error) {
	n := 21
	if s.env.Quick {
		n = 5
	}
	var xs []float64
	for i := 0; i <= n; i++ {
		d, err := echoPost(ctx, s.hc, s.url(), s.key)
		if err != nil {
			return 0, err
		}
		if i > 0 {
			xs = append(xs, ms(d))
		}
	}
	return Median(xs), nil
}

// deploy uploads wasm and activates it as a new version of the echo app,
// returning how long the deploy call took (the upload is not counted: it
// depends on the network, not on Aegis).
func (s *coldState) deploy(ctx context.Context, wasm []byte) (time.Duration, error) {
	sum := sha256.Sum256(wasm)
	hexsum := hex.EncodeToString(sum[:])
	if err := s.in.Admin.UploadModule(ctx, hexsum, wasm); err != nil {
		return 0, err
	}
	start := time.Now()
	_, err := s.in.Admin.Deploy(ctx, "echo", client.DeployRequest{Manifest: s.manifest, File: "aegis.yaml", Modules: map[string]string{"echo": hexsum}})
	return time.Since(start), err
}

// restart stops the server and starts a new one on the same data
// directory, returning how long the start took. When dropCache is set the
// compilation cache is deleted first, so the restore compiles every module.
func (s *coldState) restart(ctx context.Context, dropCache bool) (time.Duration, error) {
	s.in.Close()
	s.hc.CloseIdleConnections()
	if dropCache {
		if err := os.RemoveAll(filepath.Join(s.in.DataDir, "cache")); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	in, err := s.env.StartServer(ctx, s.in.DataDir)
	if err != nil {
		return 0, fmt.Errorf("restart: %w", err)
	}
	d := time.Since(start)
	s.in = in
	return d, nil
}

func runCold(ctx context.Context, env *Env) ([]*Result, error) {
	wasm, manifest, err := echoApp(ctx, env)
	if err != nil {
		return nil, err
	}
	in, key, err := startEcho(ctx, env)
	if err != nil {
		return nil, err
	}
	s := &coldState{env: env, in: in, key: key, manifest: manifest, hc: newBenchClient()}
	defer func() { s.in.Close() }()

	// After a deploy: every round deploys module bytes never seen before.
	var deploys []float64
	round := 0
	baseDeploy, subjDeploy, deploySamples, err := Alternate(env.Rounds, func() (float64, error) { return s.warm(ctx) }, func() (float64, error) {
		round++
		d, err := s.deploy(ctx, withNonce(wasm, fmt.Sprintf("deploy-%d-%d", time.Now().UnixNano(), round)))
		if err != nil {
			return 0, fmt.Errorf("deploy: %w", err)
		}
		deploys = append(deploys, ms(d))
		first, err := echoPost(ctx, s.hc, s.url(), s.key)
		return ms(first), err
	})
	if err != nil {
		return nil, fmt.Errorf("after deploy: %w", err)
	}

	// After a restart, with the compilation cache the previous server left.
	var restarts []float64
	baseRestart, subjRestart, restartSamples, err := Alternate(env.Rounds, func() (float64, error) { return s.warm(ctx) }, func() (float64, error) {
		d, err := s.restart(ctx, false)
		if err != nil {
			return 0, err
		}
		restarts = append(restarts, ms(d))
		first, err := echoPost(ctx, s.hc, s.url(), s.key)
		return ms(first), err
	})
	if err != nil {
		return nil, fmt.Errorf("after restart: %w", err)
	}

	// What the cache saves: the same restart with the cache deleted.
	var uncached, uncachedFirst []float64
	for i := 0; i < env.Rounds; i++ {
		d, err := s.restart(ctx, true)
		if err != nil {
			return nil, err
		}
		first, err := echoPost(ctx, s.hc, s.url(), s.key)
		if err != nil {
			return nil, fmt.Errorf("after uncached restart: %w", err)
		}
		uncached, uncachedFirst = append(uncached, ms(d)), append(uncachedFirst, ms(first))
	}

	afterDeploy := coldResult("first response after deploy", baseDeploy, subjDeploy, deploySamples, 5)
	afterDeploy.Met = quickMet(env, subjDeploy-baseDeploy <= 5)
	afterDeploy.Notes = fmt.Sprintf("extra over warm: %.2f ms. Each round deploys examples/echo with a fresh custom section, so its bytes are new and nothing is cached: "+
		"the deploy compiles the module and creates the first instance before it returns, then one request is timed. Warm: median of sequential keep-alive requests", subjDeploy-baseDeploy)
	deployTime := &Result{Name: "deploy of a new module version", Unit: "ms", Subject: Median(deploys),
		Notes: "POST /v1/apps/echo/deploy with module bytes never compiled before (upload not counted): parse, compile, first instance, persist, activate"}
	afterRestart := coldResult("first response after restart", baseRestart, subjRestart, restartSamples, 50)
	afterRestart.Met = quickMet(env, subjRestart-baseRestart <= 50)
	afterRestart.Notes = fmt.Sprintf("extra over warm: %.2f ms, including a new TCP connection. Close, then a new server on the same data directory "+
		"(in the same process): Restore rebuilt the echo app from JetStream and wazero's on-disk cache before the listeners opened", subjRestart-baseRestart)
	restartTime := &Result{Name: "server restart, compile cache on disk", Unit: "ms", Subject: Median(restarts),
		Notes: "server.New + Start on an existing data directory with one app: embedded JetStream, restore, listeners"}
	restartCold := &Result{Name: "server restart, compile cache deleted", Unit: "ms", Subject: Median(uncached),
		Notes: fmt.Sprintf("the same restart after deleting DATA/cache, so the restore compiles the module; first response after it: %.2f ms", Median(uncachedFirst))}
	return []*Result{afterDeploy, deployTime, afterRestart, restartTime, restartCold}, nil
}

// coldResult is a first response against a warm one; the target
// is on the difference, which the Notes state.
func coldResult(name string, warm, first float64, samples []Pair, extraMS float64) *Result {
	r := &Result{Name: name, Unit: "ms", Subject: first, Baseline: warm, BaseName: "warm response", Samples: samples,
		RatioNote: "subject/baseline; the target is on the difference", Target: fmt.Sprintf("≤ +%g ms", extraMS)}
	if warm != 0 {
		r.Ratio = first / warm
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
