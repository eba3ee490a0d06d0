package guard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/strictjson"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// The kinds of block, one per action but alert.
const (
	KindAddress    = "address"    // block_address: the gateway answers 403
	KindKey        = "key"        // suspend_key: the key's requests get 403
	KindThrottle   = "throttle"   // throttle: the function's invocations capped
	KindQuarantine = "quarantine" // quarantine_function: its triggers stopped
	KindRoute      = "route"      // disable_route: the route answers 403
)

// kindOf is the kind of block an action places; "" for alert.
func kindOf(a ActionKind) string {
	switch a {
	case ActBlockAddress:
		return KindAddress
	case ActSuspendKey:
		return KindKey
	case ActThrottle:
		return KindThrottle
	case ActQuarantine:
		return KindQuarantine
	case ActDisableRoute:
		return KindRoute
	}
	return ""
}

// Block is one countermeasure in force: its kind's target refused,
// capped or stopped until Expires. Blocks are immutable: placed once, then
// lifted or expired.
type Block struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Target string `json:"target"`
	Rule   string `json:"rule"`
	// Count signals (or GB-seconds) within Window made the rule fire.
	Count   int           `json:"count"`
	Window  time.Duration `json:"window"`
	Created time.Time     `json:"created"`
	Expires time.Time     `json:"expires"`
	// Rate is a throttle's cap: invocations per second on each server.
	Rate float64 `json:"rate,omitempty"`
}

// Store is where blocks are shared: a key-value bucket with per-key time
// to live (jetstream.Bucket opened with KeyTTLs). A block's own Expires is
// what the guard enforces; the TTL only removes the record afterwards.
type Store interface {
	CreateTTL(ctx context.Context, key string, v []byte, ttl time.Duration) (uint64, error)
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Delete(ctx context.Context, key string) error
	Keys(ctx context.Context, prefix string) ([]string, error)
}

// Bucket is the name of the key-value bucket the server opens for Store.
const Bucket = "aegis_guard_blocks"

// blockID names the block of an address: the same on every server, so
// two servers blocking one address write one record.
func blockID(kind, target string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + target))
	return blockPrefix + hex.EncodeToString(sum[:10])
}

// Key prefixes in the bucket: blocks every server reads at each refresh,
// and incidents, read only by the create that opens one.
const (
	blockPrefix    = "b"
	incidentPrefix = "i"
)

type blockKey struct{ kind, target string }

// blockSet is an immutable copy of the blocks in force, by kind and
// target, with a count per kind so a lookup of a kind nobody is blocked
// by is one load.
type blockSet struct {
	m                                             map[blockKey]Block
	addresses, keys, functions, routes, throttled int
}

func (s *blockSet) add(b Block) {
	s.m[blockKey{b.Kind, b.Target}] = b
	switch b.Kind {
	case KindAddress:
		s.addresses++
	case KindKey:
		s.keys++
	case KindQuarantine:
		s.functions++
	case KindThrottle:
		s.throttled++
	case KindRoute:
		s.routes++
	}
}

func (s *blockSet) get(kind, target string) (Block, bool) {
	b, ok := s.m[blockKey{kind, target}]
	return b, ok
}

// write puts a pending block in the store. A record of the same id that
// is still in force wins (another server blocked the address first); one
// that has expired but not yet been removed is replaced.
func (g *Guard) write(ctx context.Context, b Block) error {
	v, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("write block %s: %w", b.ID, err)
	}
	ttl := b.Expires.Sub(g.cfg.Now())
	if ttl <= 0 {
		g.drop(b.ID)
		return nil
	}
	_, err = g.cfg.Store.CreateTTL(ctx, b.ID, v, ttl)
	if errors.Is(err, aegis.ErrConflict) {
		var cur Block
		if cur, err = g.read(ctx, b.ID); err == nil && g.cfg.Now().Before(cur.Expires) {
			g.settle(cur)
			return nil
		}
		if err = g.cfg.Store.Delete(ctx, b.ID); err == nil {
			_, err = g.cfg.Store.CreateTTL(ctx, b.ID, v, ttl)
		}
	}
	if err != nil {
		return fmt.Errorf("write block %s: %w", b.ID, err)
	}
	g.settle(b)
	return nil
}

