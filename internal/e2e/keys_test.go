package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
)

// keyName makes a key name unique to this run: key names are never reused,
// and the shared server outlives a test run with -count.
func keyName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}

// TestKeyScopes: a key scoped to one function calls it and is refused (403,
// with a security log line) on every other.
func TestKeyScopes(t *testing.T) {
	in, _ := sharedServer(t)
	ctx := context.Background()
	k, err := in.admin.CreateKeyWithOptions(ctx, keyName("scoped-probe"), client.KeyOptions{Scopes: []string{"probe/probe"}})
	if err != nil {
		t.Fatal(err)
	}
	if st, body, _ := call(t, in.gateway, "POST", "/probe/echo", k.Key, []byte("x")); st != 200 {
		t.Fatalf("in scope: %d %s", st, body)
	}
	st, body, hdr := call(t, in.gateway, "POST", "/slow/echo", k.Key, []byte("x"))
	if st != 403 {
		t.Fatalf("out of scope: %d %s, want 403", st, body)
	}
	if msg, _ := errorBody(t, body); msg != "forbidden" {
		t.Errorf("out of scope: message %q", msg)
	}
	reqID := hdr.Get("X-Request-Id")
	lines := in.logs.Lines("authorization denied", reqID)
	if len(lines) != 1 {
		t.Fatalf("want one security log line for request %s, got %d", reqID, len(lines))
	}
	if l := lines[0]; l["security"] != true || l["reason"] != "key scope" || l["app"] != "probe" || l["function"] != "slow" || l["level"] != "WARN" {
		t.Errorf("security line: %v", l)
	}

	// An app scope covers all its functions.
	appKey, err := in.admin.CreateKeyWithOptions(ctx, keyName("scoped-app"), client.KeyOptions{Scopes: []string{"probe"}})
	if err != nil {
		t.Fatal(err)
	}
	if st, body, _ := call(t, in.gateway, "POST", "/slow/echo", appKey.Key, []byte("x")); st != 200 {
		t.Fatalf("app scope: %d %s", st, body)
	}
}

func TestKeyExpires(t *testing.T) {
	in, _ := sharedServer(t)
	k, err := in.admin.CreateKeyWithOptions(context.Background(), keyName("short-lived"), client.KeyOptions{ExpiresIn: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	st, body, hdr := call(t, in.gateway, "POST", "/probe/echo", k.Key, []byte("x"))
	if st != 401 {
		t.Fatalf("expired key: %d %s, want 401", st, body)
	}
	if lines := in.logs.Lines("authentication failed", hdr.Get("X-Request-Id"), `"reason":"expired"`); len(lines) != 1 {
		t.Errorf("want one security line with reason expired, got %d", len(lines))
	}
}

func TestKeyRotation(t *testing.T) {
	in, _ := sharedServer(t)
	ctx := context.Background()
	name := keyName("rotated")
	old, err := in.admin.CreateKey(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := in.admin.RotateKey(ctx, name, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Name != name || fresh.Key == old.Key {
		t.Fatalf("rotate: %+v", fresh)
	}
	for _, key := range []string{old.Key, fresh.Key} {
		if st, body, _ := call(t, in.gateway, "POST", "/probe/echo", key, []byte("x")); st != 200 {
			t.Fatalf("inside the overlap: %d %s", st, body)
		}
	}
	keys, err := in.admin.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Name == name && (k.Previous == nil || k.Previous.ExpiresAt == nil) {
			t.Errorf("listing does not show the previous generation: %+v", k)
		}
	}

	time.Sleep(400 * time.Millisecond)
	if st, body, _ := call(t, in.gateway, "POST", "/probe/echo", old.Key, []byte("x")); st != 401 {
		t.Fatalf("old key after the overlap: %d %s, want 401", st, body)
	}
	if st, body, _ := call(t, in.gateway, "POST", "/probe/echo", fresh.Key, []byte("x")); st != 200 {
		t.Fatalf("new key after the overlap: %d %s", st, body)
	}
	if _, err := in.admin.RotateKey(ctx, "no-such-key", 0); err == nil {
		t.Error("rotating an unknown key succeeded")
	}
}

func TestKeysCLIOptions(t *testing.T) {
	in, _ := sharedServer(t)
	name := keyName("cli-scoped")
	code, out, errs := aegisCLI(t, in, "keys", "create", name, "--scope", "probe/probe",
		"--expires-in", "720h", "--label", "owner=e2e", "-o", "json")
	var k client.NewKey
	if code != 0 || json.Unmarshal([]byte(out), &k) != nil || k.Name != name || !strings.HasPrefix(k.Key, "aegis_") {
		t.Fatalf("keys create -o json: exit %d out %q err %q", code, out, errs)
	}
	if st, _, _ := call(t, in.gateway, "POST", "/probe/echo", k.Key, []byte("x")); st != 200 {
		t.Fatalf("in scope: %d", st)
	}
	if st, _, _ := call(t, in.gateway, "POST", "/slow/echo", k.Key, []byte("x")); st != 403 {
		t.Fatalf("out of scope: %d", st)
	}

	code, out, errs = aegisCLI(t, in, "keys", "list", "-o", "json")
	var list []client.Key
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("keys list: %d %s %s", code, out, errs)
	}
	var found bool
	for _, l := range list {
		if l.Name == name {
			found = true
			if len(l.Scopes) != 1 || l.Scopes[0] != "probe/probe" || l.Labels["owner"] != "e2e" || l.ExpiresAt == nil {
				t.Errorf("listed key: %+v", l)
			}
		}
	}
	if !found {
		t.Fatalf("%s not listed: %s", name, out)
	}
	eventually(t, 5*time.Second, "last-used time", func() bool {
		keys, err := in.admin.Keys(context.Background())
		if err != nil {
			return false
		}
		for _, l := range keys {
			if l.Name == name {
				return l.LastUsedAt != nil
			}
		}
		return false
	})
	if code, out, _ := aegisCLI(t, in, "keys", "list"); code != 0 || !strings.Contains(out, "LAST USED") || !strings.Contains(out, "probe/probe") {
		t.Errorf("keys list table: %d\n%s", code, out)
	}

	code, out, errs = aegisCLI(t, in, "keys", "rotate", name, "--overlap", "1h")
	newKey := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(newKey, "aegis_") || newKey == k.Key {
		t.Fatalf("keys rotate: exit %d out %q err %q", code, out, errs)
	}
	for _, key := range []string{k.Key, newKey} {
		if st, _, _ := call(t, in.gateway, "POST", "/probe/echo", key, []byte("x")); st != 200 {
			t.Fatalf("after rotate: %d", st)
		}
	}
	if code, _, errs := aegisCLI(t, in, "keys", "create", "bad-scope", "--scope", "Not A Scope"); code != 1 || errs == "" {
		t.Errorf("bad scope: exit %d %q", code, errs)
	}
	if code, _, errs := aegisCLI(t, in, "keys", "create", "bad-label", "--label", "novalue"); code != 1 || errs == "" {
		t.Errorf("bad label: exit %d %q", code, errs)
	}
}
