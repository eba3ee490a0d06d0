package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Names of the event trigger metrics.
const (
	EventsPendingName     = "aegis_events_pending"
	EventsRedeliveredName = "aegis_events_redelivered_total"
	DeadLettersName       = "aegis_dead_letters_total"
)

// The reason label of aegis_dead_letters_total.
const (
	DeadLetterAttempts  = "attempts"  // the function failed max_attempts times
	DeadLetterSignature = "signature" // the envelope did not verify (forged, unsigned, malformed) or its payload does not open
	DeadLetterProducer  = "producer"  // the producer is unknown or lacks the grant
	DeadLetterHopLimit  = "hop_limit" // the chain of events went past the hop limit
	DeadLetterSchema    = "schema"    // the payload did not match the trigger's schema
	DeadLetterLost      = "lost"      // delivered past its attempts without one finishing
)

// PendingEvents is what the events collector reads at scrape time: every
// trigger a server runs, with the events its consumer has not delivered
// yet. The bus implements it.
type PendingEvents interface {
	PendingEvents(ctx context.Context, fn func(app, function, trigger string, pending uint64))
}

// pendingTimeout bounds how long one scrape waits for the consumers.
const pendingTimeout = 2 * time.Second

type eventMetrics struct {
	redelivered *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
}

func newEventMetrics() eventMetrics {
	return eventMetrics{
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: EventsRedeliveredName,
			Help: "Events delivered to a trigger again (a retry, a budget wait, a lost acknowledgement), by app, function and trigger."},
			[]string{"app", "function", "trigger"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: DeadLettersName,
			Help: "Events moved to the dead-letter stream, by app, function and reason (attempts, signature, producer, hop_limit, schema, lost)."},
			[]string{"app", "function", "reason"}),
	}
}

func (e eventMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{e.redelivered, e.deadLetters}
}

// EventRedelivered counts one delivery of an event after its first.
func (m *Metrics) EventRedelivered(app, function, trigger string) {
	if m == nil {
		return
	}
	m.events.redelivered.WithLabelValues(app, function, trigger).Inc()
}

// DeadLetter counts one event dead-lettered for reason (DeadLetter...).
func (m *Metrics) DeadLetter(app, function, reason string) {
	if m == nil {
		return
	}
	m.events.deadLetters.WithLabelValues(app, function, reason).Inc()
}

// DeadLetters is the count DeadLetter has reached, for tests.
func (m *Metrics) DeadLetters(app, function, reason string) float64 {
	if m == nil {
		return 0
	}
	return counterValue(m.events.deadLetters.WithLabelValues(app, function, reason))
}

// ReadPendingEvents makes every scrape report the pending events of src's
// triggers as aegis_events_pending. Call it once, when src exists.
func (m *Metrics) ReadPendingEvents(src PendingEvents) {
	if m == nil || src == nil {
		return
	}
	m.register(&pendingCollector{src: src, desc: prometheus.NewDesc(EventsPendingName,
		"Events stored for a trigger that its consumer has not delivered yet, by app, function and trigger; read from the consumers at scrape time.",
		[]string{"app", "function", "trigger"}, nil)})
}

type pendingCollector struct {
	src  PendingEvents
	desc *prometheus.Desc
}

func (c *pendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *pendingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), pendingTimeout)
	defer cancel()
	c.src.PendingEvents(ctx, func(app, function, trigger string, pending uint64) {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(pending), app, function, trigger)
	})
}
