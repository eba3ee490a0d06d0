package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aegis-platform/aegis"
)

func TestInProcessOpensNoPort(t *testing.T) {
	n := openEmbedded(t, "")
	equal(t, "", n.ClientURL())
	if addr := n.srv.Addr(); addr != nil {
		t.Fatalf("embedded server listens on %v", addr)
	}
	if !n.nc.IsConnected() {
		t.Fatal("in-process connection is not connected")
	}
}

func TestListenOpensPort(t *testing.T) {
	n := openEmbedded(t, "127.0.0.1:0")
	url := n.ClientURL()
	addr, ok := n.srv.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("no TCP listener: %v", n.srv.Addr())
	}
	equal(t, "nats://127.0.0.1:"+strconv.Itoa(addr.Port), url)
	// The port is never open to anyone: no credentials, a wrong key, a
	// user name and password are all refused; the client key is let in.
	for name, opt := range map[string]nats.Option{
		"none":      func(*nats.Options) error { return nil },
		"wrong key": mustNkey(t),
		"password":  nats.UserInfo("aegis", "aegis"),
		"token":     nats.Token("aegis"),
	} {
		if nc, err := nats.Connect(url, opt, nats.MaxReconnects(0)); err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
		}
	}
	opt, err := nkeyOption(testSeed)
	noErr(t, err)
	nc, err := nats.Connect(url, opt)
	noErr(t, err)
	nc.Close()
}

