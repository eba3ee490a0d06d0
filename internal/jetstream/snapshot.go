package jetstream

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aegis-platform/aegis"
)

// Streams are copied whole with JetStream's own snapshot and restore API
// ($JS.API.STREAM.SNAPSHOT / RESTORE): the snapshot is the stream's store
// as the server keeps it (messages with their sequence numbers, the gaps
// deletes left, the first sequence after purges and limits) and the state
// of its durable consumers (ack floors, pending and redelivery counts), so
// a restored stream continues exactly where the snapshot was taken. The
// snapshot is an opaque archive in chunks; this package never looks into it
// and never writes it anywhere: the caller receives the chunks in memory.

const (
	// snapshotChunkSize is the size of the chunks asked for. The server
	// sends up to its window (8 MiB by default) ahead of the acks, and the
	// caller's sink acks each chunk once it has taken it.
	snapshotChunkSize = 128 << 10
	// MaxSnapshotChunk is the largest chunk the server ever sends (it
	// clamps the chunk size to 1 MiB), and so the largest RestoreStream
	// accepts.
	MaxSnapshotChunk = 1 << 20
	// snapshotWait bounds the wait for one chunk; the server gives up on
	// its side after 5 s without an ack.
	snapshotWait = 30 * time.Second
	// restoreFinishWait bounds the wait for the server to open a restored
	// stream once every chunk is in: it unpacks and checks the whole store.
	restoreFinishWait = 5 * time.Minute
)

// StreamSnapshot describes a stream's snapshot: its name, its
// configuration and state as the server reported them (JSON, kept as they
// are so a restore recreates the stream exactly), and the numbers a caller
// may show.
type StreamSnapshot struct {
	Name     string
	Config   json.RawMessage
	State    json.RawMessage
	Messages uint64
	Bytes    uint64
	FirstSeq uint64
	LastSeq  uint64
}

// apiError is the error member of every JetStream API answer.
type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (code %d, error %d)", e.Description, e.Code, e.ErrCode)
}

// err maps the answer's error to the platform's sentinels.
func (e *apiError) err() error {
	if e == nil {
		return nil
	}
	switch {
	case e.Code == 404:
		return fmt.Errorf("%w: %w", aegis.ErrNotFound, e)
	case e.ErrCode == 10130: // stream name already in use, restore failed
		return fmt.Errorf("%w: %w", aegis.ErrConflict, e)
	}
	return e
}

type streamState struct {
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
}

// StreamNames lists every stream of the account this node uses, sorted.
func (n *Node) StreamNames(ctx context.Context) ([]string, error) {
	const op = "list streams"
	if err := n.checkOpen(op); err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	l := n.js.StreamNames(ctx)
	var names []string
	for name := range l.Name() {
		names = append(names, name)
	}
	if err := l.Err(); err != nil {
		return nil, wrap(op, err)
	}
	slices.Sort(names)
	return names, nil
}

