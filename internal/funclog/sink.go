package funclog

import "time"

// Sink is where the writer sends each encoded record: the JetStream node
// in a server (PublishNoAck), something slow or stuck in a test. It is
// called from the one writer goroutine only, never from Write, so however
// long it takes, an invocation does not wait for it.
type Sink interface {
	PublishNoAck(subject string, data []byte) error
}

// Retention defaults of the stream, which `aegis server --log-max-age` and
// `--log-max-bytes` change.
const (
	DefaultMaxAge   = 7 * 24 * time.Hour
	DefaultMaxBytes = 256 << 20
)

// Options change how Open sets up the log. Zero fields take the defaults.
type Options struct {
	// MaxAge and MaxBytes bound the stream: the oldest records go first
	// when either is reached. An existing stream is updated to them.
	MaxAge   time.Duration
	MaxBytes int64
	// Sink replaces the node as the records' destination; reads still go
	// to the node's stream.
	Sink Sink
	// QueueSize is how many records wait for the writer before Write
	// drops them (default 4096).
	QueueSize int
}

func (o Options) withDefaults() Options {
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.QueueSize <= 0 {
		o.QueueSize = queueSize
	}
	return o
}
