package sandbox

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

// secretEncodings are the forms of v a function's log must never show.
func secretEncodings(v string) map[string]string {
	h := hex.EncodeToString([]byte(v))
	return map[string]string{
		"plain":  v,
		"std":    base64.StdEncoding.EncodeToString([]byte(v)),
		"raw":    base64.RawStdEncoding.EncodeToString([]byte(v)),
		"url":    base64.URLEncoding.EncodeToString([]byte(v)),
		"rawurl": base64.RawURLEncoding.EncodeToString([]byte(v)),
		"hex":    h,
		"HEX":    strings.ToUpper(h),
	}
}

func TestSecretScrubber(t *testing.T) {
	// '+', '/' and a length that pads make the four base64 forms differ.
	const v = "tok-Zq8#s3cr3t/v+1?>"
	var s secretScrubber
	if got := s.scrub("nothing read: " + v); got != "nothing read: "+v {
		t.Errorf("scrubbed before any read: %q", got)
	}
	s.add("TOKEN", []byte(v))
	for form, enc := range secretEncodings(v) {
		got := s.scrub("a " + enc + " b")
		if got != "a [secret TOKEN] b" {
			t.Errorf("%s form %q scrubbed to %q", form, enc, got)
		}
	}
	if got := s.scrub(v + v); got != "[secret TOKEN][secret TOKEN]" {
		t.Errorf("twice: %q", got)
	}

	s.add("SHORT", []byte("abc"))
	if got := s.scrub("abc"); got != "abc" {
		t.Errorf("a value under MinScrubbedSecret bytes was scrubbed: %q", got)
	}

	s.add("PEM", []byte("-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\r\n-----END KEY-----"))
	if got := s.scrub("line MIIBOgIBAAJBAKj34GkxFhD9"); got != "line [secret PEM]" {
		t.Errorf("a line of a multi-line value: %q", got)
	}

	s.reset()
	if got := s.scrub(v); got != v {
		t.Errorf("scrubbed after reset: %q", got)
	}
}

// TestSecretScrubbedFromLogs reads secrets through the ABI and logs them
// in every form, through the log call, stdout, stderr and an unfinished
// last line; no form reaches the host's log, and the values reach the
// guest intact.
func TestSecretScrubbedFromLogs(t *testing.T) {
	env := newEnv(t)
	f := env.goFunction(t, "hostcalls", FunctionConfig{App: "a1", Function: "f1"})
	resp := mustInvoke(t, f, httpReq("/secret", "TOKEN,PEM,SHORT,denied,missing,bad name"))
	var out map[string]struct{ Value, Kind string }
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		t.Fatalf("%v: %s", err, resp.Body)
	}
	for name, want := range map[string]struct{ value, kind string }{
		"TOKEN":    {recorderSecrets["TOKEN"], ""},
		"PEM":      {recorderSecrets["PEM"], ""},
		"SHORT":    {"abc", ""},
		"denied":   {"", "permission_denied"},
		"missing":  {"", "not_found"},
		"bad name": {"", "not_found"}, // the recorder checks no names; capability does
	} {
		if got := out[name]; got.Value != want.value || got.Kind != want.kind {
			t.Errorf("secret %s = %+v, want %q %q", name, got, want.value, want.kind)
		}
	}
	var all strings.Builder
	for _, l := range env.host.logLines() {
		all.WriteString(l.Msg + "\n")
	}
	logs := all.String()
	for _, name := range []string{"TOKEN", "PEM"} {
		for form, enc := range secretEncodings(recorderSecrets[name]) {
			if strings.Contains(logs, enc) {
				t.Errorf("%s form of secret %s in the function log:\n%s", form, name, logs)
			}
		}
	}
	for _, want := range []string{"plain [secret TOKEN] end", "std [secret TOKEN] raw [secret TOKEN]",
		"url [secret TOKEN] rawurl [secret TOKEN]", "hex [secret TOKEN] HEX [secret TOKEN]",
		"unfinished [secret TOKEN]", "[secret PEM]", "plain abc end"} {
		if !strings.Contains(logs, want) {
			t.Errorf("function log lacks %q:\n%s", want, logs)
		}
	}
}

// TestSecretScrubbedFromFunctionMessage fails an invocation with a panic
// quoting a secret: its error message names the secret, not its value.
func TestSecretScrubbedFromFunctionMessage(t *testing.T) {
	env := newEnv(t)
	f := env.goFunction(t, "hostcalls", FunctionConfig{})
	req := httpReq("/secret", "TOKEN")
	req.Query = map[string][]string{"fail": {""}}
	_, err := f.Invoke(context.Background(), req)
	requireErrorIs(t, err, ErrTrap)
	msg := FunctionMessage(err)
	if !strings.Contains(msg, "could not log in with [secret TOKEN]: refused") {
		t.Errorf("function message %q", msg)
	}
	if strings.Contains(msg, recorderSecrets["TOKEN"]) || strings.Contains(err.Error(), recorderSecrets["TOKEN"]) {
		t.Errorf("secret in the error: %v / %q", err, msg)
	}
}
