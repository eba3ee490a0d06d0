package server

import (
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/guard"
)

func TestGuardConfigValidates(t *testing.T) {
	ok := Config{Guard: Guard{Rules: guard.DefaultRules(), TrustedProxies: []string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32"}}}
	if err := ok.validate(); err != nil {
		t.Fatalf("valid guard configuration refused: %v", err)
	}
	for name, c := range map[string]struct {
		g    Guard
		want string
	}{
		"bad proxy":   {Guard{TrustedProxies: []string{"10.0.0.0/40"}}, "--trusted-proxy"},
		"no name":     {Guard{Rules: []guard.Rule{rule("", 1, time.Minute, time.Minute)}}, "guard rule \"\": name"},
		"no window":   {Guard{Rules: []guard.Rule{rule("r", 1, 0, time.Minute)}}, "rule \"r\": when.window"},
		"no duration": {Guard{Rules: []guard.Rule{rule("r", 1, time.Minute, 0)}}, "rule \"r\": then[0].duration"},
		"below zero":  {Guard{Rules: []guard.Rule{rule("r", -1, time.Minute, time.Minute)}}, "rule \"r\": when.threshold"},
		"refresh <0":  {Guard{Refresh: -time.Second}, "refresh"},
	} {
		err := Config{Guard: c.g}.validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", name, err, c.want)
		}
	}
}

func rule(name string, threshold int, window, block time.Duration) guard.Rule {
	return guard.Rule{Name: name, Signals: []guard.Signal{guard.AuthFailure}, GroupBy: guard.ByAddress, Threshold: threshold,
		Window: window, Then: []guard.Action{{Kind: guard.ActBlockAddress, Duration: block}}}
}
