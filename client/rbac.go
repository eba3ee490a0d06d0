package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/aegis-platform/aegis/adminapi"
)

// Roles of admin tokens, weakest first; docs/admin-api.md has what each
// may do.
const (
	RoleViewer   = "viewer"
	RoleOperator = "operator"
	RoleDeployer = "deployer"
	RoleAdmin    = "admin"
)

// NewAdminToken is a freshly created admin token. Token is shown this once;
// the server keeps only its hash.
type NewAdminToken = adminapi.NewAdminToken

// AdminToken describes an admin token without its secret.
type AdminToken = adminapi.AdminToken

// CreateAdminToken creates an admin token with a role (RoleViewer …
// RoleAdmin), limited to apps when apps is not empty. It needs an admin
// token without an app set; it fails with ErrConflict when the name is
// taken.
func (c *Client) CreateAdminToken(ctx context.Context, name, role string, apps []string) (*NewAdminToken, error) {
	in := adminapi.CreateAdminTokenRequest{Name: name, Role: role, Apps: apps}
	var out NewAdminToken
	if err := c.call(ctx, http.MethodPost, "/v1/tokens", in, &out, http.StatusCreated, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}

// AdminTokens lists admin tokens, revoked ones included, without secrets.
// The bootstrap token in the server's admin.token file is not among them.
func (c *Client) AdminTokens(ctx context.Context) ([]AdminToken, error) {
	var out []AdminToken
	return out, c.call(ctx, http.MethodGet, "/v1/tokens", nil, &out, http.StatusOK)
}

// RevokeAdminToken revokes the named admin token at once. It fails with
// ErrNotFound when there is no such token.
func (c *Client) RevokeAdminToken(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(name), nil, nil, http.StatusNoContent, http.StatusOK)
}

// DeleteApp removes an app: its routes, triggers and versions. Its data is
// kept. Deleting is a dangerous change: with an authenticator enrolled the
// client needs WithOTP. It fails with ErrNotFound for an unknown app.
func (c *Client) DeleteApp(ctx context.Context, app string) error {
	return c.call(ctx, http.MethodDelete, "/v1/apps/"+url.PathEscape(app), nil, nil, http.StatusNoContent, http.StatusOK)
}

// MFAStatus says whether the server has an authenticator and whether
// dangerous changes need a code from it.
type MFAStatus = adminapi.MFAStatus

// MFAEnrollment is a started enrollment: the otpauth:// URI an
// authenticator app reads. It holds the secret; show it to the person
// enrolling and nowhere else.
type MFAEnrollment = adminapi.MFAEnrollment

// MFAStatus reports the server's authenticator and step-up mode.
func (c *Client) MFAStatus(ctx context.Context) (*MFAStatus, error) {
	var out MFAStatus
	if err := c.call(ctx, http.MethodGet, "/v1/mfa", nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}

// EnrollMFA starts enrolling an authenticator; ConfirmMFA with a code from
// it finishes. Replacing an enrolled authenticator needs WithOTP with a
// code of the current one.
func (c *Client) EnrollMFA(ctx context.Context) (*MFAEnrollment, error) {
	var out MFAEnrollment
	if err := c.call(ctx, http.MethodPost, "/v1/mfa/enroll", nil, &out, http.StatusCreated, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}

// ConfirmMFA activates the authenticator being enrolled with a current code
// of it. A wrong code fails with ErrPermissionDenied; no pending enrollment
// with ErrNotFound.
func (c *Client) ConfirmMFA(ctx context.Context, code string) (*MFAStatus, error) {
	in := adminapi.MFAConfirmRequest{Code: code}
	var out MFAStatus
	if err := c.call(ctx, http.MethodPost, "/v1/mfa/confirm", in, &out, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}
