package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
)

// openNode starts an embedded JetStream for one test.
func openNode(t *testing.T) *jetstream.Node {
	t.Helper()
	ctx := context.Background()
	node, err := jetstream.Open(ctx, jetstream.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Close(ctx) })
	return node
}

func openLog(t *testing.T, node *jetstream.Node, logs *logbuf.Buffer) *Log {
	t.Helper()
	l, err := Open(context.Background(), node, slogTo(logs))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// sampleAlert is a brute-force incident on an address, raised at at.
func sampleAlert(id string, at time.Time) guard.Alert {
	return guard.Alert{ID: id, Time: at.UTC(), Rule: guard.RuleBruteForce, Signals: []string{"auth_failure"},
		GroupBy: "address", Target: "192.0.2.7", Count: 21, Window: "1m0s",
		Actions: []string{"block_address 15m0s"}, Blocks: []string{"b-" + id},
		Message: "21 authentication failures from 192.0.2.7 within 1m0s: blocked for 15m0s",
		Until:   at.Add(15 * time.Minute).UTC()}
}

func ids(as []guard.Alert) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

func TestPublishAndList(t *testing.T) {
	ctx := context.Background()
	node := openNode(t)
	logs := logbuf.New()
	l := openLog(t, node, logs)
	if got, err := l.List(ctx, time.Time{}, 0); err != nil || len(got) != 0 {
		t.Fatalf("empty stream lists %v, %v", got, err)
	}
	base := time.Now().Add(-time.Hour)
	for i := range 4 {
		if err := l.Publish(ctx, sampleAlert(fmt.Sprintf("a%d", i), base.Add(time.Duration(i)*10*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	// The same alert published again (a retry after a lost ack) is stored once.
	if err := l.Publish(ctx, sampleAlert("a3", base.Add(30*time.Minute))); err != nil {
		t.Fatal(err)
	}
	// A record Publish never wrote: an unknown field. Skipped, and said so.
	if _, err := node.Publish(ctx, Subject, []byte(`{"id":"x","rule":"brute_force","extra":1}`), nil, ""); err != nil {
		t.Fatal(err)
	}

	all, err := l.List(ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ids(all), ","); got != "a0,a1,a2,a3" {
		t.Errorf("all alerts = %s, want a0,a1,a2,a3 (oldest first, once each, the foreign record skipped)", got)
	}
	if len(all) > 0 {
		want := sampleAlert("a0", base)
		gotJSON, _ := json.Marshal(all[0])
		wantJSON, _ := json.Marshal(want)
		if string(gotJSON) != string(wantJSON) {
			t.Errorf("read back %s\nwant      %s", gotJSON, wantJSON)
		}
	}
	if len(logs.Messages("unreadable alert record skipped")) == 0 {
		t.Error("the unreadable record was skipped silently")
	}
	// since keeps the later ones; limit the newest.
	since, err := l.List(ctx, base.Add(15*time.Minute), 0)
	if err != nil || strings.Join(ids(since), ",") != "a2,a3" {
		t.Errorf("since +15m = %v, %v; want a2,a3", ids(since), err)
	}
	newest, err := l.List(ctx, time.Time{}, 2)
	if err != nil || strings.Join(ids(newest), ",") != "a3" {
		// The last two messages are a3 and the foreign record.
		t.Errorf("limit 2 = %v, %v; want a3", ids(newest), err)
	}
}

func TestPublishRefuses(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, openNode(t), logbuf.New())
	for name, a := range map[string]guard.Alert{
		"no id":        sampleAlert("", time.Now()),
		"id with a LF": sampleAlert("a\nb", time.Now()),
		"id too long":  sampleAlert(strings.Repeat("x", maxIDLen+1), time.Now()),
	} {
		if err := l.Publish(ctx, a); !errors.Is(err, aegis.ErrInvalidArgument) {
			t.Errorf("%s: %v, want invalid argument", name, err)
		}
	}
	big := sampleAlert("big", time.Now())
	big.Message = strings.Repeat("m", MaxRecord)
	if err := l.Publish(ctx, big); !errors.Is(err, aegis.ErrLimitExceeded) {
		t.Errorf("oversized alert: %v, want limit exceeded", err)
	}
	if got, _ := l.List(ctx, time.Time{}, 0); len(got) != 0 {
		t.Errorf("refused alerts were stored: %v", ids(got))
	}
}

// Follow hands over the recent alerts, then new ones as they come, until
// its context ends; an error from fn ends it with that error.
func TestFollow(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, openNode(t), logbuf.New())
	old := time.Now().Add(-2 * time.Hour)
	if err := l.Publish(ctx, sampleAlert("old", old)); err != nil {
		t.Fatal(err)
	}
	if err := l.Publish(ctx, sampleAlert("recent", time.Now())); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		done <- l.Follow(fctx, time.Now().Add(-time.Hour), 0, func(a guard.Alert) error {
			got <- a.ID
			return nil
		})
	}()
	next := func() string {
		t.Helper()
		select {
		case id := <-got:
			return id
		case <-time.After(10 * time.Second):
			t.Fatal("no alert followed")
			return ""
		}
	}
	if id := next(); id != "recent" {
		t.Fatalf("first followed %q, want recent (old is before since)", id)
	}
	if err := l.Publish(ctx, sampleAlert("live", time.Now())); err != nil {
		t.Fatal(err)
	}
	if id := next(); id != "live" {
		t.Fatalf("then %q, want live", id)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("follow ended by its context: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end with its context")
	}

	stop := errors.New("enough")
	err := l.Follow(ctx, time.Time{}, 0, func(guard.Alert) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("follow with a failing fn: %v, want its error", err)
	}
}

// The stream is created with the documented bounds.
func TestStreamBounds(t *testing.T) {
	node := openNode(t)
	openLog(t, node, logbuf.New())
	age, size, err := node.StreamLimits(context.Background(), Stream)
	if err != nil || age != 30*24*time.Hour || size != 64<<20 {
		t.Errorf("stream bounds %v %d (%v), want 720h and 64 MiB", age, size, err)
	}
}
