package capability

import (
	"context"
	"fmt"
	"slices"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/callgraph"
	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/manifest"
)

// Secrets is the vault as this package needs it: the current value of an
// app's secret, or an error wrapping aegis.ErrNotFound when the app has no
// secret of that name. *vault.Vault satisfies it. Its errors must never
// carry a value.
type Secrets interface {
	Read(ctx context.Context, app, name string) ([]byte, error)
}

// Secret reads the app's secret name for a function that names it in
// grants.secrets (exact names, no patterns). The value goes to the guest
// only: it is never logged, and the span and call graph name the secret.
func (h *Host) Secret(ctx context.Context, c *sandbox.Caller, name string) ([]byte, error) {
	if err := manifest.CheckVaultSecretName(name); err != nil {
		return nil, fmt.Errorf("secret %q: %w: %s", name, aegis.ErrInvalidArgument, err.Error())
	}
	g := grantsOf(c)
	if g == nil || !slices.Contains(g.Secrets, name) {
		return nil, h.deny(ctx, c, denial{
			capability: "secrets.get",
			resource:   name,
			reason:     "no secret grant",
			msg:        fmt.Sprintf("secret %q not granted", name),
		})
	}
	h.used(c, callgraph.Secret, name)
	if h.cfg.Secrets == nil {
		return nil, fmt.Errorf("secret %q: vault not configured: %w", name, aegis.ErrUnavailable)
	}
	v, err := h.cfg.Secrets.Read(ctx, c.App, name)
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", name, err)
	}
	return v, nil
}
