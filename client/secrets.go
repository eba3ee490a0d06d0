package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/aegis-platform/aegis/adminapi"
)

type (
	// Secret describes one secret of an app's vault, never its value.
	Secret = adminapi.Secret
	// SecretVersion is one readable version of a secret.
	SecretVersion = adminapi.SecretVersion
)

// MaxSecretSize is the largest secret value the vault stores.
const MaxSecretSize = adminapi.MaxSecretSize

func secretPath(app, name string) string {
	return "/v1/apps/" + url.PathEscape(app) + "/secrets/" + url.PathEscape(name)
}

// SetSecret stores value as the secret name of app: its first version, or
// a new one that replaces the current at once (PUT).
func (c *Client) SetSecret(ctx context.Context, app, name string, value []byte) (*Secret, error) {
	var out Secret
	if err := c.callRaw(ctx, http.MethodPut, secretPath(app, name), value, &out, http.StatusCreated); err != nil {
		return nil, err
	}
	return &out, nil
}

// RotateSecret makes value the secret's new version; the previous one
// stays readable for overlap.
func (c *Client) RotateSecret(ctx context.Context, app, name string, value []byte, overlap time.Duration) (*Secret, error) {
	var out Secret
	path := secretPath(app, name) + "/rotate" + query("overlap", overlap.String())
	if err := c.callRaw(ctx, http.MethodPost, path, value, &out, http.StatusCreated); err != nil {
		return nil, err
	}
	return &out, nil
}

// Secrets lists the secrets of app: names, versions and dates.
func (c *Client) Secrets(ctx context.Context, app string) ([]Secret, error) {
	var out []Secret
	return out, c.call(ctx, http.MethodGet, "/v1/apps/"+url.PathEscape(app)+"/secrets", nil, &out, http.StatusOK)
}

// RemoveSecret deletes the secret name of app and every version of it.
func (c *Client) RemoveSecret(ctx context.Context, app, name string) error {
	return c.call(ctx, http.MethodDelete, secretPath(app, name), nil, nil, http.StatusNoContent)
}

// callRaw sends body as application/octet-stream and decodes the JSON
// answer into out.
func (c *Client) callRaw(ctx context.Context, method, path string, body []byte, out any, want ...int) error {
	req, err := c.newRequest(ctx, method, path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Accept", "application/json")
	resp, err := c.do(req, want...)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, MaxResponseSize)).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s answer: %w", method, path, err)
	}
	return nil
}

// DataKeyRotation is what a data key rotation did.
type DataKeyRotation = adminapi.DataKeyRotation

// RotateDataKey makes a new key seal app's tables and objects from now on.
func (c *Client) RotateDataKey(ctx context.Context, app string) (*DataKeyRotation, error) {
	var out DataKeyRotation
	if err := c.call(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(app)+"/data-key/rotate", nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}

// MasterRotation is what a master key rotation did.
type MasterRotation = adminapi.MasterRotation

// RotateMaster gives the server's vault a new master key (step-up).
func (c *Client) RotateMaster(ctx context.Context) (*MasterRotation, error) {
	var out MasterRotation
	if err := c.call(ctx, http.MethodPost, "/v1/vault/rotate-master", nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}
