package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis/client"
	"github.com/aegis-platform/aegis/internal/guard/rulefile"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/server"
)

// Rule files of TestGuardRuleFile.
const (
	// badRuleFile's fourth line holds a threshold out of range.
	badRuleFile = `rules:
  - name: brute_force
    when:
      threshold: -5
      signal: auth_failure
      group_by: address
      window: 1m
    then: [{action: block_address, duration: 15m}]
`
	// weakRuleFile raises brute_force's threshold above the default's
	// and turns shadow_api off.
	weakRuleFile = `rules:
  - name: brute_force
    when: {signal: auth_failure, group_by: address, threshold: 100, window: 1m}
    then: [{action: block_address, duration: 15m}]
  - name: shadow_api
    disabled: true
`
	// strongRuleFile lowers brute_force's threshold to 3 and blocks for
	// longer, and adds a rule: stronger than the defaults everywhere.
	strongRuleFile = `rules:
  - name: brute_force            # a default's name replaces that default
    when: {signal: auth_failure, group_by: address, threshold: 3, window: 1m}
    then:
      - {action: block_address, duration: 30m}
  - name: trap_storm
    when: {signal: trap, group_by: function, threshold: 1000, window: 1m}
    then: [{action: alert}]
`
)

// ruleOf finds a rule of a GET /v1/guard/rules answer.
func ruleOf(t *testing.T, rules *client.GuardRules, name string) client.GuardRule {
	t.Helper()
	i := slices.IndexFunc(rules.Rules, func(r client.GuardRule) bool { return r.Name == name })
	if i < 0 {
		t.Fatalf("no rule %q in force: %+v", name, rules.Rules)
	}
	return rules.Rules[i]
}

