package bus

import (
	"regexp"
	"testing"
	"time"
)

func TestBackoffDoublesWithJitterAndCap(t *testing.T) {
	b := &Bus{cfg: Config{RetryBase: 100 * time.Millisecond, RetryMax: time.Second}}
	for attempt := 1; attempt <= 30; attempt++ {
		want := b.cfg.RetryBase << min(attempt-1, 20)
		if want > b.cfg.RetryMax {
			want = b.cfg.RetryMax
		}
		for i := 0; i < 50; i++ {
			d := b.backoff(attempt)
			if d < want/2 || d >= want/2+want {
				t.Fatalf("attempt %d: delay %s outside [%s, %s)", attempt, d, want/2, want/2+want)
			}
		}
	}
	// Jitter: 50 draws are not all equal.
	seen := map[time.Duration]bool{}
	for i := 0; i < 50; i++ {
		seen[b.backoff(3)] = true
	}
	if len(seen) < 2 {
		t.Errorf("no jitter: %v", seen)
	}
}

func TestDurableNamesAreStableAndValid(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	a := durableName("ev", "travel-diary", "make-thumbnail", "image.saved")
	if a != durableName("ev", "travel-diary", "make-thumbnail", "image.saved") {
		t.Fatal("durable name is not stable")
	}
	if !valid.MatchString(a) {
		t.Errorf("durable name %q has characters JetStream refuses", a)
	}
	if a == durableName("ev", "travel-diary", "make-thumbnail", "image_saved") {
		t.Errorf("topics image.saved and image_saved share a consumer")
	}
	if a == durableName("ev", "travel-diary", "index-entry", "image.saved") {
		t.Errorf("two functions share a consumer")
	}
}

func TestDecodeObjectEventReadsExactNames(t *testing.T) {
	tests := []struct {
		doc  string
		want objectEvent
		ok   bool
	}{
		{`{"key":"a/b","operation":"put"}`, objectEvent{Key: "a/b", Operation: "put"}, true},
		{`{"key":"a/b","Key":"c/d","operation":"put"}`, objectEvent{}, false},
		{`{"KEY":"c/d","operation":"put"}`, objectEvent{}, false},
		{`{"key":"a/b"}`, objectEvent{}, false},
		{`{"key":1,"operation":"put"}`, objectEvent{}, false},
		{`not json`, objectEvent{}, false},
	}
	for _, tc := range tests {
		got, ok := decodeObjectEvent([]byte(tc.doc))
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("%s: %+v %v, want %+v %v", tc.doc, got, ok, tc.want, tc.ok)
		}
	}
}
