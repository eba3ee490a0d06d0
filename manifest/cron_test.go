package manifest

import (
	"strings"
	"testing"
	"time"
)

// TestParseCronKeepsItsMeaning: the expressions docs/manifest.md shows fire
// when they did under robfig/cron, the parser before go-cron. The expected
// times were computed with robfig/cron v3.0.1's ParseStandard.
func TestParseCronKeepsItsMeaning(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // a Thursday
	tests := []struct {
		spec string
		next []string
	}{
		{"*/5 * * * *", []string{"2026-01-01T00:05:00Z", "2026-01-01T00:10:00Z", "2026-01-01T00:15:00Z"}},
		{"0 9 * * MON-FRI", []string{"2026-01-01T09:00:00Z", "2026-01-02T09:00:00Z", "2026-01-05T09:00:00Z"}},
		// Both day fields restricted: either matching fires (standard cron),
		// not both (go-cron's default, which would first fire on June 1).
		{"0 0 1 * MON", []string{"2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z", "2026-01-19T00:00:00Z"}},
		{"5-10/2 */3 1,15 JAN-mar sun", []string{"2026-01-01T00:05:00Z", "2026-01-01T00:07:00Z", "2026-01-01T00:09:00Z"}},
		{"0 0 ? * ?", []string{"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z"}},
		{"0 0 31 2,3 *", []string{"2026-03-31T00:00:00Z", "2027-03-31T00:00:00Z", "2028-03-31T00:00:00Z"}},
		{"@hourly", []string{"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z", "2026-01-01T03:00:00Z"}},
		{"@daily", []string{"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z"}},
		{"@weekly", []string{"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z", "2026-01-18T00:00:00Z"}},
		{"@monthly", []string{"2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"}},
		{"@yearly", []string{"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z"}},
		{"@every 1h30m", []string{"2026-01-01T01:30:00Z", "2026-01-01T03:00:00Z", "2026-01-01T04:30:00Z"}},
		// Under a second rounds up to one; fractions of a second are dropped.
		{"@every 500ms", []string{"2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"}},
		{"@every 0s", []string{"2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"}},
		{"@every 1.5s", []string{"2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"}},
		{"  0 3 * * *  ", []string{"2026-01-01T03:00:00Z", "2026-01-02T03:00:00Z", "2026-01-03T03:00:00Z"}},
		// Refused by robfig/cron, accepted since go-cron (docs/manifest.md):
		// ranges that wrap around, and 7 for Sunday.
		{"0 22-2 * * *", []string{"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z", "2026-01-01T22:00:00Z"}},
		{"0 0 * * 7", []string{"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z", "2026-01-18T00:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			s, err := ParseCron(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			at := start
			for i, want := range tt.next {
				at = s.Next(at)
				if got := at.Format(time.RFC3339Nano); got != want {
					t.Fatalf("activation %d = %s, want %s", i+1, got, want)
				}
			}
		})
	}
}

func TestParseCronRefuses(t *testing.T) {
	for _, spec := range []string{
		"", "   ", "61 * * * *", "0 24 * * *", "0 0 0 * *", "0 0 * 13 *", "0 0 * * 8",
		"0 0 * * * *", // six fields (seconds) are not the documented grammar
		"0 0 * *", "*/0 * * * *", "1-2-3 * * * *", "a * * * *",
		"*/61 * * * *", // a step beyond the range (robfig/cron took it as "0")
		"@reboot", "@every", "@every x",
		"TZ=Europe/Paris 0 9 * * *", "CRON_TZ=UTC 0 9 * * *",
		// Extensions of other crons, not enabled here.
		"0 0 L * *", "0 0 * * FRI#3", "H * * * *",
		"0 0 * * " + strings.Repeat("1,", 600) + "1", // longer than the parser's 1024-byte cap
	} {
		if _, err := ParseCron(spec); err == nil {
			t.Errorf("ParseCron(%q) succeeded", spec)
		}
	}
}

// FuzzParseCron: any expression parses or fails without panicking, and a
// schedule that parses gives an activation that is not in the past.
func FuzzParseCron(f *testing.F) {
	for _, s := range []string{"*/5 * * * *", "0 9 * * MON-FRI", "@every 1h30m", "0 22-2 * * FRI-MON", "TZ=UTC 0 0 * * *", "0 0 1-31/40 * *"} {
		f.Add(s)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseCron(spec)
		if err != nil {
			return
		}
		if next := s.Next(start); !next.IsZero() && !next.After(start) {
			t.Fatalf("%q: next activation %v is not after %v", spec, next, start)
		}
	})
}
