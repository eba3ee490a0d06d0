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
		"no name":     {Guard{Rules: []guard.Rule{{Threshold: 1, Window: time.Minute, Block: time.Minute}}}, "guard rule"},
		"no window":   {Guard{Rules: []guard.Rule{{Name: "r", Threshold: 1, Block: time.Minute}}}, "guard rule \"r\""},
		"no duration": {Guard{Rules: []guard.Rule{{Name: "r", Threshold: 1, Window: time.Minute}}}, "guard rule \"r\""},
		"below zero":  {Guard{Rules: []guard.Rule{{Name: "r", Threshold: -1, Window: time.Minute, Block: time.Minute}}}, "guard rule \"r\""},
		"refresh <0":  {Guard{Refresh: -time.Second}, "refresh"},
	} {
		err := Config{Guard: c.g}.validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", name, err, c.want)
		}
	}
}
