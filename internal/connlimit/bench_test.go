package connlimit

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// The cap's cost is at accept and close: a lock, a map update, and a
// wrapper around the connection. These compare a loopback dial, accept
// and close through the raw listener and through the capped one:
//
//	go test ./internal/connlimit -run '^$' -bench Accept -benchtime 20000x
//
// Requests on an accepted connection pay nothing: reads and writes go
// straight to the embedded net.Conn.
func BenchmarkAcceptRaw(b *testing.B) { benchAccept(b, false) }

func BenchmarkAcceptCapped(b *testing.B) { benchAccept(b, true) }

func benchAccept(b *testing.B, capped bool) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var ln net.Listener = raw
	if capped {
		ln = New(raw, Config{PerAddress: 4})
	}
	defer ln.Close()
	addr := raw.Addr().String()
	b.ResetTimer()
	for range b.N {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
		c.Close()
	}
}

// BenchmarkExtendForRun is what a request that runs a function pays for
// its own deadlines: b.N calls inside one request on a real loopback
// server with read and write timeouts.
func BenchmarkExtendForRun(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				ExtendForRun(w, r, 5*time.Second)
			}
			b.StopTimer()
		})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
}
