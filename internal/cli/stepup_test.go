package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/server"
)

func TestAskStepUpDecides(t *testing.T) {
	refusal := &client.APIError{Status: http.StatusForbidden, Message: "forbidden: step-up required (rotate key k): pass a current code", StepUp: true}
	for _, tt := range []struct {
		name     string
		err      error
		terminal bool
		otp      string
		input    string
		want     string
	}{
		{"asks at a terminal", refusal, true, "", "123456\n", "123456"},
		{"not a terminal", refusal, false, "", "123456\n", ""},
		{"a code was given already", refusal, true, "111111", "123456\n", ""},
		{"nothing typed", refusal, true, "", "\n", ""},
		{"another refusal", &client.APIError{Status: http.StatusForbidden, Message: "forbidden: role viewer may not deploy"}, true, "", "123456\n", ""},
		{"no authenticator", &client.APIError{Status: http.StatusForbidden, Message: "forbidden: step-up required (x), but no authenticator is enrolled: enroll one"}, true, "", "123456\n", ""},
		{"step-up message, no marker", &client.APIError{Status: http.StatusForbidden, Message: "forbidden: step-up required (x)"}, true, "", "123456\n", ""},
		{"not an API error", io.EOF, true, "", "123456\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pinTerminal(t, tt.terminal)
			var stderr bytes.Buffer
			c := &cli{stdin: strings.NewReader(tt.input), stderr: &stderr, otp: tt.otp, env: func(string) string { return "" }}
			code, again := c.askStepUp(tt.err)
			if code != tt.want || again != (tt.want != "") {
				t.Errorf("askStepUp = %q, %v; want %q", code, again, tt.want)
			}
			if asked := strings.Contains(stderr.String(), "Code shown by the authenticator"); asked != (tt.want != "" || tt.name == "nothing typed") {
				t.Errorf("prompt shown: %v (%q)", asked, stderr.String())
			}
		})
	}
}

func pinTerminal(t *testing.T, is bool) {
	t.Helper()
	old := isTerminal
	isTerminal = func(io.Reader) bool { return is }
	t.Cleanup(func() { isTerminal = old })
}

// TestStepUpPromptRetries runs a dangerous change (rotating an API key)
// against a real server with an authenticator enrolled: at a terminal the
// CLI asks for the code and runs the command again with it; in a script it
// fails with the refusal.
func TestStepUpPromptRetries(t *testing.T) {
	srv, err := server.New(server.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	ac := client.New(srv.AdminURL(), srv.AdminToken())
	enrolled, err := ac.EnrollMFA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key, err := otp.NewKeyFromURL(enrolled.URI)
	if err != nil {
		t.Fatal(err)
	}
	codeAt := func(at time.Time) string {
		code, err := totp.GenerateCode(key.Secret(), at)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	if _, err := ac.ConfirmMFA(ctx, codeAt(time.Now().Add(-30*time.Second))); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.CreateKey(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AEGIS_URL": srv.AdminURL(), "AEGIS_TOKEN": srv.AdminToken()}
	rotate := func(stdin string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Run(ctx, []string{"keys", "rotate", "k"}, strings.NewReader(stdin), &out, &errOut, func(k string) string { return env[k] })
		return code, out.String(), errOut.String()
	}

	pinTerminal(t, false)
	if code, _, stderr := rotate(codeAt(time.Now()) + "\n"); code != exitFailure || !strings.Contains(stderr, "step-up required") ||
		strings.Contains(stderr, "Code shown by the authenticator") {
		t.Fatalf("in a script: exit %d, stderr %q; want the refusal and no prompt", code, stderr)
	}

	pinTerminal(t, true)
	code, stdout, stderr := rotate(codeAt(time.Now()) + "\n")
	if code != exitOK || !strings.Contains(stderr, "Code shown by the authenticator") || !strings.Contains(stdout, "aegis_") {
		t.Fatalf("at a terminal: exit %d, stdout %q, stderr %q; want the prompt, then the new key", code, stdout, stderr)
	}
}
