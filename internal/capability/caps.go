package capability

import (
	"context"
	"fmt"

	"github.com/aegis-platform/aegis/internal/sandbox"
	"github.com/aegis-platform/aegis/manifest"
)

// Per-invocation caps (manifest.Limits: max_fetches, max_egress,
// max_publishes, max_event_size) bound what one invocation can fan out to,
// whatever its timeout allows: a handler stuck in a loop of fetches or
// publishes stops at its cap rather than at its timeout, and its bill with
// it. Going past a cap is refused like a missing grant (ErrPermissionDenied
// and a security line naming the cap): the function asked for more than its
// manifest lets it have. The counts live in the invocation's Meter, which
// the dispatcher also charges to the caller's usage.

// capsOf returns the caller's limits with defaults applied, and its meter;
// a caller built without them (tests, tools) gets the defaults and a meter
// of its own for this call.
func capsOf(c *sandbox.Caller) (manifest.Limits, *sandbox.Meter) {
	var l manifest.Limits
	var m *sandbox.Meter
	if c != nil {
		if c.Limits != nil {
			l = *c.Limits
		}
		m = c.Meter
	}
	if m == nil {
		m = &sandbox.Meter{}
	}
	return l.WithDefaults(), m
}

// overCap refuses a host call that would go past one of the caps.
func (h *Host) overCap(ctx context.Context, c *sandbox.Caller, capability, resource, limit string, max int64, what string) error {
	return h.deny(ctx, c, denial{
		capability: capability,
		resource:   resource,
		reason:     fmt.Sprintf("%s of %d reached", limit, max),
		msg:        fmt.Sprintf("%s: %s (limits.%s is %d)", capability, what, limit, max),
	})
}
