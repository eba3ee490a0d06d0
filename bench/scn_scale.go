package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Scenario 7: does Aegis slow down when it holds many functions? Two
// servers run side by side, one with a single echo function and one with
// many (each its own function and route, all the echo module); requests
// alternate between them.
func init() {
	register(Scenario{ID: 7, Name: "scale: many deployed functions and routes vs one", Run: runScale})
}

// scaleManifest is one app with the functions fI for I in [from, to), fI
// on POST /fI/echo, with the limits of examples/echo.
func scaleManifest(app string, from, to int) (manifest string, functions []string) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "app: %s\nfunctions:\n", app)
	for i := from; i < to; i++ {
		name := "f" + strconv.Itoa(i)
		functions = append(functions, name)
		fmt.Fprintf(&sb, "  %s:\n    source: ./echo\n    triggers:\n      - http: { method: POST, path: /%s/echo, auth: [api-key] }\n", name, name)
		sb.WriteString("    limits: { timeout: 1s, memory: 64MiB, concurrency: 100, max_body: 64KiB, max_response: 64KiB }\n")
	}
	return sb.String(), functions
}

// memSample is the bench process's memory after a full collection.
type memSample struct {
	heapInuse, rss uint64
}

// sampleMemory collects garbage and returns freed pages to the OS first,
// so consecutive samples differ by what is really held.
func sampleMemory() (memSample, error) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, err := vmRSS(os.Getpid())
	return memSample{heapInuse: ms.HeapInuse, rss: rss}, err
}

// vmRSS reads a process's resident set size from /proc (Linux only).
func vmRSS(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read RSS: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("read RSS: no VmRSS in /proc/%d/status", pid)
}

// delta is a-b in MB as a signed figure (memory can go down).
func delta(a, b uint64) float64 { return mb(a) - mb(b) }

// latencies sends count sequential echo requests over keep-alive
// connections, spread round-robin over urls, and returns the median and
// 99th percentile in milliseconds.
func latencies(ctx context.Context, hc *http.Client, urls []string, key string, count int) (p50, p99 float64, err error) {
	xs := make([]float64, 0, count)
	for i := 0; i < count; i++ {
		d, err := echoPost(ctx, hc, urls[i%len(urls)], key)
		if err != nil {
			return 0, 0, err
		}
		xs = append(xs, ms(d))
	}
	sort.Float64s(xs)
	return Median(xs), xs[min(len(xs)-1, len(xs)*99/100)], nil
}

// scaleServer is one of the two servers, with the URLs of every route
// deployed on it so far and the time the deploys took.
type scaleServer struct {
	in     *Instance
	key    string
	urls   []string
	apps   int
	deploy time.Duration
}

func startScale(ctx context.Context, env *Env) (*scaleServer, error) {
	in, err := env.StartServer(ctx, "")
	if err != nil {
		return nil, err
	}
	key, err := in.Key(ctx, "bench")
	if err != nil {
		in.Close()
		return nil, err
	}
	return &scaleServer{in: in, key: key}, nil
}

// deployBatch deploys one more app holding the functions [from, to).
func (s *scaleServer) deployBatch(ctx context.Context, wasm []byte, from, to int) error {
	app := "scale" + strconv.Itoa(s.apps)
	manifest, fns := scaleManifest(app, from, to)
	start := time.Now()
	if _, err := s.in.Deploy(ctx, app, manifest, wasm, fns...); err != nil {
		return fmt.Errorf("deploy functions %d-%d: %w", from, to-1, err)
	}
	s.deploy += time.Since(start)
	s.apps++
	for _, f := range fns {
		s.urls = append(s.urls, s.in.Gateway+"/"+f+"/echo")
	}
	return nil
}

// memAvailable is the kernel's estimate of memory available for new
// allocations without swapping (Linux only).
func memAvailable() (uint64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "MemAvailable:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no MemAvailable in /proc/meminfo")
}

// deployMany deploys up to want functions in apps of batch functions each.
// Every function holds a warm instance, so this can need gigabytes; it
// stops early, rather than push a shared machine into the OOM killer,
// when the next batch would grow the process by more than half the memory
// that was available when it began.
func (s *scaleServer) deployMany(ctx context.Context, wasm []byte, want, batch int, before memSample) (stopped string, err error) {
	avail, err := memAvailable()
	if err != nil {
		return "", err
	}
	budget := avail / 2
	for n := 0; n < want; {
		next := min(n+batch, want)
		if n > 0 {
			m, err := sampleMemory()
			if err != nil {
				return "", err
			}
			perFn := float64(m.rss-min(m.rss, before.rss)) / float64(n)
			if grown := float64(m.rss - min(m.rss, before.rss)); grown+perFn*float64(next-n) > float64(budget) {
				return fmt.Sprintf("stopped at %d of %d functions: %d more at %.1f MB each would pass the memory budget of %.0f MB (half of MemAvailable at the start)",
					n, want, next-n, perFn/1e6, mb(budget)), nil
			}
		}
		if err := s.deployBatch(ctx, wasm, n, next); err != nil {
			return "", err
		}
		n = next
	}
	return "", nil
}

