package server

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/aegis-platform/aegis/internal/alert"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// AlertSecretEnv is the environment variable the CLI reads the alert
// webhooks' signing secret from when no --alert-webhook-secret-file names
// a file.
const AlertSecretEnv = "AEGIS_ALERT_WEBHOOK_SECRET"

// publishTimeout bounds recording one alert: the guard's goroutine that
// raised it may block briefly, never for long.
const publishTimeout = 5 * time.Second

// ReadAlertSecret is the alert webhooks' signing secret: the contents of
// file when one is named (a regular file no one but its owner may read,
// surrounding white space dropped), else the value of AlertSecretEnv from
// getenv, else nil. Whether it is long enough is checked with the
// webhooks (Config.validate). Errors never quote the secret.
func ReadAlertSecret(file string, getenv func(string) string) ([]byte, error) {
	if file == "" {
		if v := getenv(AlertSecretEnv); v != "" {
			return []byte(v), nil
		}
		return nil, nil
	}
	fi, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("--alert-webhook-secret-file: %w", err)
	}
	switch {
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("--alert-webhook-secret-file %s: not a regular file", file)
	case runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("--alert-webhook-secret-file %s: mode %04o lets others read it: chmod 600 %s", file, fi.Mode().Perm(), file)
	case fi.Size() > 4096:
		return nil, fmt.Errorf("--alert-webhook-secret-file %s: %d bytes, not a secret", file, fi.Size())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--alert-webhook-secret-file: %w", err)
	}
	return bytes.TrimSpace(b), nil
}

// validateAlerts checks the webhooks and their secret together.
func (c Config) validateAlerts() error {
	if err := alert.CheckWebhooks(c.AlertWebhooks, c.AlertWebhookSecret); err != nil {
		return fmt.Errorf("configure server: %w", err)
	}
	return nil
}

// openAlerts opens the alert stream every server shares and starts the
// delivery to the operator's webhooks; before the guard, which raises
// alerts.
func (s *Server) openAlerts(ctx context.Context) error {
	var err error
	if s.alerts, err = alert.Open(ctx, s.node, s.log); err != nil {
		return err
	}
	if len(s.cfg.AlertWebhooks) == 0 {
		return nil
	}
	s.alertHooks, err = alert.StartWebhooks(s.node, alert.WebhookConfig{
		URLs: s.cfg.AlertWebhooks, Secret: s.cfg.AlertWebhookSecret, Client: s.cfg.AlertClient,
		Logger: s.log, OnOutcome: s.metrics.GuardAlertDelivery,
	})
	return err
}

// closeAlerts stops the webhook deliveries, a delivery in progress handed
// back to the stream; after the guard, before the node.
func (s *Server) closeAlerts() {
	s.alertHooks.Close()
}

// raiseAlert is the guard's OnAlert: one incident, said once in the log
// (a security line an operator should act on), counted, and recorded in
// the stream, from which `aegis guard alerts` lists it and the webhooks
// deliver it.
func (s *Server) raiseAlert(a guard.Alert) {
	s.log.Warn("guard alert raised", logkey.Security, true, logkey.Alert, true, logkey.Rule, a.Rule,
		logkey.Target, a.Target, logkey.Message, a.Message, logkey.AlertID, a.ID)
	s.metrics.GuardAlert(a.Rule)
	if s.alerts == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := s.alerts.Publish(ctx, a); err != nil {
		s.log.Error("guard alert not recorded: neither listed nor delivered", logkey.AlertID, a.ID, logkey.Rule, a.Rule, logkey.Error, err)
	}
}
