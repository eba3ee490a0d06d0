package rulefile

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/aegis-platform/aegis/internal/guard"
)

// Format writes rules as a rule file that Parse reads back to the same
// rules (`aegis guard rules -o yaml`): one rule a few lines, its when as
// one flow mapping and each action as another, durations as short as Go
// reads them ("15m", "1h30m").
func Format(rules []guard.Rule) []byte {
	var b bytes.Buffer
	if len(rules) == 0 {
		b.WriteString("rules: []\n")
		return b.Bytes()
	}
	b.WriteString("rules:\n")
	for _, r := range rules {
		b.WriteString("  - name: " + scalar(r.Name) + "\n")
		if r.Disabled {
			b.WriteString("    disabled: true\n")
		}
		if when := formatWhen(r); when != "" {
			b.WriteString("    when: {" + when + "}\n")
		}
		if len(r.Then) > 0 {
			b.WriteString("    then:\n")
			for _, a := range r.Then {
				b.WriteString("      - {action: " + scalar(string(a.Kind)) + ", duration: " + FormatDuration(a.Duration) + "}\n")
			}
		}
	}
	return b.Bytes()
}

// formatWhen is the fields of r's when, "" when it has none.
func formatWhen(r guard.Rule) string {
	if len(r.Signals) == 0 && r.GroupBy == "" && r.Threshold == 0 && r.Window == 0 &&
		r.Baseline == 0 && !r.GBSeconds && r.Learning == 0 {
		return ""
	}
	var f []string
	switch len(r.Signals) {
	case 0:
	case 1:
		f = append(f, "signal: "+scalar(r.Signals[0].String()))
	default:
		names := make([]string, len(r.Signals))
		for i, s := range r.Signals {
			names[i] = scalar(s.String())
		}
		f = append(f, "signal: ["+strings.Join(names, ", ")+"]")
	}
	if r.GroupBy != "" {
		f = append(f, "group_by: "+scalar(string(r.GroupBy)))
	}
	f = append(f, "threshold: "+strconv.Itoa(r.Threshold))
	if r.Window != 0 {
		f = append(f, "window: "+FormatDuration(r.Window))
	}
	if r.Baseline != 0 {
		f = append(f, "baseline: "+strconv.FormatFloat(r.Baseline, 'f', -1, 64))
	}
	if r.GBSeconds {
		f = append(f, "measure: "+measureGBSeconds)
	}
	if r.Learning != 0 {
		f = append(f, "learning: "+FormatDuration(r.Learning))
	}
	return strings.Join(f, ", ")
}

// FormatDuration writes d as time.Duration does without the zero units
// it ends with: "15m" rather than "15m0s", "1h" rather than "1h0m0s".
// time.ParseDuration reads it back to d.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// scalar writes s bare when YAML reads it back as that string, quoted
// otherwise (a rule named "null" or "true").
func scalar(s string) string {
	var n yaml.Node
	if s != "" && !strings.ContainsAny(s, ",[]{}:#\"'") && yaml.Unmarshal([]byte(s), &n) == nil &&
		len(n.Content) == 1 && n.Content[0].Kind == yaml.ScalarNode && n.Content[0].ShortTag() == "!!str" &&
		n.Content[0].Value == s && n.Content[0].Style == 0 {
		return s
	}
	return strconv.Quote(s)
}
