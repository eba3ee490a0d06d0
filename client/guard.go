package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/aegis-platform/aegis/adminapi"
)

// GuardBlock is a block the guard placed (docs/guard.md).
type GuardBlock = adminapi.GuardBlock

// GuardBlocks lists the guard's blocks in force on every server sharing
// the NATS, oldest first (GET /v1/guard/blocks).
func (c *Client) GuardBlocks(ctx context.Context) ([]GuardBlock, error) {
	var out []GuardBlock
	if err := c.call(ctx, http.MethodGet, "/v1/guard/blocks", nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	return out, nil
}

// LiftGuardBlock lifts the block id on every server and returns what it
// was (DELETE /v1/guard/blocks/{id}); operator role or above.
func (c *Client) LiftGuardBlock(ctx context.Context, id string) (*GuardBlock, error) {
	var out GuardBlock
	if err := c.call(ctx, http.MethodDelete, "/v1/guard/blocks/"+url.PathEscape(id), nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}