// SnapshotStream takes a snapshot of the stream name, with its consumers:
// begin is called once with the stream's description, then chunk with each
// piece of the archive in order. A chunk is acknowledged to the server only
// after chunk returns, so a slow sink slows the server down instead of
// filling memory. An error from begin or chunk ends the snapshot and is
// returned. The snapshot is a point in time of this one stream.
func (n *Node) SnapshotStream(ctx context.Context, name string, begin func(StreamSnapshot) error, chunk func([]byte) error) error {
	op := "snapshot stream " + name
	if err := n.checkOpen(op); err != nil {
		return err
	}
	if name == "" || strings.ContainsAny(name, ".*> \t\r\n/\\") {
		return fmt.Errorf("%s: invalid stream name: %w", op, aegis.ErrInvalidArgument)
	}
	inbox := n.nc.NewInbox()
	sub, err := n.nc.SubscribeSync(inbox)
	if err != nil {
		return wrap(op, err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	req, err := json.Marshal(map[string]any{"deliver_subject": inbox, "chunk_size": snapshotChunkSize})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	rctx, cancel := withTimeout(ctx)
	msg, err := n.nc.RequestWithContext(rctx, "$JS.API.STREAM.SNAPSHOT."+name, req)
	cancel()
	if err != nil {
		return wrap(op, err)
	}
	var resp struct {
		Error  *apiError       `json:"error"`
		Config json.RawMessage `json:"config"`
		State  json.RawMessage `json:"state"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return fmt.Errorf("%s: answer: %w", op, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("%s: %w", op, resp.Error.err())
	}
	var st streamState
	if err := json.Unmarshal(resp.State, &st); err != nil {
		return fmt.Errorf("%s: state: %w", op, err)
	}
	if err := begin(StreamSnapshot{Name: name, Config: resp.Config, State: resp.State,
		Messages: st.Messages, Bytes: st.Bytes, FirstSeq: st.FirstSeq, LastSeq: st.LastSeq}); err != nil {
		return err
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, snapshotWait)
		m, err := sub.NextMsgWithContext(wctx)
		cancel()
		if err != nil {
			return wrap(op+": next chunk", err)
		}
		if len(m.Data) == 0 {
			// The end (nats.go puts the inline status in these headers): 204 (or no status for a snapshot of one chunk)
			// when it is complete, 408 or 500 when the server gave up.
			if status := m.Header.Get("Status"); status != "" && status != "204" {
				return fmt.Errorf("%s: server ended the snapshot with status %s %s: %w", op, status,
					m.Header.Get("Description"), aegis.ErrUnavailable)
			}
			return nil
		}
		if err := chunk(m.Data); err != nil {
			return err
		}
		if m.Reply != "" {
			if err := n.nc.Publish(m.Reply, nil); err != nil {
				return wrap(op+": ack chunk", err)
			}
		}
	}
}

// StreamRestore receives the chunks of one stream's snapshot; Finish
// makes the stream.
type StreamRestore struct {
	n       *Node
	op      string
	deliver string
	done    bool
}

// RestoreStream starts restoring a stream from a snapshot taken by
// SnapshotStream: the stream must not exist. Give it every chunk with
// Write, in order, then call Finish; Abort gives up (the server drops what
// it received after a few seconds without chunks).
func (n *Node) RestoreStream(ctx context.Context, s StreamSnapshot) (*StreamRestore, error) {
	op := "restore stream " + s.Name
	if err := n.checkOpen(op); err != nil {
		return nil, err
	}
	if s.Name == "" || strings.ContainsAny(s.Name, ".*> \t\r\n/\\") {
		return nil, fmt.Errorf("%s: invalid stream name: %w", op, aegis.ErrInvalidArgument)
	}
	if !json.Valid(s.Config) || !json.Valid(s.State) {
		return nil, fmt.Errorf("%s: configuration and state must be JSON: %w", op, aegis.ErrInvalidArgument)
	}
	req, err := json.Marshal(struct {
		Config json.RawMessage `json:"config"`
		State  json.RawMessage `json:"state"`
	}{s.Config, s.State})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	rctx, cancel := withTimeout(ctx)
	defer cancel()
	msg, err := n.nc.RequestWithContext(rctx, "$JS.API.STREAM.RESTORE."+s.Name, req)
	if err != nil {
		return nil, wrap(op, err)
	}
	var resp struct {
		Error          *apiError `json:"error"`
		DeliverSubject string    `json:"deliver_subject"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, fmt.Errorf("%s: answer: %w", op, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("%s: %w", op, resp.Error.err())
	}
	if resp.DeliverSubject == "" {
		return nil, fmt.Errorf("%s: the server named no subject for the chunks: %w", op, aegis.ErrUnavailable)
	}
	return &StreamRestore{n: n, op: op, deliver: resp.DeliverSubject}, nil
}

// Write sends one chunk and waits until the server has taken it.
func (r *StreamRestore) Write(ctx context.Context, chunk []byte) error {
	if r.done {
		return fmt.Errorf("%s: already finished: %w", r.op, aegis.ErrInvalidArgument)
	}
	if len(chunk) == 0 || len(chunk) > MaxSnapshotChunk {
		return fmt.Errorf("%s: chunk of %d bytes: %w", r.op, len(chunk), aegis.ErrInvalidArgument)
	}
	rctx, cancel := context.WithTimeout(ctx, snapshotWait)
	defer cancel()
	msg, err := r.n.nc.RequestWithContext(rctx, r.deliver, chunk)
	if err != nil {
		r.done = true
		return wrap(r.op, err)
	}
	if len(msg.Data) > 0 {
		r.done = true
		return fmt.Errorf("%s: %w", r.op, answerError(msg.Data))
	}
	return nil
}

// Finish tells the server every chunk is in and waits for the stream.
func (r *StreamRestore) Finish(ctx context.Context) error {
	if r.done {
		return fmt.Errorf("%s: already finished: %w", r.op, aegis.ErrInvalidArgument)
	}
	r.done = true
	rctx, cancel := context.WithTimeout(ctx, restoreFinishWait)
	defer cancel()
	msg, err := r.n.nc.RequestWithContext(rctx, r.deliver, nil)
	if err != nil {
		return wrap(r.op, err)
	}
	if err := answerError(msg.Data); err != nil {
		return fmt.Errorf("%s: %w", r.op, err)
	}
	return nil
}

// answerError is the error of a JetStream API answer, nil when it has none.
func answerError(data []byte) error {
	var resp struct {
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	if resp.Error == nil {
		return nil
	}
	return resp.Error.err()
}

// Abort gives the restore up. The server notices the silence and drops
// what it received; the stream is not created.
func (r *StreamRestore) Abort() { r.done = true }

// StoredBytes is what every stream of the account holds, in bytes: what a
// snapshot of them all will read (it writes them compressed).
func (n *Node) StoredBytes(ctx context.Context) (uint64, error) {
	const op = "list streams"
	if err := n.checkOpen(op); err != nil {
		return 0, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	l := n.js.ListStreams(ctx)
	var total uint64
	for info := range l.Info() {
		total += info.State.Bytes
	}
	if err := l.Err(); err != nil {
		return 0, wrap(op, err)
	}
	return total, nil
}
