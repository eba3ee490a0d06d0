package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/telemetry"
)

// seenMap keeps replay records the way the bucket does: create-only, each
// key with its TTL, which the test reads back.
type seenMap struct {
	mu   sync.Mutex
	vals map[string]string
	ttls map[string]time.Duration
	err  error
}

func newSeenMap() *seenMap {
	return &seenMap{vals: map[string]string{}, ttls: map[string]time.Duration{}}
}

func (s *seenMap) CreateTTL(_ context.Context, key string, v []byte, ttl time.Duration) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	if _, ok := s.vals[key]; ok {
		return 0, fmt.Errorf("create %s: %w", key, aegis.ErrConflict)
	}
	s.vals[key], s.ttls[key] = string(v), ttl
	return 1, nil
}

func (s *seenMap) Get(_ context.Context, key string) ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vals[key]
	if !ok {
		return nil, 0, fmt.Errorf("get %s: %w", key, aegis.ErrNotFound)
	}
	return []byte(v), 1, nil
}

func TestFirstDeliveryRunsEachEventOncePerTrigger(t *testing.T) {
	seen := newSeenMap()
	b := &Bus{cfg: Config{RetryMax: time.Minute}, seen: seen}
	ctx := context.Background()
	thumb := desired{durable: "ev_diary_thumb_0a", maxAttempts: 3, ackWait: 35 * time.Second}
	index := desired{durable: "ev_diary_index_0b", maxAttempts: 3, ackWait: 35 * time.Second}
	env := NewEnvelope("diary/save@v1", "r", 1)
	msg := func(seq uint64) *jetstream.Message { return &jetstream.Message{Seq: seq} }

	steps := []struct {
		name string
		d    desired
		seq  uint64
		want error
	}{
		{"first delivery", thumb, 10, nil},
		{"a retry of the same message", thumb, 10, nil},
		{"the same event to another trigger", index, 10, nil},
		{"a copy stored under another sequence", thumb, 11, errReplayed},
		{"the copy to the other trigger", index, 11, errReplayed},
	}
	for _, s := range steps {
		if err := b.firstDelivery(ctx, s.d, msg(s.seq), env); !errors.Is(err, s.want) {
			t.Errorf("%s: %v, want %v", s.name, err, s.want)
		}
	}
	if got, want := seen.ttls[thumb.durable+"."+env.ID], DedupeWindow+3*(90*time.Second+35*time.Second); got != want {
		t.Errorf("record TTL %s, want the de-duplication window plus three attempts: %s", got, want)
	}

	// A store that cannot answer holds the event back; it is not a copy.
	seen.err = errors.New("nats: timeout")
	if err := b.firstDelivery(ctx, thumb, msg(12), NewEnvelope("diary/save@v1", "r", 1)); err == nil || errors.Is(err, errReplayed) {
		t.Errorf("unavailable store: %v, want an error other than a replay", err)
	}
}

func TestCheckFresh(t *testing.T) {
	env := NewEnvelope("diary/save@v1", "r", 1)
	at := func(d time.Duration, msgID string) *jetstream.Message {
		return &jetstream.Message{Timestamp: env.Time.Add(d), Headers: map[string]string{jetstream.HeaderMsgID: msgID}}
	}
	tests := []struct {
		name string
		m    *jetstream.Message
		want error
	}{
		{"stored at once", at(20*time.Millisecond, env.ID), nil},
		{"signer's clock a little ahead", at(-time.Second, env.ID), nil},
		{"at the edge of the window", at(FreshnessWindow, env.ID), nil},
		{"stored after the window", at(FreshnessWindow+time.Millisecond, env.ID), errStale},
		{"signed far in the future", at(-FreshnessWindow-time.Second, env.ID), errStale},
		{"no message id", at(0, ""), errMsgID},
		{"another message id", at(0, NewEnvelope("x/y@z", "r", 1).ID), errMsgID},
	}
	for _, tc := range tests {
		if err := checkFresh(env, tc.m); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// The window leaves room for clock skew inside de-duplication.
	if FreshnessWindow >= DedupeWindow {
		t.Errorf("freshness window %s reaches past the de-duplication window %s", FreshnessWindow, DedupeWindow)
	}
}

func TestReplayIDs(t *testing.T) {
	orig := NewEnvelope("diary/save@v1", "r", 1)
	a, b := replayID(7, orig), replayID(7, orig)
	if a != b {
		t.Errorf("one dead letter replays under %s and %s", a, b)
	}
	if !telemetry.IsID(a) || a == orig.ID || a == replayID(8, orig) {
		t.Errorf("replay id %s: not a fresh, valid event id", a)
	}
}
