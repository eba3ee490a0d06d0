package capability

import (
	"context"
	"fmt"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/sandbox"
)

// Publish sends an event to topic; it needs a pattern in Events.Publish
// covering the topic. One invocation publishes at most max_publishes
// events of at most max_event_size bytes (caps.go), and payloads are also
// held to MaxValueSize, which by default matches the NATS message size
// limit.
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
	h.graphPublish(c, topic)
	limits, meter := capsOf(c)
	if meter.Publishes >= limits.MaxPublishes {
		return h.overCap(ctx, c, "events.publish", topic, "max_publishes", int64(limits.MaxPublishes),
			"this invocation has published as many events as it may")
	}
	if int64(len(data)) > int64(limits.MaxEventSize) {
		return h.overCap(ctx, c, "events.publish", topic, "max_event_size", int64(limits.MaxEventSize),
			fmt.Sprintf("an event of %d bytes is over the size an event may have", len(data)))
	}
	if len(data) > h.cfg.MaxValueSize {
		return fmt.Errorf("publish %s: payload of %d bytes over the %d byte cap: %w",
			topic, len(data), h.cfg.MaxValueSize, aegis.ErrLimitExceeded)
	}
	if h.cfg.Events == nil {
		return errNoBackend("event")
	}
	meter.Publishes++
	if err := h.cfg.Events.Publish(ctx, c, topic, data); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}
