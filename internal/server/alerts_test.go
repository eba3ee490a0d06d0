package server

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
)

func TestAlertConfigValidates(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	ok := Config{AlertWebhooks: []string{"https://hooks.example.com/aegis", "http://127.0.0.1:9000/"}, AlertWebhookSecret: secret}
	if err := ok.validate(); err != nil {
		t.Fatalf("valid alert webhooks refused: %v", err)
	}
	for name, c := range map[string]struct {
		cfg  Config
		want string
	}{
		"no secret":    {Config{AlertWebhooks: []string{"https://hooks.example.com/"}}, "--alert-webhook needs a signing secret"},
		"short secret": {Config{AlertWebhooks: []string{"https://hooks.example.com/"}, AlertWebhookSecret: secret[:31]}, "fewer than 32"},
		"plain http":   {Config{AlertWebhooks: []string{"http://hooks.example.com/"}, AlertWebhookSecret: secret}, "plain http only to a loopback address"},
	} {
		err := c.cfg.validate()
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "configure server: ") {
			t.Errorf("%s: %v, want a configuration error naming %q", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), string(secret[:31])) {
			t.Errorf("%s: the error quotes the secret", name)
		}
	}
}

func TestReadAlertSecret(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{AlertSecretEnv: "from-the-environment"}
	getenv := func(k string) string { return env[k] }
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte("  from-the-file-0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadAlertSecret(file, getenv)
	if err != nil || string(got) != "from-the-file-0123456789abcdef0123" {
		t.Errorf("from the file: %q, %v", got, err)
	}
	if got, err := ReadAlertSecret("", getenv); err != nil || string(got) != "from-the-environment" {
		t.Errorf("from the environment: %q, %v", got, err)
	}
	if got, err := ReadAlertSecret("", func(string) string { return "" }); err != nil || got != nil {
		t.Errorf("from nowhere: %q, %v; want none", got, err)
	}
	open := filepath.Join(dir, "open")
	if err := os.WriteFile(open, []byte("from-an-open-file-0123456789abcdef"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadAlertSecret(open, getenv); err == nil || !strings.Contains(err.Error(), "chmod 600") ||
		strings.Contains(err.Error(), "from-an-open-file") {
		t.Errorf("a file others may read: %v, want refused without its contents", err)
	}
	if _, err := ReadAlertSecret(filepath.Join(dir, "missing"), getenv); err == nil {
		t.Error("a missing file read")
	}
}

// raiseAlert, the guard's OnAlert: one security line, the metric, and the
// alert in the shared stream.
func TestRaiseAlert(t *testing.T) {
	ctx := context.Background()
	node, err := jetstream.Open(ctx, jetstream.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close(ctx)
	logs := logbuf.New()
	s := &Server{log: slog.New(slog.NewJSONHandler(logs, nil)), metrics: metrics.New(), node: node}
	if err := s.openAlerts(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.closeAlerts()
	now := time.Now().UTC()
	a := guard.Alert{ID: "inc-1", Time: now, Rule: guard.RuleBruteForce, Signals: []string{"auth_failure"}, GroupBy: "address",
		Target: "192.0.2.7", Count: 21, Window: "1m0s", Actions: []string{"block_address 15m0s"},
		Message: "21 authentication failures from 192.0.2.7 within 1m0s", Until: now.Add(15 * time.Minute)}
	s.raiseAlert(a)

	lines := logs.Messages("guard alert raised")
	if len(lines) != 1 {
		t.Fatalf("%d alert lines, want 1", len(lines))
	}
	for k, want := range map[string]any{"level": "WARN", "security": true, "alert": true, "rule": "brute_force",
		"target": "192.0.2.7", "message": a.Message, "alert_id": "inc-1"} {
		if lines[0][k] != want {
			t.Errorf("alert line %s = %v, want %v", k, lines[0][k], want)
		}
	}
	if got := s.metrics.GuardAlerts("brute_force"); got != 1 {
		t.Errorf("aegis_guard_alerts_total{rule=brute_force} = %v, want 1", got)
	}
	listed, err := s.alerts.List(ctx, time.Time{}, 0)
	if err != nil || len(listed) != 1 || listed[0].ID != "inc-1" || listed[0].Message != a.Message {
		t.Errorf("listed %v, %v", listed, err)
	}
}
