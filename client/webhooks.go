package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/aegis-platform/aegis/adminapi"
)

// WebhookSecret is a new signing secret for an app's hmac routes. Secret is
// base64url without padding; the answer is the only time it is shown.
type WebhookSecret = adminapi.WebhookSecret

// CreateWebhookSecret creates the webhook secret name of app. It fails with
// ErrConflict when the app already has a secret of that name.
func (c *Client) CreateWebhookSecret(ctx context.Context, app, name string) (*WebhookSecret, error) {
	var out WebhookSecret
	path := "/v1/apps/" + url.PathEscape(app) + "/webhook-secrets/" + url.PathEscape(name)
	if err := c.call(ctx, http.MethodPost, path, nil, &out, http.StatusCreated, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}
