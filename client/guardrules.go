package client

import (
	"context"
	"net/http"

	"github.com/aegis-platform/aegis/adminapi"
)

type (
	// GuardRules is the guard's applied rule file and the rules in force
	// (docs/guard.md, "The rule file").
	GuardRules = adminapi.GuardRules
	// GuardRule is one rule as a rule file spells it.
	GuardRule = adminapi.GuardRule
	// GuardAction is what a rule does, for how long.
	GuardAction = adminapi.GuardAction
	// GuardRulesApplied is what applying a rule file changed.
	GuardRulesApplied = adminapi.GuardRulesApplied
	// GuardRuleChange is one rule a rule file changes.
	GuardRuleChange = adminapi.GuardRuleChange
)

// GuardRules returns the applied rule file and the rules in force on the
// server reached (GET /v1/guard/rules).
func (c *Client) GuardRules(ctx context.Context) (*GuardRules, error) {
	var out GuardRules
	if err := c.call(ctx, http.MethodGet, "/v1/guard/rules", nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}

// ApplyGuardRules applies the rule file text on every server (PUT
// /v1/guard/rules), or with dryRun only checks it and says what it would
// change. A file that weakens a default rule needs step-up (WithOTP); a
// bad one is refused with ErrInvalidArgument, its message naming line
// and field.
func (c *Client) ApplyGuardRules(ctx context.Context, file []byte, dryRun bool) (*GuardRulesApplied, error) {
	var out GuardRulesApplied
	path := "/v1/guard/rules"
	if dryRun {
		path += query("dry_run", "true")
	}
	if err := c.callRaw(ctx, http.MethodPut, path, file, &out, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}
