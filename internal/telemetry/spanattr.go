package telemetry

// Span attribute keys the platform's spans share (SpanRecord.Attrs), so a
// collector query for one app or function finds its requests,
// invocations, host calls and deliveries alike. Values are names, never
// data.
const (
	AttrApp        = "aegis.app"
	AttrFunction   = "aegis.function"
	AttrVersion    = "aegis.version"
	AttrCapability = "aegis.capability" // "kv.get", "events.publish", "fetch", "invoke"
	AttrResource   = "aegis.resource"   // table/key, object key, topic, host, route
	AttrTopic      = "aegis.topic"      // an event's topic
	AttrTrigger    = "aegis.trigger"    // "http", "event", "object", "schedule", "invoke"
	AttrAttempt    = "aegis.attempt"    // an event delivery's attempt, from 1
	AttrMethod     = "http.request.method"
	AttrStatus     = "http.response.status_code"
)
