package bus

import (
	"context"
	"errors"

	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/registry"
	"github.com/aegis-platform/aegis/internal/schema"
)

// checkSchema validates an event against its trigger's schema, if the
// active version of the function has one: an event's payload, or for an
// object trigger the object event document ({"key","operation"}) the
// trigger received. An event that does not match is rejected like a
// forged one: dead-lettered at once, never retried (it would not match
// the next time either), with a reason naming the field and keyword and
// never the payload, and a security log line. The schema is the active
// version's, like the grants: deploying a fixed schema lets a replayed
// dead letter through.
func (b *Bus) checkSchema(ctx context.Context, d desired, m *jetstream.Message, payload []byte, fn *registry.Function) bool {
	s := fn.Schemas[d.trigger]
	if s == nil {
		return true
	}
	kind := schema.KindEvent
	if d.object != nil {
		kind = schema.KindObject
	}
	err := s.ValidateJSON(kind, payload)
	if err == nil {
		return true
	}
	var se *schema.Error
	if !errors.As(err, &se) {
		err = errors.New(kind + " could not be validated")
	}
	b.cfg.Metrics.SchemaViolation(d.app, d.function, d.trigger, kind)
	b.cfg.Guard.Observe(guard.Event{Signal: guard.SchemaViolation, App: d.app, Function: d.function})
	b.reject(ctx, d, m, err, metrics.DeadLetterSchema)
	return false
}
