package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/guard/rulefile"
)

// GuardRules is the guard's rule file as the server keeps it: shared by
// every server, applied by each within a second (server/guardrules.go).
type GuardRules interface {
	// Base is what a rule file is applied on, and where it comes from
	// (rulefile.SourceDefault or rulefile.SourceConfiguration).
	Base() ([]guard.Rule, string)
	// InForce is the applied file this server runs and its rules; ok is
	// false while none is.
	InForce() (a rulefile.Applied, file []guard.Rule, ok bool)
	// Apply stores the file for every server and puts it in force on
	// this one at once.
	Apply(ctx context.Context, a rulefile.Applied, file []guard.Rule) error
}

// guardRulesFile names the body of PUT /v1/guard/rules in its errors.
const guardRulesFile = "guard.yaml"

// guardRules answers the rule file in force on this server and the rules
// it makes (GET /v1/guard/rules).
func (a *API) guardRules(w http.ResponseWriter, _ *http.Request, _ string) error {
	base, source := a.cfg.GuardRules.Base()
	applied, file, ok := a.cfg.GuardRules.InForce()
	out := adminapi.GuardRules{Rules: rulefile.Effective(base, source, file)}
	if ok {
		at := applied.At
		out.File, out.AppliedBy, out.AppliedAt = applied.File, applied.By, &at
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// applyGuardRules checks a rule file and, unless ?dry_run=true, stores it
// for every server (PUT /v1/guard/rules). A file that weakens a default
// rule needs step-up; the audit record names its rules and weakenings.
func (a *API) applyGuardRules(w http.ResponseWriter, r *http.Request, reqID string) error {
	dryRun, err := boolQuery(r, "dry_run")
	if err != nil {
		return err
	}
	text, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rulefile.MaxSize))
	if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
		return &userError{http.StatusRequestEntityTooLarge, fmt.Sprintf("a rule file is at most %d bytes", rulefile.MaxSize)}
	}
	if err != nil {
		return &userError{http.StatusBadRequest, "could not read the rule file"}
	}
	sum := sha256.Sum256(text)
	noteAudit(r, "file_sha256", hex.EncodeToString(sum[:]))
	if dryRun {
		noteAudit(r, "dry_run", "true")
	}
	file, err := rulefile.Parse(guardRulesFile, text)
	if err != nil {
		// Every problem names its line and field: the message is for the
		// author.
		return &userError{http.StatusBadRequest, err.Error()}
	}
	noteAudit(r, "rules", strings.Join(ruleNames(file), ","))
	base, source := a.cfg.GuardRules.Base()
	_, before, _ := a.cfg.GuardRules.InForce()
	after := guard.Merge(base, file)
	if len(after) > guard.MaxRules {
		return &userError{http.StatusBadRequest, fmt.Sprintf("%s: %d rules with the defaults, at most %d", guardRulesFile, len(after), guard.MaxRules)}
	}
	// Judged against the built-in defaults, whatever this server runs
	// on: what the file itself does to a default is what needs a code.
	weak := guard.Weakenings(guard.DefaultRules(), file)
	noteAudit(r, "weakenings", strings.Join(weak, "; "))
	out := adminapi.GuardRulesApplied{DryRun: dryRun, Changes: rulefile.Changes(guard.Merge(base, before), after),
		Weakenings: nonNilStrings(weak), Rules: rulefile.Effective(base, source, file)}
	if dryRun {
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	if err := a.stepUp(r, reqID, prefixed("guard rule ", weak)); err != nil {
		return err
	}
	applied := rulefile.Applied{File: string(text), By: principal(r).Name, At: time.Now().UTC().Truncate(time.Second)}
	if err := a.cfg.GuardRules.Apply(r.Context(), applied, file); err != nil {
		return err
	}
	out.AppliedBy, out.AppliedAt = applied.By, &applied.At
	writeJSON(w, http.StatusOK, out)
	return nil
}

// boolQuery reads a true/false query parameter; absent is false.
func boolQuery(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &userError{http.StatusBadRequest, name + " must be true or false"}
	}
	return b, nil
}

func ruleNames(rules []guard.Rule) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.Name
	}
	return out
}

func prefixed(prefix string, s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = prefix + v
	}
	return out
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
