package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/aegis-platform/aegis/adminapi"
)

type (
	// Advice is least-privilege advice for an app's active version.
	Advice = adminapi.Advice
	// FunctionAdvice is one function's current and advised grants.
	FunctionAdvice = adminapi.FunctionAdvice
	// GrantChange is one grant the advice changes, with its reason.
	GrantChange = adminapi.GrantChange
)

// Advice reads least-privilege advice for app (GET
// /v1/apps/{app}/advice): per function, its grants, narrower ones to
// paste into aegis.yaml, the reason for each change and the evidence it
// rests on (docs/advise.md).
func (c *Client) Advice(ctx context.Context, app string) (*Advice, error) {
	var out Advice
	if err := c.call(ctx, http.MethodGet, "/v1/apps/"+url.PathEscape(app)+"/advice", nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}

// The evidence a FunctionAdvice rests on, and the actions of a
// GrantChange (adminapi's, under the client's names).
const (
	EvidenceObserved = adminapi.EvidenceObserved
	EvidenceImports  = adminapi.EvidenceImports
	EvidenceNone     = adminapi.EvidenceNone
	ActionDrop       = adminapi.ActionDrop
	ActionNarrow     = adminapi.ActionNarrow
	ActionReadOnly   = adminapi.ActionReadOnly
)
