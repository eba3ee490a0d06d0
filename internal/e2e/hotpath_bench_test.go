package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aegis-platform/aegis/internal/testkit/cputime"
	"github.com/aegis-platform/aegis/internal/testkit/wasmbuild"
)

// The hot-path benchmarks drive a real server over loopback with keep-alive
// clients in parallel, and compare it with a bare net/http handler doing the
// same JSON echo in the same process, so the ratio of the two is what to
// read (absolute figures move with the machine). Besides ns/op they report
// cpu-ns/op, the CPU the whole process spends per request, which moves far
// less when other work shares the machine:
//
//	go test ./internal/e2e -run '^$' -bench 'HotPath' -benchtime 3s
//
// Both serve {"message": ...} back; the Aegis one through routing, API key
// authentication, the sandbox, the echo example and the invocation record.

const echoPayload = `{"message":"hello, aegis"}`

// BenchmarkHotPathBare is the baseline: a net/http echo handler.
func BenchmarkHotPathBare(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			Message string `json:"message"`
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil || json.Unmarshal(body, &m) != nil || m.Message == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		out, _ := json.Marshal(&m)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	runEchoLoad(b, "http://"+ln.Addr().String(), "")
}

// BenchmarkHotPathEcho is the subject: POST /echo on the echo example with
// an API key, through a real Aegis server.
func BenchmarkHotPathEcho(b *testing.B) {
	gw, key := goEcho.start(b)
	runEchoLoad(b, gw, key)
}

// BenchmarkHotPathEchoC is the same route served by a C echo
// (bench/testdata/c/echo.c: the body back, three host calls). The guest
// costs next to nothing, so what separates it from the bare handler is what
// the platform adds per request: gateway, key check, dispatch, sandbox
// entry, invocation record.
func BenchmarkHotPathEchoC(b *testing.B) {
	gw, key := cEcho.start(b)
	runEchoLoad(b, gw, key)
}

// echoServer starts one server for every run of a benchmark: the testing
// package calls a benchmark several times with growing b.N, and starting
// (and compiling the module) each time would dominate a CPU profile. The
// server lives until the test binary exits; its data directory is a fixed
// one, emptied first, so repeated runs do not pile up directories. Each
// variant has its own server, since both serve the echo manifest's route.
type echoServer struct {
	dir    string
	module func(testing.TB) []byte

	once sync.Once
	gw   string
	key  string
	err  error
}

var (
	goEcho = &echoServer{dir: "aegis-bench-hotpath", module: func(tb testing.TB) []byte {
		return wasmbuild.GoModule(tb, "../../examples/echo")
	}}
	cEcho = &echoServer{dir: "aegis-bench-hotpath-c", module: func(tb testing.TB) []byte {
		return wasmbuild.CReactor(tb, "../../bench/testdata/c/echo.c")
	}}
)

func (s *echoServer) start(tb testing.TB) (string, string) {
	s.once.Do(func() {
		dir := filepath.Join(os.TempDir(), s.dir)
		_ = os.RemoveAll(dir)
		in := startServer(tb, dir)
		if _, s.err = deployWith(in, "../../examples/echo/aegis.yaml", s.module(tb)); s.err != nil {
			return
		}
		k, err := in.admin.CreateKey(context.Background(), "bench")
		if err != nil {
			s.err = err
			return
		}
		s.gw, s.key = in.gateway, k.Key
	})
	if s.err != nil || s.gw == "" {
		tb.Fatalf("echo server: %v", s.err)
	}
	return s.gw, s.key
}

func runEchoLoad(b *testing.B, base, key string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}
	defer client.CloseIdleConnections()
	post := func() error {
		req, err := http.NewRequest("POST", base+"/echo", strings.NewReader(echoPayload))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte("hello, aegis")) {
			b.Errorf("echo: %d %s", resp.StatusCode, body)
		}
		return nil
	}
	for range 20 { // warm up connections and instances
		if err := post(); err != nil {
			b.Fatal(err)
		}
	}
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := post(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	// CPU per request (client and server together, in this process) moves
	// far less than ns/op when other work shares the machine; the
	// difference between two benchmarks is what the platform adds.
	if used := cputime.Process() - cpu; used > 0 && b.N > 0 {
		b.ReportMetric(float64(used)/float64(b.N), "cpu-ns/op")
	}
}
