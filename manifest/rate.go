package manifest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Rate is a number of requests per period, written "10/s", "600/m" or
// "1000/h": a token bucket refilled at Count per Per.
type Rate struct {
	Count int64
	Per   time.Duration
}

// MaxRateCount bounds the count of a rate or quota, far above anything a
// server can serve, so arithmetic on it never overflows.
const MaxRateCount = 1_000_000_000

// rateUnits are the periods a rate may name.
var rateUnits = map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}

// ParseRate reads "N/s", "N/m" or "N/h" with 1 ≤ N ≤ MaxRateCount.
func ParseRate(s string) (Rate, error) {
	count, unit, err := splitCount(s, "rate", `"10/s", "600/m" or "1000/h"`)
	if err != nil {
		return Rate{}, err
	}
	per, ok := rateUnits[unit]
	if !ok {
		return Rate{}, fmt.Errorf("invalid rate %q: the period is s, m or h", s)
	}
	return Rate{Count: count, Per: per}, nil
}

// splitCount reads "N/UNIT", N a decimal count between 1 and MaxRateCount.
func splitCount(s, what, example string) (int64, string, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok || num == "" || unit == "" {
		return 0, "", fmt.Errorf("invalid %s %q: write a count and a period, such as %s", what, s, example)
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, "", fmt.Errorf("invalid %s %q: the count is a whole number", what, s)
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 || n > MaxRateCount {
		return 0, "", fmt.Errorf("invalid %s %q: the count must be between 1 and %d", what, s, MaxRateCount)
	}
	return n, unit, nil
}

// IsZero reports an unset rate.
func (r Rate) IsZero() bool { return r.Count == 0 }

// PerSecond is the refill rate of r's token bucket.
func (r Rate) PerSecond() float64 {
	if r.Per <= 0 {
		return 0
	}
	return float64(r.Count) / r.Per.Seconds()
}

// String writes r as ParseRate reads it.
func (r Rate) String() string {
	if r.IsZero() {
		return ""
	}
	unit := "s"
	switch r.Per {
	case time.Minute:
		unit = "m"
	case time.Hour:
		unit = "h"
	}
	return strconv.FormatInt(r.Count, 10) + "/" + unit
}

// UnmarshalYAML reads a rate from a scalar node.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a rate such as \"10/s\", got %s", kindName(n))
	}
	v, err := ParseRate(n.Value)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalYAML writes r as "10/s".
func (r Rate) MarshalYAML() (any, error) { return r.String(), nil }

// MarshalJSON writes r as "10/s".
func (r Rate) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }

// UnmarshalJSON reads "10/s".
func (r *Rate) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("invalid rate %s", b)
	}
	if s == "" {
		*r = Rate{}
		return nil
	}
	v, err := ParseRate(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Window is the period a budget counts over; usage resets at the start of
// each (UTC): the hour, the day, the calendar month.
type Window string

// The windows a budget may name.
const (
	WindowHour  Window = "hour"
	WindowDay   Window = "day"
	WindowMonth Window = "month"
)

// Valid reports whether w is one of the windows.
func (w Window) Valid() bool { return w == WindowHour || w == WindowDay || w == WindowMonth }

// Start is the beginning of the window containing t, in UTC.
func (w Window) Start(t time.Time) time.Time {
	t = t.UTC()
	switch w {
	case WindowHour:
		return t.Truncate(time.Hour)
	case WindowMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// End is the start of the window after the one containing t.
func (w Window) End(t time.Time) time.Time {
	s := w.Start(t)
	switch w {
	case WindowHour:
		return s.Add(time.Hour)
	case WindowMonth:
		return s.AddDate(0, 1, 0)
	}
	return s.AddDate(0, 0, 1)
}

// Quota is a number of invocations per window, written "1000/day" (also
// "/hour", "/month"): an API key's budget.
type Quota struct {
	Count int64
	Per   Window
}

// ParseQuota reads "N/hour", "N/day" or "N/month".
func ParseQuota(s string) (Quota, error) {
	count, unit, err := splitCount(s, "budget", `"1000/day" (or /hour, /month)`)
	if err != nil {
		return Quota{}, err
	}
	w := Window(unit)
	if !w.Valid() {
		return Quota{}, fmt.Errorf("invalid budget %q: the period is hour, day or month", s)
	}
	return Quota{Count: count, Per: w}, nil
}

// IsZero reports an unset quota.
func (q Quota) IsZero() bool { return q.Count == 0 }

// String writes q as ParseQuota reads it.
func (q Quota) String() string {
	if q.IsZero() {
		return ""
	}
	return strconv.FormatInt(q.Count, 10) + "/" + string(q.Per)
}
