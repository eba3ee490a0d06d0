package scan

import (
	"encoding/json"
	"testing"
)

func TestSeverityNames(t *testing.T) {
	for s := SeverityNone; s <= Critical; s++ {
		got, err := ParseSeverity(s.String())
		if err != nil || got != s {
			t.Errorf("%v: parsed back as %v, %v", s, got, err)
		}
	}
	if s, err := ParseSeverity("HIGH"); err != nil || s != High {
		t.Errorf("HIGH: %v %v", s, err)
	}
	if _, err := ParseSeverity("severe"); err == nil {
		t.Error("an unknown severity parsed")
	}
	b, err := json.Marshal(Finding{ID: "x", Severity: Critical})
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "rule", "severity", "function", "file", "line", "message"} {
		if _, ok := back[k]; !ok {
			t.Errorf("a finding's JSON has no %q: %s", k, b)
		}
	}
	if back["severity"] != "critical" {
		t.Errorf("severity in JSON: %v", back["severity"])
	}
}

func TestAcceptAndBlocking(t *testing.T) {
	fs := []Finding{
		{ID: "GO-1", Severity: High},
		{ID: "secret:a", Severity: Critical},
		{ID: "rule:b", Severity: Medium},
	}
	unused := Accept(fs, []Waiver{{ID: "secret:a", Reason: "test fixture"}, {ID: "typo", Reason: "r"}})
	if len(unused) != 1 || unused[0].ID != "typo" {
		t.Errorf("unused waivers: %+v", unused)
	}
	if fs[1].Accepted == nil || fs[1].Accepted.Reason != "test fixture" {
		t.Errorf("the accepted finding: %+v", fs[1])
	}
	if b := Blocking(fs, High); len(b) != 1 || b[0].ID != "GO-1" {
		t.Errorf("blocking at high: %+v", b)
	}
	if b := Blocking(fs, Critical); len(b) != 0 {
		t.Errorf("blocking at critical, the critical one accepted: %+v", b)
	}
	if b := Blocking(fs, Medium); len(b) != 2 {
		t.Errorf("blocking at medium: %+v", b)
	}
	if b := Blocking(fs, SeverityNone); b != nil {
		t.Errorf("blocking at none: %+v", b)
	}
	Sort(fs)
	if fs[0].ID != "secret:a" || fs[2].ID != "rule:b" {
		t.Errorf("sorted: %+v", fs)
	}
}

func TestWaiverValidate(t *testing.T) {
	for _, w := range []Waiver{{}, {ID: "x"}, {ID: "x", Reason: "  "}, {ID: "x", Reason: string(make([]byte, MaxReason+1))}} {
		if w.Validate() == nil {
			t.Errorf("waiver %q/%d bytes accepted", w.ID, len(w.Reason))
		}
	}
	if err := (Waiver{ID: "x", Reason: "known false positive"}).Validate(); err != nil {
		t.Error(err)
	}
}
