package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// memStream is an in-memory Stream with the same conditional append as
// JetStream's expected last sequence; fail makes every call fail.
type memStream struct {
	mu   sync.Mutex
	msgs []Stored
	last uint64
	fail error
}

func (m *memStream) Tail(context.Context) (uint64, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return 0, nil, m.fail
	}
	if len(m.msgs) == 0 {
		return m.last, nil, nil
	}
	return m.last, m.msgs[len(m.msgs)-1].Data, nil
}

func (m *memStream) Append(_ context.Context, data []byte, _ string, after uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return 0, m.fail
	}
	if after != m.last {
		return 0, fmt.Errorf("wrong last sequence: %w", aegis.ErrConflict)
	}
	m.last++
	m.msgs = append(m.msgs, Stored{Seq: m.last, Data: append([]byte(nil), data...)})
	return m.last, nil
}

// forge appends without the condition, as a writer on NATS could.
func (m *memStream) forge(data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last++
	m.msgs = append(m.msgs, Stored{Seq: m.last, Data: data})
}

func (m *memStream) Read(_ context.Context, from uint64, limit int) ([]Stored, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	var out []Stored
	for _, s := range m.msgs {
		if s.Seq >= from && len(out) < limit {
			out = append(out, s)
		}
	}
	return out, nil
}

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func openLog(t testing.TB, s Stream, key ed25519.PrivateKey, every int) *Log {
	t.Helper()
	l, err := Open(context.Background(), Config{Stream: s, Key: key, CheckpointEvery: every, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	return l
}

func adminRecord(i int) Record {
	return Record{Kind: KindAdmin, Actor: "ci", Address: "127.0.0.1", Action: "deploy", Target: fmt.Sprintf("app%d", i),
		Detail: map[string]string{"version": fmt.Sprint(i)}, Outcome: OutcomeOK}
}

// chain writes n admin records (a checkpoint after every 4) and returns
// the whole chain and its key.
func chain(t *testing.T, n int) ([]Record, ed25519.PublicKey) {
	t.Helper()
	key := newKey(t)
	l := openLog(t, &memStream{}, key, 4)
	for i := range n {
		if _, err := l.Append(context.Background(), adminRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	var all []Record
	if err := l.Each(context.Background(), 1, func(r Record) error { all = append(all, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return all, key.Public().(ed25519.PublicKey)
}

func TestChainVerifies(t *testing.T) {
	recs, pub := chain(t, 10)
	rep, err := Verify(recs, pub)
	if err != nil {
		t.Fatal(err)
	}
	// key record, 10 admin records, a checkpoint after every 4 of them.
	if rep.Records != 13 || rep.Checkpoints != 2 || rep.LastSeq != 13 {
		t.Fatalf("report %+v", rep)
	}
	if recs[0].Kind != KindKey || recs[0].Prev != "" {
		t.Fatalf("first record %+v", recs[0])
	}
}

// TestTamperingNamed: each way of changing a chain is found, and the first
// bad record is the one named.
func TestTamperingNamed(t *testing.T) {
	recs, pub := chain(t, 10)
	other := newKey(t)
	rehash := func(r *Record) { r.Hash = r.ComputeHash() }
	resign := func(r *Record, k ed25519.PrivateKey) { r.seal(k) }
	cases := []struct {
		name   string
		tamper func([]Record) []Record
		what   string
		seq    uint64
		pos    int
	}{
		{"edit a field", func(rs []Record) []Record { rs[4].Target = "evil"; return rs }, "modified", 5, 5},
		{"edit a detail", func(rs []Record) []Record { rs[6].Detail["version"] = "99"; return rs }, "modified", 7, 7},
		{"edit and rehash", func(rs []Record) []Record { rs[4].Actor = "root"; rehash(&rs[4]); return rs }, "forged", 5, 5},
		{"edit and re-sign with another key", func(rs []Record) []Record { rs[4].Actor = "root"; resign(&rs[4], other); return rs }, "forged", 5, 5},
		{"delete one", func(rs []Record) []Record { return append(rs[:3:3], rs[4:]...) }, "deleted", 4, 4},
		{"delete the first", func(rs []Record) []Record { return rs[1:] }, "deleted", 1, 1},
		{"insert a copy", func(rs []Record) []Record {
			return append(append(rs[:6:6], rs[2]), rs[6:]...)
		}, "inserted", 3, 7},
		{"insert a forged record", func(rs []Record) []Record {
			f := adminRecord(77)
			f.Seq, f.Prev = rs[5].Seq+1, rs[5].Hash
			resign(&f, other)
			return append(append(rs[:6:6], f), rs[6:]...)
		}, "forged", 7, 7},
		{"reorder two", func(rs []Record) []Record { rs[3], rs[4] = rs[4], rs[3]; return rs }, "reordered", 5, 4},
		{"forge a checkpoint seal", func(rs []Record) []Record {
			for i := range rs {
				if rs[i].Kind == KindCheckpoint {
					rs[i].Seal = b64(ed25519.Sign(other, SealMessage(rs[i].Seq-1, rs[i].Prev)))
					rehash(&rs[i])
					rs[i].Signature = b64(ed25519.Sign(other, []byte(rs[i].Hash)))
					return rs
				}
			}
			t.Fatal("no checkpoint")
			return rs
		}, "forged", 6, 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.tamper(clone(recs))
			_, err := Verify(got, pub)
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("not detected: %v", err)
			}
			if p.What != c.what || p.Seq != c.seq || p.Position != c.pos {
				t.Fatalf("got %s, want %s of record %d at position %d", p, c.what, c.seq, c.pos)
			}
		})
	}
}

// TestCheckpointSealChecked: a checkpoint whose seal alone is wrong (the
// record itself signed and hashed by the key) is named.
func TestCheckpointSealChecked(t *testing.T) {
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	l := openLog(t, &memStream{}, key, 1)
	if _, err := l.Append(context.Background(), adminRecord(1)); err != nil {
		t.Fatal(err)
	}
	var all []Record
	_ = l.Each(context.Background(), 1, func(r Record) error { all = append(all, r); return nil })
	if all[2].Kind != KindCheckpoint {
		t.Fatalf("no checkpoint after the first append: %+v", all)
	}
	all[2].Seal = b64(ed25519.Sign(key, SealMessage(1, all[2].Prev))) // seals another sequence
	all[2].seal2(key)
	_, err := Verify(all, pub)
	var p *Problem
	if !errors.As(err, &p) || p.What != "bad checkpoint" || p.Seq != 3 {
		t.Fatalf("got %v", err)
	}
}

// seal2 rehashes and re-signs without touching the seal.
func (r *Record) seal2(key ed25519.PrivateKey) {
	r.Hash = r.ComputeHash()
	r.Signature = b64(ed25519.Sign(key, []byte(r.Hash)))
}

func clone(rs []Record) []Record {
	out := make([]Record, len(rs))
	for i, r := range rs {
		out[i] = r
		if r.Detail != nil {
			out[i].Detail = map[string]string{}
			for k, v := range r.Detail {
				out[i].Detail[k] = v
			}
		}
	}
	return out
}

// TestConcurrentWritersNeverFork: two logs on one stream (two servers on
// one NATS) append concurrently; every record chains onto the one before.
func TestConcurrentWritersNeverFork(t *testing.T) {
	s := &memStream{}
	key := newKey(t)
	a, b := openLog(t, s, key, 1000), openLog(t, s, key, 1000)
	var wg sync.WaitGroup
	for _, l := range []*Log{a, b} {
		for i := range 20 {
			wg.Go(func() {
				if _, err := l.Append(context.Background(), adminRecord(i)); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	rep, err := a.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 41 {
		t.Fatalf("report %+v, want 41 records", rep)
	}
}

// TestFailClosed: when the stream cannot be written, Append says so.
func TestFailClosed(t *testing.T) {
	s := &memStream{}
	l := openLog(t, s, newKey(t), 100)
	s.mu.Lock()
	s.fail = errors.New("stream gone")
	s.mu.Unlock()
	_, err := l.Append(context.Background(), adminRecord(1))
	if !errors.Is(err, aegis.ErrUnavailable) {
		t.Fatalf("append to a failing stream: %v, want ErrUnavailable", err)
	}
}

// TestForgedTailNamed: a message written to the stream behind the log's
// back, valid JSON or not, is chained onto by the next append but named by
// Verify.
func TestForgedTailNamed(t *testing.T) {
	for _, forged := range []string{`not json`, `{"seq":2,"kind":"admin","action":"deploy","prev":"x","hash":"y","sig":"z"}`} {
		s := &memStream{}
		l := openLog(t, s, newKey(t), 100)
		if _, err := l.Append(context.Background(), adminRecord(1)); err != nil {
			t.Fatal(err)
		}
		s.forge([]byte(forged))
		if _, err := l.Append(context.Background(), adminRecord(2)); err != nil {
			t.Fatal(err)
		}
		_, err := l.Verify(context.Background())
		var p *Problem
		if !errors.As(err, &p) || p.Position != 3 {
			t.Fatalf("forged %q: got %v, want position 3 named", forged, err)
		}
	}
}

// TestKeyMismatchRefuses: a server with another key than the chain's
// refuses to append.
func TestKeyMismatchRefuses(t *testing.T) {
	s := &memStream{}
	openLog(t, s, newKey(t), 100)
	other := openLog(t, s, newKey(t), 100)
	if _, err := other.Append(context.Background(), adminRecord(1)); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("got %v, want ErrKeyMismatch", err)
	}
}

func TestExportRoundTrip(t *testing.T) {
	key := newKey(t)
	l := openLog(t, &memStream{}, key, 3)
	for i := range 5 {
		if _, err := l.Append(context.Background(), adminRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	err := WriteExport(&buf, l.PublicKey(), func(yield func(Record) error) error { return l.Each(context.Background(), 1, yield) })
	if err != nil {
		t.Fatal(err)
	}
	h, recs, err := ParseExport(&buf)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := ParsePublicKey(h.PublicKey)
	if !ok || !pub.Equal(l.PublicKey()) {
		t.Fatalf("header %+v", h)
	}
	if _, err := Verify(recs, pub); err != nil {
		t.Fatal(err)
	}
	// A line that is not a record is named by its position.
	lines := strings.Split(strings.TrimSpace(exportText(t, l)), "\n")
	lines[3] = `{"seq":3,`
	_, recs, err = ParseExport(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Verify(recs, pub)
	var p *Problem
	if !errors.As(err, &p) || p.What != "unreadable" || p.Position != 3 {
		t.Fatalf("got %v", err)
	}
}

func exportText(t *testing.T, l *Log) string {
	var buf bytes.Buffer
	if err := WriteExport(&buf, l.PublicKey(), func(y func(Record) error) error { return l.Each(context.Background(), 1, y) }); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestParseExportRefusesBadHeader(t *testing.T) {
	for _, in := range []string{"", "{}\n", `{"format":"aegis-audit/1","public_key":"short"}`, "x\n{}"} {
		if _, _, err := ParseExport(strings.NewReader(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

// TestSecurityAggregates: a burst of security lines becomes one record
// per group with its count; other lines none.
func TestSecurityAggregates(t *testing.T) {
	s := &memStream{}
	l := openLog(t, s, newKey(t), 1000)
	sec := NewSecurity(time.Hour)
	sec.Attach(l, nil)
	var out bytes.Buffer
	logger := slog.New(sec.Handler(slog.NewJSONHandler(&out, nil)))
	for range 50 {
		logger.Warn("admin authentication failed", logkey.Security, true, logkey.Reason, "wrong secret", logkey.Remote, "192.0.2.1:5555")
	}
	logger.With(logkey.Security, true).Warn("admin call denied", logkey.TokenName, "ci", logkey.Remote, "192.0.2.2:1", logkey.Path, "/v1/keys")
	logger.Info("deployed", logkey.App, "x")
	sec.Close()
	var recs []Record
	_ = l.Each(context.Background(), 1, func(r Record) error { recs = append(recs, r); return nil })
	got := map[string]Record{}
	for _, r := range recs {
		if r.Kind == KindSecurity {
			got[r.Action] = r
		}
	}
	if len(got) != 2 {
		t.Fatalf("security records %+v", got)
	}
	if r := got["admin authentication failed"]; r.Detail["count"] != "50" || r.Address != "192.0.2.1" || r.Detail["reason"] != "wrong secret" {
		t.Fatalf("auth failures record %+v", r)
	}
	if r := got["admin call denied"]; r.Actor != "ci" || r.Detail["count"] != "1" {
		t.Fatalf("denial record %+v", r)
	}
	if n := strings.Count(out.String(), "\n"); n != 52 {
		t.Fatalf("next handler got %d lines, want 52", n)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(out.String(), "\n", 2)[0]), &line); err != nil {
		t.Fatal(err)
	}
}
