package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aegis-platform/aegis/client"
)

// Scenario 8: the memory of a real `aegis server` process, idle and with
// warm instances. It runs the built binary as a child so that nothing the
// benchmark itself holds is counted.
func init() {
	register(Scenario{ID: 8, Name: "memory: idle server RSS and memory per warm instance", Run: runMemory})
}

var fixtureGoHold = filepath.Join("bench", "testdata", "gohold")

const holdManifest = `app: hold
functions:
  hold:
    source: .
    triggers:
      - http: { method: POST, path: /hold, auth: [api-key] }
    # Timeout and concurrency leave room for every held instance to be
    # created and used at once; the rest is examples/echo's limits.
    limits: { timeout: 10s, memory: 64MiB, concurrency: 100, max_body: 64KiB, max_response: 64KiB }
`

// childServer is an `aegis server` process on loopback ports.
type childServer struct {
	cmd  *exec.Cmd
	done chan error
	*Instance
}

var listenLine = regexp.MustCompile(`aegis: gateway on ([^\s,]+), admin API on ([^\s,]+)[ ,]`)

// startChild runs the aegis binary on a data directory with ports picked
// by the kernel, and returns once the admin API answers its health check.
// The addresses come from the line the server prints when it listens.
func startChild(ctx context.Context, bin, dataDir string, verbose bool) (*childServer, error) {
	cmd := exec.CommandContext(ctx, bin, "--data", dataDir, "server", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start aegis server: %w", err)
	}
	c := &childServer{cmd: cmd, done: make(chan error, 1)}
	addrs := make(chan []string, 1)
	go func() {
		// Keep reading to the end: a server blocked on a full stderr
		// pipe would stop serving.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			if verbose {
				fmt.Fprintln(os.Stderr, sc.Text())
			}
			if m := listenLine.FindStringSubmatch(sc.Text()); m != nil && !found {
				found = true
				addrs <- m[1:]
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		c.done <- cmd.Wait()
	}()
	var a []string
	select {
	case a = <-addrs:
	case err := <-c.done:
		return nil, fmt.Errorf("aegis server exited before listening: %v", err)
	case <-time.After(30 * time.Second):
		c.stop()
		return nil, errors.New("aegis server did not listen within 30s")
	}
	token, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	if err != nil {
		c.stop()
		return nil, err
	}
	c.Instance = &Instance{Admin: client.New(a[1], strings.TrimSpace(string(token))), Gateway: a[0], DataDir: dataDir}
	// Bounded: a wrong address read off the line must fail the scenario,
	// never hang the run.
	deadline := time.Now().Add(30 * time.Second)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if err := c.Admin.Health(ctx); err == nil {
			return c, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.stop()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("aegis server's admin API at %s did not answer its health check within 30s", a[1])
}

func (c *childServer) rss() (uint64, error) { return vmRSS(c.cmd.Process.Pid) }

// stop asks the server to drain and exit, and kills it if it does not.
func (c *childServer) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// buildAegis builds cmd/aegis into the run's scratch directory, with the
// build tags given (none: the default engine).
func buildAegis(ctx context.Context, env *Env, tags ...string) (string, error) {
	bin := filepath.Join(env.TempDir(), "aegis")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", strings.Join(tags, ","), "-o", bin, "./cmd/aegis")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build aegis: %w\n%s", err, out)
	}
	return bin, nil
}

// holdAll sends n concurrent requests that each keep their instance for
// hold, and returns how many distinct instances answered.
func holdAll(ctx context.Context, hc *http.Client, url, key string, n int, hold time.Duration) (int, error) {
	body := fmt.Sprintf(`{"message":%q,"hold_ms":%d}`, echoMessage, hold.Milliseconds())
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		instances = map[string]bool{}
		errs      []error
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := holdOnce(ctx, hc, url, key, body)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			instances[id] = true
		}()
	}
	wg.Wait()
	return len(instances), errors.Join(errs...)
}

func holdOnce(ctx context.Context, hc *http.Client, url, key, body string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	var r struct{ Message, Instance string }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &r) != nil || r.Message != echoMessage || r.Instance == "" {
		return "", fmt.Errorf("POST %s: status %d: %s", url, resp.StatusCode, b)
	}
	return r.Instance, nil
}

