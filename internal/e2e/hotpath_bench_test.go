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

	"github.com/aegis-platform/aegis/internal/testkit/wasmbuild"
)

// The hot-path benchmarks drive a real server over loopback with keep-alive
// clients in parallel, and compare it with a bare net/http handler doing the
// same JSON echo in the same process, so the ratio of the two is what to
// read (absolute figures move with the machine):
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
	gw, key := echoServer(b)
	runEchoLoad(b, gw, key)
}

var (
	echoOnce sync.Once
	echoGW   string
	echoKey  string
	echoErr  error
)

// echoServer starts one server for every run of the benchmark: the testing
// package calls a benchmark several times with growing b.N, and starting
// (and compiling the module) each time would dominate a CPU profile. The
// server lives until the test binary exits; its data directory is a fixed
// one, emptied first, so repeated runs do not pile up directories.
func echoServer(b *testing.B) (string, string) {
	echoOnce.Do(func() {
		dir := filepath.Join(os.TempDir(), "aegis-bench-hotpath")
		_ = os.RemoveAll(dir)
		in := startServer(b, dir)
		if _, echoErr = deployWith(in, "../../examples/echo/aegis.yaml", wasmbuild.GoModule(b, "../../examples/echo")); echoErr != nil {
			return
		}
		k, err := in.admin.CreateKey(context.Background(), "bench")
		if err != nil {
			echoErr = err
			return
		}
		echoGW, echoKey = in.gateway, k.Key
	})
	if echoErr != nil {
		b.Fatalf("echo server: %v", echoErr)
	}
	return echoGW, echoKey
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
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := post(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