func TestListenNeedsAClientKey(t *testing.T) {
	_, err := Open(context.Background(), Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	isErr(t, err, aegis.ErrInvalidArgument)
	_, err = Open(context.Background(), Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", ClientSeed: []byte("SUNOTASEED")})
	isErr(t, err, aegis.ErrInvalidArgument)
}

func mustNkey(t *testing.T) nats.Option {
	t.Helper()
	other, err := NewClientSeed()
	noErr(t, err)
	o, err := nkeyOption(other)
	noErr(t, err)
	return o
}

func TestServerLogsGoToSlog(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := Open(testCtx(t), Config{DataDir: t.TempDir(), Logger: log})
	noErr(t, err)
	noErr(t, n.Close(testCtx(t)))
	if !strings.Contains(buf.String(), "component=nats-server") {
		t.Fatalf("no server log lines in:\n%s", buf.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)

	n, err := Open(ctx, Config{DataDir: dir})
	noErr(t, err)
	b, err := n.Bucket(ctx, "state", BucketOptions{})
	noErr(t, err)
	rev, err := b.Put(ctx, "k", []byte("v"))
	noErr(t, err)
	o, err := n.ObjectStore(ctx, "blobs")
	noErr(t, err)
	noErr(t, o.Put(ctx, "a/b", []byte("blob")))
	noErr(t, n.EnsureStream(ctx, StreamConfig{Name: "events", Subjects: []string{"ev.>"}}))
	seq, err := n.Publish(ctx, "ev.x", []byte("e1"), nil, "id-1")
	noErr(t, err)
	noErr(t, n.Close(ctx))

	n, err = Open(ctx, Config{DataDir: dir})
	noErr(t, err)
	defer n.Close(ctx)
	b, err = n.Bucket(ctx, "state", BucketOptions{})
	noErr(t, err)
	v, rev2, err := b.Get(ctx, "k")
	noErr(t, err)
	equal(t, "v", string(v))
	equal(t, rev, rev2)
	o, err = n.ObjectStore(ctx, "blobs")
	noErr(t, err)
	data, err := o.Get(ctx, "a/b")
	noErr(t, err)
	equal(t, "blob", string(data))
	m, err := n.StreamMessage(ctx, "events", seq)
	noErr(t, err)
	equal(t, "e1", string(m.Data))
	// The deduplication window survives the restart too.
	seq2, err := n.Publish(ctx, "ev.x", []byte("e1"), nil, "id-1")
	noErr(t, err)
	equal(t, seq, seq2)
}

func TestCloseTwiceAndUseAfterClose(t *testing.T) {
	ctx := testCtx(t)
	n, err := Open(ctx, Config{DataDir: t.TempDir()})
	noErr(t, err)
	b, err := n.Bucket(ctx, "b", BucketOptions{})
	noErr(t, err)
	noErr(t, n.EnsureStream(ctx, StreamConfig{Name: "s", Subjects: []string{"s.>"}}))
	_, err = n.Publish(ctx, "s.1", nil, nil, "")
	noErr(t, err)
	handled := make(chan struct{})
	sub, err := n.Consume(ctx, ConsumerConfig{Stream: "s", Durable: "d"}, func(ctx context.Context, m *Message) {
		time.Sleep(100 * time.Millisecond)
		_ = m.Ack(ctx)
		close(handled)
	})
	noErr(t, err)
	time.Sleep(20 * time.Millisecond)

	noErr(t, n.Close(ctx))
	noErr(t, n.Close(ctx))
	// Close waited for the running handler.
	select {
	case <-handled:
	default:
		t.Fatal("Close returned before the handler finished")
	}
	sub.Stop() // already stopped by Close

	_, err = n.Bucket(ctx, "other", BucketOptions{})
	isErr(t, err, aegis.ErrUnavailable)
	_, err = b.Put(ctx, "k", nil)
	isErr(t, err, aegis.ErrUnavailable)
	_, err = n.Publish(ctx, "s.1", nil, nil, "")
	isErr(t, err, aegis.ErrUnavailable)
}

func TestOpenRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{URL: "nats://127.0.0.1:1", Listen: "127.0.0.1:0"},
		{DataDir: "x", CertFile: "c.pem"},
		{DataDir: "x", Replicas: -1},
		{DataDir: t.TempDir(), Listen: "no-port"},
	} {
		_, err := Open(context.Background(), cfg)
		isErr(t, err, aegis.ErrInvalidArgument)
	}
}

func TestOpenUnreachableURL(t *testing.T) {
	// A port nothing listens on: take a free one and release it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	noErr(t, err)
	url := "nats://" + l.Addr().String()
	l.Close()
	_, err = Open(context.Background(), Config{URL: url})
	isErr(t, err, aegis.ErrUnavailable)
}

func TestValidNames(t *testing.T) {
	for _, tc := range []struct {
		s           string
		bucket, key bool
	}{
		{"users", true, true},
		{"app_1-x", true, true},
		{"a.b.c", false, true},
		{"images/2024/a.png", false, true},
		{"k=v", false, true},
		{"", false, false},
		{".a", false, false},
		{"a.", false, false},
		{"a..b", false, false},
		{"a b", false, false},
		{"a*", false, false},
		{"a>", false, false},
		{"ü", false, false},
	} {
		if got := ValidBucketName(tc.s); got != tc.bucket {
			t.Errorf("ValidBucketName(%q) = %v", tc.s, got)
		}
		if got := ValidKey(tc.s); got != tc.key {
			t.Errorf("ValidKey(%q) = %v", tc.s, got)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{jetstream.ErrKeyNotFound, aegis.ErrNotFound},
		{jetstream.ErrObjectNotFound, aegis.ErrNotFound},
		{jetstream.ErrMsgNotFound, aegis.ErrNotFound},
		{jetstream.ErrStreamNotFound, aegis.ErrNotFound},
		{jetstream.ErrKeyExists, aegis.ErrConflict},
		{fmt.Errorf("x: %w", jetstream.ErrKeyRevisionMismatch), aegis.ErrConflict},
		{&jetstream.APIError{ErrorCode: codeWrongLastSeqConst, Code: 400}, aegis.ErrConflict},
		{nats.ErrNoResponders, aegis.ErrUnavailable},
		{nats.ErrTimeout, aegis.ErrUnavailable},
		{nats.ErrConnectionClosed, aegis.ErrUnavailable},
		{context.DeadlineExceeded, aegis.ErrUnavailable},
		{&jetstream.APIError{ErrorCode: 10008, Code: 503}, aegis.ErrUnavailable},
		{jetstream.ErrInvalidKey, aegis.ErrInvalidArgument},
		{nats.ErrAuthorization, aegis.ErrPermissionDenied},
		{jetstream.ErrStreamMessageExceedsMaximum, aegis.ErrLimitExceeded},
	} {
		got := wrap("op", tc.err)
		if !errors.Is(got, tc.want) || !errors.Is(got, tc.err) {
			t.Errorf("wrap(%v) = %v, want %v in chain", tc.err, got, tc.want)
		}
	}
	if got := wrap("op", errors.New("other")); errors.Is(got, aegis.ErrUnavailable) || got.Error() != "op: other" {
		t.Errorf("unclassified error became %v", got)
	}
	equal(t, nil, wrap("op", nil))
}

func TestValueTooLarge(t *testing.T) {
	n := openEmbedded(t, "")
	ctx := testCtx(t)
	b, err := n.Bucket(ctx, "small", BucketOptions{MaxValueSize: 16})
	noErr(t, err)
	_, err = b.Put(ctx, "k", make([]byte, 17))
	isErr(t, err, aegis.ErrLimitExceeded)
}

// Many writers racing read-modify-write on one key through Update: every
// increment lands exactly once, because conflicts surface as ErrConflict.
func TestHammerUpdate(t *testing.T) {
	n := openEmbedded(t, "")
	ctx := testCtx(t)
	b, err := n.Bucket(ctx, "counter", BucketOptions{})
	noErr(t, err)
	_, err = b.Put(ctx, "n", []byte("0"))
	noErr(t, err)

	const workers, each = 8, 20
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				for {
					v, rev, err := b.Get(ctx, "n")
					if err != nil {
						t.Error(err)
						return
					}
					i, _ := strconv.Atoi(string(v))
					_, err = b.Update(ctx, "n", []byte(strconv.Itoa(i+1)), rev)
					if err == nil {
						break
					}
					if !errors.Is(err, aegis.ErrConflict) {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	v, _, err := b.Get(ctx, "n")
	noErr(t, err)
	equal(t, strconv.Itoa(workers*each), string(v))
}

// An external server that requires credentials: the right ones connect,
// wrong ones are refused as a permission problem, not as unavailability.
func TestExternalAuth(t *testing.T) {
	for _, tc := range []struct {
		name      string
		srv       server.Options
		good, bad Config
	}{
		{"user", server.Options{Username: "aegis", Password: "s3cret"},
			Config{User: "aegis", Password: "s3cret"}, Config{User: "aegis", Password: "wrong"}},
		{"token", server.Options{Authorization: "tok"},
			Config{Token: "tok"}, Config{Token: "nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.srv
			opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
			opts.JetStream, opts.StoreDir = true, t.TempDir()
			opts.NoSigs, opts.NoLog = true, true
			srv, err := server.NewServer(&opts)
			noErr(t, err)
			srv.Start()
			t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
			if !srv.ReadyForConnections(5 * time.Second) {
				t.Fatal("server not ready")
			}
			url := "nats://" + srv.Addr().String()

			good := tc.good
			good.URL = url
			n, err := Open(testCtx(t), good)
			noErr(t, err)
			_, err = n.Bucket(testCtx(t), "b", BucketOptions{})
			noErr(t, err)
			noErr(t, n.Close(context.Background()))

			bad := tc.bad
			bad.URL = url
			_, err = Open(testCtx(t), bad)
			isErr(t, err, aegis.ErrPermissionDenied)
		})
	}
}

func TestPublishNoAckIsStored(t *testing.T) {
	n := openEmbedded(t, "")
	ctx := testCtx(t)
	name := "NOACK_" + uniq(t)
	noErr(t, n.EnsureStream(ctx, StreamConfig{Name: name, Subjects: []string{name + ".>"}}))
	for i := 0; i < 3; i++ {
		noErr(t, n.PublishNoAck(name+".x", []byte{byte('a' + i)}))
	}
	eventually(t, 5*time.Second, func() bool {
		msgs, err := n.StreamMessages(ctx, name, "", 10)
		return err == nil && len(msgs) == 3 && string(msgs[2].Data) == "c"
	}, "three unacknowledged publishes stored in order")
	noErr(t, n.Close(ctx))
	isErr(t, n.PublishNoAck(name+".x", nil), aegis.ErrUnavailable)
}
