// Package callgraph records the edges an app's functions are observed to
// take at run time — which route, topic, object prefix or schedule
// started which function, and which tables, object patterns, topics,
// functions and hosts each function reached or tried to reach — and
// compares them with the edges its manifest declares (compare.go).
//
// Recording is on the hot path of every invocation and host call, so it
// only adds to a map in memory (one mutex, no I/O). Every FlushEvery the
// counts are added to one record per edge in a JetStream key-value bucket
// that every server on one NATS shares, with compare-and-set on the
// record's revision, so servers add up rather than overwrite each other.
// A restart loses at most what was not yet flushed.
//
// The names of allowed edges come from manifests (routes, triggers and the
// grant that allowed a call), but a refused call names what the guest
// asked for, so the distinct edges of one app are bounded (MaxEdges): the
// uses of edges past the bound are counted, not kept. It never records a
// value, a key or a body: only names of routes, topics, tables, object
// patterns, functions and hosts.
package callgraph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/periodic"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// Kind is what an edge is. The first four are triggers (something
// outside a function starts it), the others are a function's host calls.
type Kind string

const (
	HTTP     Kind = "http"     // route "METHOD /path" → function
	Event    Kind = "event"    // topic → function (an event trigger)
	Object   Kind = "object"   // object prefix → function (an object trigger)
	Schedule Kind = "schedule" // cron expression → function
	Publish  Kind = "publish"  // function → topic
	Invoke   Kind = "invoke"   // function → function
	Fetch    Kind = "fetch"    // function → egress host
	KV       Kind = "kv"       // function → table
	Objects  Kind = "objects"  // function → object pattern
	Secret   Kind = "secret"   // function → secret name (never its value)
)

// The kinds of a name record (UseName): what a function reached under a
// grant, by access where the grant has one. Publish and Fetch name a
// topic and a host.
const (
	KVRead       Kind = "kv.read"       // function → table read
	KVWrite      Kind = "kv.write"      // function → table written
	ObjectsRead  Kind = "objects.read"  // function → object folder read ("images/*")
	ObjectsWrite Kind = "objects.write" // function → object folder written
)

// Kinds lists every kind, triggers first.
var Kinds = []Kind{HTTP, Event, Object, Schedule, Publish, Invoke, Fetch, KV, Objects, Secret}

// Trigger reports whether k is an edge into a function from outside it.
func (k Kind) Trigger() bool { return k == HTTP || k == Event || k == Object || k == Schedule }

// Nodes names what the two ends of an edge of kind k are.
func (k Kind) Nodes() (from, to string) {
	switch k {
	case HTTP:
		return "route", "function"
	case Event:
		return "topic", "function"
	case Object:
		return "prefix", "function"
	case Schedule:
		return "schedule", "function"
	case Publish:
		return "function", "topic"
	case Invoke:
		return "function", "function"
	case Fetch:
		return "function", "host"
	case KV:
		return "function", "table"
	case Objects:
		return "function", "objects"
	case Secret:
		return "function", "secret"
	}
	return "", ""
}

// Edge is one edge of an app's graph.
type Edge struct {
	Kind     Kind
	From, To string
}

// String names the edge for a person: "fetch save-entry → api.example.com:443".
func (e Edge) String() string { return string(e.Kind) + " " + e.From + " → " + e.To }

// Function is the function at one end of the edge: the caller of a host
// call, the callee of a trigger.
func (e Edge) Function() string {
	if e.Kind.Trigger() {
		return e.To
	}
	return e.From
}

// Store is the key-value bucket the graph lives in, shared by every server
// on one NATS. Update and Create fail with aegis.ErrConflict when the
// revision moved (or the key exists), Get with aegis.ErrNotFound.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Create(ctx context.Context, key string, v []byte) (uint64, error)
	Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error)
	Keys(ctx context.Context, prefix string) ([]string, error)
}

// Bucket is the bucket the server opens for the graph, and Retention how
// long an edge is kept after it was last seen.
const (
	Bucket    = "aegis_graph"
	Retention = 90 * 24 * time.Hour
)

// Defaults of Config.
const (
	DefaultFlushEvery = 2 * time.Second
	DefaultMaxEdges   = 1000
)

// Config wires a Recorder.
type Config struct {
	Store  Store
	Logger *slog.Logger
	// FlushEvery is how often counts are added to the shared records
	// (default DefaultFlushEvery).
	FlushEvery time.Duration
	// MaxEdges bounds the distinct edges kept per app, in this server's
	// memory and, up to the servers racing in one flush, in the bucket
	// (default DefaultMaxEdges).
	MaxEdges int
	// OnNewEdge, when set, is told of each edge whose record this server
	// created, and when it was first taken: an edge no server had seen
	// (or not for Retention). Servers race to create a record, so exactly
	// one of them is told. It runs on the flusher and must not block.
	OnNewEdge func(app string, e Edge, first time.Time)
}