// settle records b as the store's and no longer pending.
func (g *Guard) settle(b Block) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.pending, b.ID)
	g.known[b.ID] = b
	g.publish()
}

// drop forgets a block everywhere on this server.
func (g *Guard) drop(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.pending, id)
	delete(g.known, id)
	g.publish()
}

// read gets one block record.
func (g *Guard) read(ctx context.Context, id string) (Block, error) {
	v, _, err := g.cfg.Store.Get(ctx, id)
	if err != nil {
		return Block{}, err
	}
	var b Block
	if err := strictjson.Unmarshal(v, &b); err != nil {
		return Block{}, fmt.Errorf("read block %s: %w", id, err)
	}
	return b, nil
}

// publish replaces the copy the lookups read with known and pending, the
// expired left out. Callers hold mu.
func (g *Guard) publish() {
	now := g.cfg.Now()
	set := &blockSet{m: make(map[blockKey]Block, len(g.known)+len(g.pending))}
	for _, blocks := range []map[string]Block{g.known, g.pending} {
		for _, b := range blocks {
			if now.Before(b.Expires) {
				set.add(b)
			}
		}
	}
	g.blocks.Store(set)
	g.throttles.keep(set)
}

// sync reads the store's blocks: a listing, and a read of each id not
// known yet (or known but expired: the address may have been blocked
// again under the same id). Pending blocks are written first.
func (g *Guard) sync(ctx context.Context) error {
	g.mu.Lock()
	pending := slices.Collect(maps.Values(g.pending))
	known := maps.Clone(g.known)
	g.mu.Unlock()
	for _, b := range pending {
		if err := g.write(ctx, b); err != nil {
			g.log.Warn("guard block kept on this server only until the store takes it", logkey.BlockID, b.ID, logkey.Error, err)
		}
	}
	ids, err := g.cfg.Store.Keys(ctx, "")
	if err != nil {
		return fmt.Errorf("refresh guard blocks: %w", err)
	}
	now := g.cfg.Now()
	fresh := make(map[string]Block, len(ids))
	for _, id := range ids {
		if !strings.HasPrefix(id, blockPrefix) {
			continue // an incident
		}
		if b, ok := known[id]; ok && now.Before(b.Expires) {
			fresh[id] = b
			continue
		}
		b, err := g.read(ctx, id)
		if errors.Is(err, aegis.ErrNotFound) {
			continue // lifted or expired since the listing
		}
		if err != nil {
			return fmt.Errorf("refresh guard blocks: %w", err)
		}
		if now.Before(b.Expires) {
			fresh[id] = b
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	// A block this server wrote while the store was being read is kept:
	// the listing may have been taken before it.
	for id, b := range g.known {
		if _, seen := known[id]; !seen {
			fresh[id] = b
		}
	}
	g.known = fresh
	g.publish()
	return nil
}

// Blocks lists the blocks in force, oldest first: the store's (every
// server's) and this server's not yet written.
func (g *Guard) Blocks(ctx context.Context) ([]Block, error) {
	if g.cfg.Store != nil {
		if err := g.sync(ctx); err != nil {
			return nil, err
		}
	}
	out := slices.Collect(maps.Values(g.blocks.Load().m))
	slices.SortFunc(out, func(a, b Block) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Lift removes the block id on every server (this one at once, the others
// at their next refresh) and returns it; aegis.ErrNotFound when no block
// with that id is in force.
func (g *Guard) Lift(ctx context.Context, id string) (Block, error) {
	blocks, err := g.Blocks(ctx)
	if err != nil {
		return Block{}, err
	}
	i := slices.IndexFunc(blocks, func(b Block) bool { return b.ID == id })
	if i < 0 {
		return Block{}, fmt.Errorf("lift block %s: %w", id, aegis.ErrNotFound)
	}
	if g.cfg.Store != nil {
		if err := g.cfg.Store.Delete(ctx, id); err != nil {
			return Block{}, fmt.Errorf("lift block %s: %w", id, err)
		}
	}
	g.drop(id)
	b := blocks[i]
	// The incident ends with its block: the rule firing again on the
	// target is a new incident, with a new alert.
	g.endIncident(ctx, b.Rule, b.Target)
	g.log.Info("guard block lifted", logkey.Rule, b.Rule, logkey.Kind, b.Kind, logkey.Target, b.Target, logkey.BlockID, id)
	return b, nil
}