// TestGuardRuleFile: a bad rule file is refused naming its line and
// field; one that weakens a default needs a step-up code once an
// authenticator is enrolled; one that strengthens needs none; the rules
// applied are in force at once on the server reached (a lowered
// brute_force threshold blocks after fewer failures) and within a second
// on another server sharing its NATS; a stored file that no longer parses
// leaves the rules in force as they were.
func TestGuardRuleFile(t *testing.T) {
	// The harness's rules (thresholds no test reaches) are the base the
	// file applies on: the server's own, not the guard's sharing test.
	in := startServer(t, t.TempDir())
	defer in.close(t)
	second := startServerWith(t, t.TempDir(), func(c *server.Config) {
		shareNATS(c, in)
	})
	defer second.close(t)
	deployProbe(t, in, "testdata/probe.yaml")
	ctx := context.Background()
	key, err := in.admin.CreateKey(ctx, "rule-file")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	before, err := in.admin.GuardRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before.File != "" || before.AppliedAt != nil || ruleOf(t, before, "brute_force").Source != rulefile.SourceConfiguration {
		t.Fatalf("rules before any file: %+v", before)
	}

	t.Run("a bad file names its line and field", func(t *testing.T) {
		bad := write("bad.yaml", badRuleFile)
		code, out, errs := aegisCLI(t, in, "guard", "apply", bad)
		if want := bad + ":4: rules[0].when.threshold: must be 0 to 1000000"; code != 1 || !strings.Contains(errs, want) {
			t.Fatalf("aegis guard apply of a bad file: exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errs, want)
		}
		// The server checks too, whatever client sent it.
		_, err := in.admin.ApplyGuardRules(ctx, []byte(badRuleFile), false)
		wantRefused(t, "a bad file through the API", err, http.StatusBadRequest, "guard.yaml:4: rules[0].when.threshold: must be 0 to 1000000")
		if !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("a bad file is not ErrInvalidArgument: %v", err)
		}
		_, err = in.admin.ApplyGuardRules(ctx, []byte("rules:\n  - name: brute_force\n    when: {treshold: 5}\n"), false)
		wantRefused(t, "an unknown field", err, http.StatusBadRequest, `guard.yaml:3: rules[0].when: unknown field "treshold"`)
		if code, _, errs := aegisCLI(t, in, "guard", "apply", filepath.Join(dir, "missing.yaml")); code != 1 || !strings.Contains(errs, "missing.yaml") {
			t.Errorf("a missing file: exit %d %s", code, errs)
		}
		// A viewer reads the rules but may not apply a file.
		viewer, err := in.admin.CreateAdminToken(ctx, "rules-viewer", client.RoleViewer, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := as(in, viewer.Token).GuardRules(ctx); err != nil {
			t.Errorf("a viewer reading the rules: %v", err)
		}
		if _, err := as(in, viewer.Token).ApplyGuardRules(ctx, []byte(strongRuleFile), false); !errors.Is(err, client.ErrPermissionDenied) {
			t.Errorf("a viewer applying a file: %v, want permission denied", err)
		}
	})

	// An authenticator from now on: weakening needs its code.
	e, err := in.admin.EnrollMFA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	secret := totpSecret(t, e.URI)
	if _, err := in.admin.ConfirmMFA(ctx, codeAt(t, secret, time.Now().Add(-30*time.Second))); err != nil {
		t.Fatal(err)
	}

	t.Run("weakening needs step-up", func(t *testing.T) {
		weak := write("weak.yaml", weakRuleFile)
		_, err := in.admin.ApplyGuardRules(ctx, []byte(weakRuleFile), false)
		wantRefused(t, "a weakening file without a code", err, http.StatusForbidden,
			"step-up required (guard rule brute_force: threshold raised from 20 to 100; guard rule shadow_api: disabled)")
		if !errors.Is(err, client.ErrStepUpRequired) {
			t.Errorf("refusal not marked as wanting a code: %v", err)
		}
		// A script (no terminal) gets the refusal and exit 1.
		if code, _, errs := aegisCLI(t, in, "guard", "apply", weak); code != 1 || !strings.Contains(errs, "step-up required") || !strings.Contains(errs, "--otp") {
			t.Errorf("aegis guard apply of a weakening file without --otp: exit %d %s", code, errs)
		}
		// A dry run needs no code, stores nothing, and says what the
		// file would weaken.
		code, out, errs := aegisCLI(t, in, "guard", "apply", weak, "--dry-run")
		if code != 0 || !strings.Contains(out, "dry run") || !strings.Contains(out, "brute_force: threshold raised from 20 to 100") ||
			!strings.Contains(out, "needs a step-up code") {
			t.Errorf("dry run: exit %d\n%s%s", code, out, errs)
		}
		now, err := in.admin.GuardRules(ctx)
		if err != nil || now.File != "" || ruleOf(t, now, "shadow_api").Disabled {
			t.Fatalf("refused and dry-run applies changed the rules: %+v %v", now, err)
		}

		res, err := as(in, in.srv.AdminToken(), client.WithOTP(codeAt(t, secret, time.Now()))).ApplyGuardRules(ctx, []byte(weakRuleFile), false)
		if err != nil {
			t.Fatalf("a weakening file with a current code: %v", err)
		}
		if res.AppliedBy != "root" || len(res.Weakenings) != 2 {
			t.Errorf("answer: %+v", res)
		}
		now, err = in.admin.GuardRules(ctx)
		if err != nil {
			t.Fatal(err)
		}
		bf := ruleOf(t, now, "brute_force")
		if now.File != weakRuleFile || now.AppliedBy != "root" || bf.Threshold != 100 || bf.Source != rulefile.SourceFile ||
			!ruleOf(t, now, "shadow_api").Disabled {
			t.Errorf("rules after the weakening file: %+v", now)
		}
		wantAudited(t, in, "brute_force,shadow_api", "brute_force: threshold raised from 20 to 100; shadow_api: disabled", true)
	})

	t.Run("strengthening needs none, and is in force at once", func(t *testing.T) {
		strong := write("guard.yaml", strongRuleFile)
		code, out, errs := aegisCLI(t, in, "guard", "apply", strong)
		if code != 0 {
			t.Fatalf("aegis guard apply of a strengthening file: exit %d\n%s%s", code, out, errs)
		}
		// What changed since the weakening file: brute_force's
		// threshold and block, shadow_api back on, a new rule.
		for _, want := range []string{"applied " + strong, "changed  brute_force", "when.threshold: 100 → 3",
			"then: block_address 15m → block_address 30m", "enabled  shadow_api", "added    trap_storm"} {
			if !strings.Contains(out, want) {
				t.Errorf("aegis guard apply says\n%s\nwithout %q", out, want)
			}
		}
		if strings.Contains(out, "weakens") {
			t.Errorf("a stronger file is said to weaken:\n%s", out)
		}
		wantAudited(t, in, "brute_force,trap_storm", "", false)

		// -o yaml is a rule file: it parses, and names the rule as applied.
		code, out, errs = aegisCLI(t, in, "guard", "rules", "-o", "yaml")
		if code != 0 {
			t.Fatalf("guard rules -o yaml: %d %s", code, errs)
		}
		rules, err := rulefile.Parse("rules.yaml", []byte(out))
		if err != nil || !strings.Contains(out, "when: {signal: auth_failure, group_by: address, threshold: 3, window: 1m}") {
			t.Fatalf("guard rules -o yaml is not the rules in force: %v\n%s", err, out)
		}
		if len(rules) != 7 {
			t.Errorf("%d rules written, want the 6 defaults and trap_storm", len(rules))
		}
		code, out, _ = aegisCLI(t, in, "guard", "rules", "-o", "json")
		var got client.GuardRules
		if code != 0 || json.Unmarshal([]byte(out), &got) != nil || ruleOf(t, &got, "trap_storm").Source != "file" {
			t.Errorf("guard rules -o json: %d %s", code, out)
		}
		if code, out, _ := aegisCLI(t, in, "guard", "rules"); code != 0 || !strings.Contains(out, "rule file applied by root") {
			t.Errorf("guard rules: %d %s", code, out)
		}

		// The effect: four wrong keys (more than 3), and even a valid
		// key is refused.
		for i := range 4 {
			if st, _, _ := call(t, in.gateway, "POST", "/probe/echo", "aegis_wrongwrongwrongwrongwrong", []byte("x")); st != http.StatusUnauthorized {
				t.Fatalf("wrong key %d: %d, want 401", i+1, st)
			}
		}
		eventually(t, 5*time.Second, "the address blocked after 4 failures", func() bool {
			st, _, _ := call(t, in.gateway, "POST", "/probe/echo", key.Key, []byte("x"))
			return st == http.StatusForbidden
		})
		blocks, err := in.admin.GuardBlocks(ctx)
		if err != nil || len(blocks) != 1 || blocks[0].Rule != "brute_force" || blocks[0].Count != 4 ||
			blocks[0].Expires.Sub(blocks[0].Created) != 30*time.Minute {
			t.Fatalf("blocks: %+v %v", blocks, err)
		}
		// Lifting a block is itself a step-up change.
		_, err = in.admin.LiftGuardBlock(ctx, blocks[0].ID)
		if !errors.Is(err, client.ErrStepUpRequired) {
			t.Fatalf("lift without a code: %v, want a step-up refusal", err)
		}
		// The current step's code went to the apply above: the next one.
		if _, err := as(in, in.srv.AdminToken(), client.WithOTP(codeAt(t, secret, time.Now().Add(30*time.Second)))).LiftGuardBlock(ctx, blocks[0].ID); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("shared with every server", func(t *testing.T) {
		eventually(t, 5*time.Second, "the file in force on the second server", func() bool {
			r, err := second.admin.GuardRules(ctx)
			return err == nil && r.File == strongRuleFile && ruleOf(t, r, "brute_force").Threshold == 3
		})
	})

	t.Run("a stored file that no longer parses keeps the rules", func(t *testing.T) {
		n := outsider(t, in)
		bucket, err := n.Bucket(ctx, rulefile.Bucket, jetstream.BucketOptions{History: 1})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := rulefile.Applied{File: "rules: [oops", By: "intruder", At: time.Now()}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bucket.Put(ctx, rulefile.Key, rec); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "the unreadable file logged", func() bool {
			return len(in.logs.Messages("guard rule file not applied: the rules in force are kept")) > 0
		})
		r, err := in.admin.GuardRules(ctx)
		if err != nil || r.File != strongRuleFile || ruleOf(t, r, "brute_force").Threshold != 3 {
			t.Errorf("rules after an unreadable file: %+v %v", r, err)
		}
	})
}

// wantAudited finds the last guard.apply outcome record: its rules, its
// weakenings and whether a step-up code was accepted.
func wantAudited(t *testing.T, in *instance, rules, weakenings string, stepUp bool) {
	t.Helper()
	recs, err := in.admin.Audit(context.Background(), client.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if r.Action != "guard.apply" || r.Outcome != "ok" {
			continue
		}
		if r.Detail["rules"] != rules || r.Detail["weakenings"] != weakenings || (r.Detail["step_up"] == "accepted") != stepUp ||
			r.Detail["dry_run"] != "" || r.Detail["file_sha256"] == "" {
			t.Errorf("guard.apply audit record: %+v", r.Detail)
		}
		return
	}
	t.Errorf("no guard.apply record in the audit log")
}
