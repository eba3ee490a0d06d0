package jetstream

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/aegis-platform/aegis/internal/periodic"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// noPlacementErrCode is JetStream's "no suitable peers for placement": the
// cluster has fewer members up than the replicas a new stream asks for.
const noPlacementErrCode = 10005

// raiseEvery is how often a store created with fewer replicas than the
// node's is tried again at the full count.
const raiseEvery = 10 * time.Second

// placed runs create with the node's replicas and, when the cluster cannot
// place that many because members are down, with fewer, down to a
// majority of them (an existing store keeps the count it has). JetStream places a new stream only on members that are
// up, so without this a table or object store first used while one of
// three servers is down could not be created at all, although every
// existing one keeps working. A store created short is remembered and
// raised to the full count once the members are back (raiseShort); an
// existing store is asked for the full count each time a node opens it,
// and the update is refused the same way while members are down, so the
// same fallback keeps it as it is.
func (n *Node) placed(ctx context.Context, stream string, create func(ctx context.Context, replicas int) error) error {
	err := create(ctx, n.replicas)
	if n.replicas == 1 || !noPlacement(err) {
		return err
	}
	// A new store gets as many as the cluster can place, down to a
	// majority; an existing one is never shrunk, only kept at what it has.
	hi, lo := n.replicas-1, n.replicas/2+1
	if s, serr := n.js.Stream(ctx, stream); serr == nil {
		have := s.CachedInfo().Config.Replicas
		if have >= n.replicas {
			return err
		}
		hi, lo = have, have
	}
	for r := hi; r >= lo; r-- {
		err = create(ctx, r)
		if err == nil {
			n.log.Warn("store created with fewer replicas while cluster members are down; raised once they are back",
				logkey.Stream, stream, logkey.Replicas, r, logkey.Want, n.replicas)
			n.noteShort(stream)
			return nil
		}
		if !noPlacement(err) {
			return err
		}
	}
	return err
}

func noPlacement(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == noPlacementErrCode
}

// noteShort remembers a stream to raise, starting the loop that raises
// them on first use.
func (n *Node) noteShort(stream string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closing {
		return
	}
	if n.short == nil {
		n.short = map[string]bool{}
		n.raising = periodic.Start(raiseEvery, apiTimeout, n.raiseShort)
	}
	n.short[stream] = true
}

// raiseShort asks for the full replica count on every stream created
// short; those the cluster can now place are forgotten.
func (n *Node) raiseShort(ctx context.Context) {
	n.mu.Lock()
	streams := make([]string, 0, len(n.short))
	for s := range n.short {
		streams = append(streams, s)
	}
	n.mu.Unlock()
	for _, name := range streams {
		s, err := n.js.Stream(ctx, name)
		if err != nil {
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				n.forgetShort(name)
			}
			continue
		}
		cfg := s.CachedInfo().Config
		if cfg.Replicas < n.replicas {
			cfg.Replicas = n.replicas
			if _, err := n.js.UpdateStream(ctx, cfg); err != nil {
				continue // members still down; tried again later
			}
			n.log.Info("store raised to its full replicas", logkey.Stream, name, logkey.Replicas, n.replicas)
		}
		n.forgetShort(name)
	}
}

func (n *Node) forgetShort(stream string) {
	n.mu.Lock()
	delete(n.short, stream)
	n.mu.Unlock()
}

// stopRaising ends the raise loop, if it runs.
func (n *Node) stopRaising() {
	n.mu.Lock()
	loop := n.raising
	n.raising = nil
	n.mu.Unlock()
	if loop != nil {
		loop.Stop()
	}
}
