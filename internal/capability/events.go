package capability

import (
	"context"
	"fmt"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/sandbox"
)

// Publish sends an event to topic; it needs a pattern in Events.Publish
// covering the topic. Payloads are held to MaxValueSize, which by default
// matches the NATS message size limit.
func (h *Host) Publish(ctx context.Context, c *sandbox.Caller, topic string, data []byte) error {
	if err := validateTopic(topic); err != nil {
		return err
	}
	if g := grantsOf(c); g == nil || !matchAny(topic, g.Events.Publish) {
		return h.deny(ctx, c, denial{
			capability: "events.publish",
			resource:   topic,
			reason:     "no publish grant",
			msg:        fmt.Sprintf("publish to topic %q not granted", topic),
		})
	}
	if len(data) > h.cfg.MaxValueSize {
		return fmt.Errorf("publish %s: payload of %d bytes over the %d byte cap: %w",
			topic, len(data), h.cfg.MaxValueSize, aegis.ErrLimitExceeded)
	}
	if h.cfg.Events == nil {
		return errNoBackend("event")
	}
	if err := h.cfg.Events.Publish(ctx, c, topic, data); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}