// stat is what one server saw of one edge since its last flush.
type stat struct {
	count, refused  int64
	last, lastRefus int64 // Unix nanoseconds
	// first is when this server first saw the edge since its last flush
	// (Unix nanoseconds): for a new edge, when it was first taken.
	first int64
}

func (s *stat) add(o stat) {
	s.count += o.count
	s.refused += o.refused
	s.last = max(s.last, o.last)
	s.lastRefus = max(s.lastRefus, o.lastRefus)
}

// appState is one app's edges in this server's memory: the counts not
// yet flushed, the edges known to have a record in the bucket, and the
// uses of edges past the bound.
type appState struct {
	pending map[Edge]stat
	known   map[Edge]bool
	fresh   int // edges in pending that are not known
	dropped int64
}

// Recorder records edges. It is safe for concurrent use; a nil Recorder
// records nothing. Close flushes what is left.
type Recorder struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	apps map[scope]*appState

	flushMu   sync.Mutex
	loop      *periodic.Loop // the flusher
	closeOnce sync.Once
}

// New starts a Recorder; its flusher runs until Close.
func New(cfg Config) *Recorder {
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = DefaultFlushEvery
	}
	if cfg.MaxEdges <= 0 {
		cfg.MaxEdges = DefaultMaxEdges
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{cfg: cfg, log: cfg.Logger, apps: map[scope]*appState{}}
	r.loop = periodic.Start(r.cfg.FlushEvery, 10*time.Second, r.flushLoop)
	return r
}

// flushLoop is one run of the flusher.
func (r *Recorder) flushLoop(ctx context.Context) {
	if err := r.Flush(ctx); err != nil {
		r.log.Warn("call graph flush failed; will retry", logkey.Error, err)
	}
}

// Close stops the flusher and flushes what is left. It is safe to call
// twice.
func (r *Recorder) Close(ctx context.Context) error {
	if r == nil {
		return nil
	}
	var err error
	r.closeOnce.Do(func() {
		r.loop.Stop()
		err = r.Flush(ctx)
	})
	return err
}

// Use records one use of e by app: an invocation its trigger started, or
// a host call its grants allowed.
func (r *Recorder) Use(app string, e Edge) {
	if r != nil {
		r.add(scope{edges, app}, e, stat{count: 1, last: time.Now().UnixNano()})
	}
}

// Refused records one host call of app refused by its grants, as the
// edge it tried to take.
func (r *Recorder) Refused(app string, e Edge) {
	if r != nil {
		r.add(scope{edges, app}, e, stat{refused: 1, lastRefus: time.Now().UnixNano()})
	}
}

// UseName records one use of a name by a function of app, beside the
// edge the use is counted on: the table (KVRead, KVWrite), the object
// folder (ObjectsRead, ObjectsWrite: the key up to its last "/" followed
// by "*", or the exact key its grant names), the topic (Publish) or the
// host (Fetch) a call reached. Least-privilege advice (internal/advise)
// narrows a wildcard grant to these names. They are kept apart from the
// graph's edges ("n.<app>.…" records, their own MaxEdges bound), are never
// new-edge signals, and like the edges hold names only, never a key, a
// value or a body.
func (r *Recorder) UseName(app string, e Edge) {
	if r != nil && e.From != "" && e.To != "" {
		r.add(scope{names, app}, e, stat{count: 1, last: time.Now().UnixNano()})
	}
}

// scope is where records go: an app's edges or its names.
type scope struct {
	space string // edges or names
	app   string
}

// The spaces of the bucket's keys.
const (
	edges = "e"
	names = "n"
)

func (r *Recorder) add(sc scope, e Edge, d stat) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.apps[sc]
	if !ok {
		a = &appState{pending: map[Edge]stat{}, known: map[Edge]bool{}}
		r.apps[sc] = a
	}
	if s, ok := a.pending[e]; ok {
		s.add(d)
		a.pending[e] = s
		return
	}
	known := a.known[e]
	if !known {
		if len(a.known)+a.fresh >= r.cfg.MaxEdges {
			a.dropped += d.count + d.refused
			return
		}
		a.fresh++
	}
	d.first = max(d.last, d.lastRefus)
	a.pending[e] = d
}