func runScale(ctx context.Context, env *Env) ([]*Result, error) {
	want, batch, requests := 1000, 100, 3000
	if env.Quick {
		want, batch, requests = 50, 25, 100
	}
	wasm, _, err := echoApp(ctx, env)
	if err != nil {
		return nil, err
	}
	m0, err := sampleMemory()
	if err != nil {
		return nil, err
	}
	one, err := startScale(ctx, env)
	if err != nil {
		return nil, err
	}
	defer one.in.Close()
	if err := one.deployBatch(ctx, wasm, 0, 1); err != nil {
		return nil, err
	}
	m1, err := sampleMemory()
	if err != nil {
		return nil, err
	}
	many, err := startScale(ctx, env)
	if err != nil {
		return nil, err
	}
	defer many.in.Close()
	stopped, err := many.deployMany(ctx, wasm, want, batch, m1)
	if err != nil {
		return nil, err
	}
	n := len(many.urls)
	m2, err := sampleMemory()
	if err != nil {
		return nil, err
	}
	// Every route answers once before timing; the many-functions side
	// then keeps cycling through all of them, as traffic spread over many
	// functions would (each request finds a different instance, cold in
	// the CPU caches).
	hc := newBenchClient()
	for _, s := range []*scaleServer{one, many} {
		if _, _, err := latencies(ctx, hc, s.urls, s.key, len(s.urls)); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	// A third series separates the two things the many-functions side
	// changes: the same server, but every request to its first route, so
	// the route table and key checks are those of the big deployment while
	// the instance is always the same warm one.
	var p50s, p99s, single []Pair
	for i := 0; i < env.Rounds; i++ {
		o50, _, err := latencies(ctx, hc, many.urls[:1], many.key, requests)
		if err != nil {
			return nil, fmt.Errorf("%d functions, one route, round %d: %w", n, i+1, err)
		}
		b50, b99, err := latencies(ctx, hc, one.urls, one.key, requests)
		if err != nil {
			return nil, fmt.Errorf("1 function, round %d: %w", i+1, err)
		}
		s50, s99, err := latencies(ctx, hc, many.urls, many.key, requests)
		if err != nil {
			return nil, fmt.Errorf("%d functions, round %d: %w", n, i+1, err)
		}
		p50s = append(p50s, Pair{Baseline: b50, Subject: s50})
		single = append(single, Pair{Baseline: b50, Subject: o50})
		p99s = append(p99s, Pair{Baseline: b99, Subject: s99})
	}

	label := fmt.Sprintf("%d functions", n)
	med := pairResult("route+invoke median latency, "+label, "ms", "1 function", p50s, false)
	med.Target = "≤ 1.10"
	med.Met = quickMet(env, med.Ratio <= 1.10)
	med.Notes = fmt.Sprintf("%d sequential keep-alive POSTs per round, round-robin over all %d routes /fI/echo in %d apps (one route for the baseline); both servers in the bench process, %d alternating rounds",
		requests, n, many.apps, env.Rounds)
	if stopped != "" {
		med.Notes += ". " + stopped
	}
	tail := pairResult("route+invoke p99 latency, "+label, "ms", "1 function", p99s, false)
	tail.Target = "≤ 1.10"
	tail.Met = quickMet(env, tail.Ratio <= 1.10)
	tail.Notes = "99th percentile of the same requests"

	one1 := pairResult("route+invoke median latency, "+label+" deployed, one route used", "ms", "1 function", single, false)
	one1.Notes = "the same requests to /f0/echo only on the server holding every function: what the size of the deployment costs when the traffic does not spread over it"
	deploy := &Result{Name: "deploy time, " + label, Unit: "ms", Subject: ms(many.deploy), Baseline: ms(one.deploy), BaseName: "1 function",
		Ratio: float64(many.deploy) / float64(one.deploy), RatioNote: "subject/baseline",
		Notes: fmt.Sprintf("sum of %d deploy calls of up to %d functions each (module upload included; every function uses the same module), each creating every function's first instance", many.apps, batch)}
	dOne, dMany := delta(m1.rss, m0.rss), delta(m2.rss, m1.rss)
	mem := &Result{Name: "server RSS, " + label, Unit: "MB", Subject: dMany, Baseline: dOne, BaseName: "1 function", RatioNote: "subject/baseline"}
	if dOne > 0 {
		mem.Ratio = dMany / dOne
	}
	perFn := (dMany - dOne) / float64(n-1)
	mem.Notes = fmt.Sprintf("growth of the bench process's RSS when the server started and deployed (after GC and FreeOSMemory), so each figure includes that server's embedded JetStream. "+
		"Go heap in use: +%.1f MB (1 function) vs +%.1f MB (%s). Per extra function (its warm instance included): %.2f MB RSS, %.2f MB heap",
		delta(m1.heapInuse, m0.heapInuse), delta(m2.heapInuse, m1.heapInuse), label,
		perFn, (delta(m2.heapInuse, m1.heapInuse)-delta(m1.heapInuse, m0.heapInuse))/float64(n-1))
	return []*Result{med, tail, one1, deploy, mem}, nil
}
