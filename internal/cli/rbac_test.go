package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
)

func TestRBACUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"tokens", "create", "ci"}, "--role is required"},
		{[]string{"tokens", "create", "ci", "--role", "boss"}, "must be viewer, operator, deployer or admin"},
		{[]string{"tokens", "revoke"}, "accepts 1 arg(s), received 0"},
		{[]string{"apps", "delete"}, "accepts 1 arg(s), received 0"},
		{[]string{"mfa", "bogus"}, `unknown command "bogus"`},
		{[]string{"server", "--step-up", "sometimes"}, "must be auto, always or off"},
		{[]string{"up", ".", "--step-up", ""}, "must be auto, always or off"},
	} {
		code, stdout, stderr := run(t, map[string]string{"AEGIS_TOKEN": "t"}, tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) || stdout != "" {
			t.Errorf("aegis %v: exit %d, stderr %q, stdout %q; want exit %d with %q", tt.args, code, stderr, stdout, exitUsage, tt.want)
		}
	}
}

func TestOTPFlagAndEnvironment(t *testing.T) {
	for _, tt := range []struct {
		flag, env string
		want      bool
	}{
		{"", "", false},
		{"123456", "", true},
		{"", "654321", true},
		{"123456", "654321", true},
		{" ", " ", false},
	} {
		c := &cli{otp: tt.flag, env: func(k string) string {
			if k == "AEGIS_OTP" {
				return tt.env
			}
			return ""
		}}
		if got := len(c.otpOptions()) == 1; got != tt.want {
			t.Errorf("--otp %q, AEGIS_OTP %q: sends a code %v, want %v", tt.flag, tt.env, got, tt.want)
		}
	}
}

func TestWriteAdminTokens(t *testing.T) {
	used := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	toks := []client.AdminToken{
		{Name: "ci", Role: "deployer", Apps: []string{"a", "b"}, CreatedAt: used, LastUsedAt: &used},
		{Name: "old", Role: "viewer", CreatedAt: used, Revoked: true},
	}
	var b bytes.Buffer
	if err := writeAdminTokens(&b, formatTable, toks); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") ||
		!strings.Contains(lines[1], "deployer") || !strings.Contains(lines[1], "a,b") || !strings.Contains(lines[1], "active") ||
		!strings.Contains(lines[2], "all") || !strings.Contains(lines[2], "revoked") {
		t.Errorf("table:\n%s", b.String())
	}
	b.Reset()
	if err := writeAdminTokens(&b, formatJSON, nil); err != nil || strings.TrimSpace(b.String()) != "[]" {
		t.Errorf("empty json: %q, %v", b.String(), err)
	}
}

func TestReadLine(t *testing.T) {
	for in, want := range map[string]string{
		"123456\n":                 "123456",
		" 123456 \r\n":             "123456",
		"123456":                   "123456",
		"":                         "",
		strings.Repeat("9", 1<<20): strings.Repeat("9", maxCodeLine),
	} {
		if got, err := readLine(strings.NewReader(in)); err != nil || got != want {
			t.Errorf("readLine(%.20q) = %.20q, %v", in, got, err)
		}
	}
}
