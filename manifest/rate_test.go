package manifest

import (
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	good := map[string]Rate{
		"10/s":    {10, time.Second},
		" 600/m ": {600, time.Minute},
		"1/h":     {1, time.Hour},
	}
	for in, want := range good {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, _ := ParseRate(got.String()); back != got {
			t.Errorf("%q does not read back: %v", got.String(), back)
		}
	}
	for _, in := range []string{"", "10", "/s", "10/", "0/s", "-1/s", "+1/s", "1.5/s", "10/d", "10/day", "10/S", "1e3/s", "2000000000/s", "10/s/s"} {
		if r, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %v, want an error", in, r)
		}
	}
}

func TestParseQuota(t *testing.T) {
	q, err := ParseQuota("1000/day")
	if err != nil || q != (Quota{1000, WindowDay}) || q.String() != "1000/day" {
		t.Fatalf("ParseQuota = %v, %v", q, err)
	}
	for _, in := range []string{"1000/d", "1000/week", "0/day", "day", "1000/s"} {
		if q, err := ParseQuota(in); err == nil {
			t.Errorf("ParseQuota(%q) = %v, want an error", in, q)
		}
	}
}

func TestWindowBounds(t *testing.T) {
	at := time.Date(2026, 12, 31, 23, 30, 5, 0, time.UTC)
	for _, tt := range []struct {
		w          Window
		start, end time.Time
	}{
		{WindowHour, time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{WindowDay, time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{WindowMonth, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if s, e := tt.w.Start(at), tt.w.End(at); !s.Equal(tt.start) || !e.Equal(tt.end) {
			t.Errorf("%s: [%v, %v), want [%v, %v)", tt.w, s, e, tt.start, tt.end)
		}
	}
}

// The rate and budget grammars take what users type on the command line
// and in manifests: they must never panic, and what they accept must read
// back the same.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"10/s", "600/m", "1/h", "1000/day", "5/month", "", "/", "9999999999999999999/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if r, err := ParseRate(s); err == nil {
			if r.Count < 1 || r.Count > MaxRateCount || r.PerSecond() <= 0 {
				t.Fatalf("ParseRate(%q) accepted %v", s, r)
			}
			if back, err := ParseRate(r.String()); err != nil || back != r {
				t.Fatalf("ParseRate(%q) = %v does not read back: %v, %v", s, r, back, err)
			}
		}
		if q, err := ParseQuota(s); err == nil {
			if q.Count < 1 || q.Count > MaxRateCount || !q.Per.Valid() {
				t.Fatalf("ParseQuota(%q) accepted %v", s, q)
			}
			if back, err := ParseQuota(q.String()); err != nil || back != q {
				t.Fatalf("ParseQuota(%q) = %v does not read back: %v, %v", s, q, back, err)
			}
		}
	})
}