func runMemory(ctx context.Context, env *Env) ([]*Result, error) {
	settle, held, hold := time.Second, 32, time.Second
	if env.Quick {
		settle, held, hold = 300*time.Millisecond, 8, 300*time.Millisecond
	}
	bin, err := buildAegis(ctx, env)
	if err != nil {
		return nil, err
	}
	echoWasm, echoManifest, err := echoApp(ctx, env)
	if err != nil {
		return nil, err
	}
	holdWasm, err := env.GoModule(ctx, fixtureGoHold)
	if err != nil {
		return nil, err
	}

	// Idle: a fresh data directory each round, nothing deployed.
	var idle []float64
	for i := 0; i < env.Rounds; i++ {
		c, err := startChild(ctx, bin, env.TempDir(), env.Verbose)
		if err != nil {
			return nil, err
		}
		time.Sleep(settle)
		rss, err := c.rss()
		c.stop()
		if err != nil {
			return nil, err
		}
		idle = append(idle, mb(rss))
	}

	c, err := startChild(ctx, bin, env.TempDir(), env.Verbose)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	before, err := c.rss()
	if err != nil {
		return nil, err
	}
	key, err := c.Key(ctx, "bench")
	if err != nil {
		return nil, err
	}
	if _, err := c.Deploy(ctx, "echo", echoManifest, echoWasm, "echo"); err != nil {
		return nil, fmt.Errorf("deploy echo: %w", err)
	}
	hc := newBenchClient()
	if _, err := echoPost(ctx, hc, c.Gateway+"/echo", key); err != nil {
		return nil, err
	}
	time.Sleep(settle)
	withEcho, err := c.rss()
	if err != nil {
		return nil, err
	}

	if _, err := c.Deploy(ctx, "hold", holdManifest, holdWasm, "hold"); err != nil {
		return nil, fmt.Errorf("deploy hold: %w", err)
	}
	// One request first: the deploy made one instance, and it must have
	// served before the baseline is read, as the others will have.
	if _, err := holdAll(ctx, hc, c.Gateway+"/hold", key, 1, 0); err != nil {
		return nil, err
	}
	time.Sleep(settle)
	oneInstance, err := c.rss()
	if err != nil {
		return nil, err
	}
	got, err := holdAll(ctx, hc, c.Gateway+"/hold", key, held, hold)
	if err != nil {
		return nil, fmt.Errorf("hold %d instances: %w", held, err)
	}
	if got < 2 {
		return nil, fmt.Errorf("hold %d instances: only %d answered", held, got)
	}
	time.Sleep(settle)
	manyInstances, err := c.rss()
	if err != nil {
		return nil, err
	}
	perInstance := (mb(manyInstances) - mb(oneInstance)) / float64(got-1)

	idleR := &Result{Name: "idle server RSS", Unit: "MB", Subject: Median(idle), Target: "≤ 60 MB"}
	idleR.Met = quickMet(env, idleR.Subject <= 60)
	idleR.Notes = fmt.Sprintf("VmRSS of a built `aegis server` process (fresh data directory, embedded JetStream, nothing deployed) %s after it answered /v1/health; median of %d starts. MB = 10^6 bytes",
		settle, env.Rounds)
	echoR := &Result{Name: "server RSS with examples/echo deployed", Unit: "MB", Subject: mb(withEcho), Baseline: mb(before), BaseName: "same process before the deploy",
		Ratio: float64(withEcho) / float64(before), RatioNote: "subject/baseline",
		Notes: "after one deploy (compile, one warm instance) and one request"}
	instR := &Result{Name: "memory per warm instance", Unit: "MB", Subject: perInstance,
		Notes: fmt.Sprintf("RSS growth from 1 to %d warm instances of one function, divided by %d: %d concurrent requests each kept an instance for %s "+
			"(bench/testdata/gohold: examples/echo plus a sleep and an instance id in the reply, which counted %d distinct instances). RSS %.1f → %.1f MB",
			got, got-1, held, hold, got, mb(oneInstance), mb(manyInstances))}
	return []*Result{idleR, echoR, instR}, nil
}

// mb is bytes in decimal megabytes, the unit of the memory target.
func mb(b uint64) float64 { return float64(b) / 1e6 }