// Record is one edge as the bucket holds it: what every server saw of it.
type Record struct {
	Kind        Kind      `json:"kind"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	Count       int64     `json:"count,omitempty"`
	Refused     int64     `json:"refused,omitempty"`
	LastSeen    time.Time `json:"last_seen,omitzero"`
	LastRefused time.Time `json:"last_refused,omitzero"`
}

// Edge is the record's edge.
func (rec *Record) Edge() Edge { return Edge{Kind: rec.Kind, From: rec.From, To: rec.To} }

func (rec *Record) add(s stat) {
	rec.Count += s.count
	rec.Refused += s.refused
	if s.last > 0 {
		if t := time.Unix(0, s.last).UTC(); t.After(rec.LastSeen) {
			rec.LastSeen = t
		}
	}
	if s.lastRefus > 0 {
		if t := time.Unix(0, s.lastRefus).UTC(); t.After(rec.LastRefused) {
			rec.LastRefused = t
		}
	}
}

// Keys in the bucket: "e.<app>.<hash of the edge>" for an edge, and
// "d.<app>" for the uses of edges past the bound; "n.<app>.<hash>" and
// "dn.<app>" for names (UseName).
func edgePrefix(sc scope) string { return sc.space + "." + sc.app + "." }

func droppedKey(sc scope) string {
	if sc.space == names {
		return "dn." + sc.app
	}
	return "d." + sc.app
}

func edgeKey(sc scope, e Edge) string {
	h := sha256.Sum256([]byte(string(e.Kind) + "\x00" + e.From + "\x00" + e.To))
	return edgePrefix(sc) + hex.EncodeToString(h[:16])
}

// Flush adds this server's counts to the shared records now, so a reader
// right after sees them. A count whose write fails is kept for the next
// flush.
func (r *Recorder) Flush(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	type batch struct {
		sc      scope
		pending map[Edge]stat
		known   map[Edge]bool
		dropped int64
	}
	r.mu.Lock()
	var batches []batch
	for sc, a := range r.apps {
		if len(a.pending) == 0 && a.dropped == 0 {
			continue
		}
		known := make(map[Edge]bool, a.fresh)
		for e := range a.pending {
			known[e] = a.known[e]
		}
		batches = append(batches, batch{sc, a.pending, known, a.dropped})
		a.pending, a.fresh, a.dropped = map[Edge]stat{}, 0, 0
	}
	r.mu.Unlock()

	var errs []error
	for _, b := range batches {
		stored := -1 // the app's edges in the bucket, read when a new one is due
		var dropped int64
		for e, s := range b.pending {
			created, err := r.merge(ctx, b.sc, e, s, b.known[e], &stored)
			switch {
			case errors.Is(err, errFull):
				dropped += s.count + s.refused
			case err != nil:
				errs = append(errs, err)
				r.requeue(b.sc, e, s)
			default:
				if created || !b.known[e] { // a known record that expired is created again
					r.markKnown(b.sc, e)
				}
				if created && b.sc.space == edges && r.cfg.OnNewEdge != nil {
					r.cfg.OnNewEdge(b.sc.app, e, time.Unix(0, s.first))
				}
			}
		}
		dropped += b.dropped
		if dropped > 0 {
			if err := r.addDropped(ctx, b.sc, dropped); err != nil {
				errs = append(errs, err)
				r.mu.Lock()
				r.apps[b.sc].dropped += dropped
				r.mu.Unlock()
			}
		}
	}
	return errors.Join(errs...)
}

var errFull = errors.New("the app's graph holds as many edges as it may")

// casTries bounds one read-modify-write loop: every lost race means
// another server wrote, so the loop makes progress.
const casTries = 50

// merge adds s to the record of e with compare-and-set. A record that
// does not exist yet is created only while the app has fewer than
// MaxEdges records (errFull otherwise); *stored caches that count.
func (r *Recorder) merge(ctx context.Context, sc scope, e Edge, s stat, known bool, stored *int) (created bool, err error) {
	key := edgeKey(sc, e)
	for range casTries {
		rec := Record{Kind: e.Kind, From: e.From, To: e.To}
		v, rev, err := r.cfg.Store.Get(ctx, key)
		switch {
		case errors.Is(err, aegis.ErrNotFound):
			rev = 0
			if !known {
				if *stored < 0 {
					keys, err := r.cfg.Store.Keys(ctx, edgePrefix(sc))
					if err != nil {
						return false, fmt.Errorf("count edges of %s: %w", sc.app, err)
					}
					*stored = len(keys)
				}
				if *stored >= r.cfg.MaxEdges {
					return false, errFull
				}
			}
		case err != nil:
			return false, fmt.Errorf("read edge %s: %w", key, err)
		default:
			if err := json.Unmarshal(v, &rec); err != nil {
				return false, fmt.Errorf("read edge %s: %w", key, err)
			}
		}
		rec.add(s)
		buf, err := json.Marshal(&rec)
		if err != nil {
			return false, fmt.Errorf("write edge %s: %w", key, err)
		}
		if rev == 0 {
			_, err = r.cfg.Store.Create(ctx, key, buf)
		} else {
			_, err = r.cfg.Store.Update(ctx, key, buf, rev)
		}
		if err == nil {
			if rev == 0 {
				*stored++
			}
			return rev == 0, nil
		}
		if !errors.Is(err, aegis.ErrConflict) {
			return false, fmt.Errorf("write edge %s: %w", key, err)
		}
		if err := ctx.Err(); err != nil {
			return false, fmt.Errorf("write edge %s: %w", key, err)
		}
	}
	return false, fmt.Errorf("write edge %s: %d writers raced: %w", key, casTries, aegis.ErrUnavailable)
}

// requeue puts back a count whose write failed.
func (r *Recorder) requeue(sc scope, e Edge, s stat) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.apps[sc]
	if p, ok := a.pending[e]; ok {
		p.add(s)
		a.pending[e] = p
		return
	}
	if !a.known[e] {
		a.fresh++
	}
	a.pending[e] = s
}

// markKnown notes that e has a record in the bucket, so the bound no
// longer needs to be checked for it.
func (r *Recorder) markKnown(sc scope, e Edge) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.apps[sc]
	if a.known[e] || len(a.known) >= r.cfg.MaxEdges {
		return
	}
	a.known[e] = true
	if _, ok := a.pending[e]; ok && a.fresh > 0 {
		a.fresh-- // counted as fresh when it was put back or seen again
	}
}

// droppedRecord counts the uses of edges an app could not keep.
type droppedRecord struct {
	Count int64 `json:"count"`
}

func (r *Recorder) addDropped(ctx context.Context, sc scope, n int64) error {
	key := droppedKey(sc)
	for range casTries {
		var rec droppedRecord
		v, rev, err := r.cfg.Store.Get(ctx, key)
		switch {
		case errors.Is(err, aegis.ErrNotFound):
			rev = 0
		case err != nil:
			return fmt.Errorf("read %s: %w", key, err)
		default:
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("read %s: %w", key, err)
			}
		}
		rec.Count += n
		buf, _ := json.Marshal(rec)
		if rev == 0 {
			_, err = r.cfg.Store.Create(ctx, key, buf)
		} else {
			_, err = r.cfg.Store.Update(ctx, key, buf, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, aegis.ErrConflict) {
			return fmt.Errorf("write %s: %w", key, err)
		}
	}
	return fmt.Errorf("write %s: %d writers raced: %w", key, casTries, aegis.ErrUnavailable)
}

// Observed reads app's edges as every server flushed them, and how many
// uses of edges past the bound were dropped.
func Observed(ctx context.Context, s Store, app string) ([]Record, int64, error) {
	return observedIn(ctx, s, scope{edges, app})
}

// ObservedNames reads the names app's functions reached (UseName) as
// every server flushed them, and how many uses past the bound were
// dropped.
func ObservedNames(ctx context.Context, s Store, app string) ([]Record, int64, error) {
	return observedIn(ctx, s, scope{names, app})
}

func observedIn(ctx context.Context, s Store, sc scope) ([]Record, int64, error) {
	app := sc.app
	keys, err := s.Keys(ctx, edgePrefix(sc))
	if err != nil {
		return nil, 0, fmt.Errorf("list edges of %s: %w", app, err)
	}
	out := make([]Record, 0, len(keys))
	for _, k := range keys {
		if !strings.HasPrefix(k, edgePrefix(sc)) {
			continue
		}
		v, _, err := s.Get(ctx, k)
		if errors.Is(err, aegis.ErrNotFound) {
			continue // expired between the listing and the read
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read edge %s: %w", k, err)
		}
		var rec Record
		if err := json.Unmarshal(v, &rec); err != nil {
			return nil, 0, fmt.Errorf("read edge %s: %w", k, err)
		}
		out = append(out, rec)
	}
	var d droppedRecord
	v, _, err := s.Get(ctx, droppedKey(sc))
	switch {
	case errors.Is(err, aegis.ErrNotFound):
	case err != nil:
		return nil, 0, fmt.Errorf("read %s: %w", droppedKey(sc), err)
	default:
		if err := json.Unmarshal(v, &d); err != nil {
			return nil, 0, fmt.Errorf("read %s: %w", droppedKey(sc), err)
		}
	}
	return out, d.Count, nil
}
