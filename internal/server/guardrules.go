package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/admin"
	"github.com/aegis-platform/aegis/internal/guard"
	"github.com/aegis-platform/aegis/internal/guard/rulefile"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/periodic"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// guardRulesRefresh is how often a server reads the applied rule file
// again: how long a file applied on another server takes to reach this
// one.
const guardRulesRefresh = time.Second

// guardRules keeps this server's guard running the rule file every
// server shares (`aegis guard apply`, docs/guard.md): one record in the
// bucket rulefile.Bucket, read at start and then every second, parsed
// and merged onto the server's base rules whenever its revision changes.
// A stored file this server cannot parse (written by a later version, or
// by hand) is logged once and the rules in force are kept.
type guardRules struct {
	bucket     *jetstream.Bucket
	guard      *guard.Guard
	base       []guard.Rule
	baseSource string
	log        *slog.Logger
	loop       *periodic.Loop

	mu      sync.Mutex
	rev     uint64 // the bucket revision last read (0: no file)
	applied rulefile.Applied
	file    []guard.Rule // the applied file's rules in force
}

// openGuardRules opens the rule file's bucket, applies the file stored
// there, and starts reading it again every second.
func (s *Server) openGuardRules(ctx context.Context) error {
	if s.guard == nil {
		return nil
	}
	bucket, err := s.node.Bucket(ctx, rulefile.Bucket, jetstream.BucketOptions{History: 1,
		MaxValueSize: 6*rulefile.MaxSize + 4096, Description: "the guard's rule file every server applies (aegis guard apply)"})
	if err != nil {
		return err
	}
	g := &guardRules{bucket: bucket, guard: s.guard, base: guard.DefaultRules(), baseSource: rulefile.SourceDefault, log: s.log}
	if s.cfg.Guard.Rules != nil {
		g.base, g.baseSource = slices.Clone(s.cfg.Guard.Rules), rulefile.SourceConfiguration
	}
	if err := g.refresh(ctx); err != nil {
		return fmt.Errorf("read the guard's rule file: %w", err)
	}
	g.loop = periodic.Start(guardRulesRefresh, 5*time.Second, func(ctx context.Context) {
		if err := g.refresh(ctx); err != nil {
			g.log.Warn("guard rule file not read", logkey.Error, err)
		}
	})
	s.guardRules = g
	return nil
}

// closeGuardRules stops reading the rule file.
func (s *Server) closeGuardRules() {
	if s.guardRules != nil {
		s.guardRules.loop.Stop()
	}
}

// refresh reads the stored file and, when its revision changed, puts it
// in force. An error is the bucket's: the rules in force are kept.
func (g *guardRules) refresh(ctx context.Context) error {
	data, rev, err := g.bucket.Get(ctx, rulefile.Key)
	if errors.Is(err, aegis.ErrNotFound) {
		data, rev, err = nil, 0, nil
	}
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if rev == g.rev {
		return nil
	}
	g.rev = rev
	if rev == 0 {
		// The record is gone (no admin call deletes it; someone did by
		// hand): back to the base rules.
		g.put(rulefile.Applied{}, nil)
		return nil
	}
	a, err := rulefile.UnmarshalApplied(data)
	var file []guard.Rule
	if err == nil {
		file, err = rulefile.Parse("guard.yaml", []byte(a.File))
	}
	if err != nil {
		g.log.Error("guard rule file not applied: the rules in force are kept", logkey.Error, err)
		return nil
	}
	g.put(a, file)
	return nil
}

// put makes file, applied on the base rules, the rules in force. The
// caller holds g.mu.
func (g *guardRules) put(a rulefile.Applied, file []guard.Rule) {
	if err := g.guard.SetRules(guard.Merge(g.base, file)); err != nil {
		// Parse validated every rule of the file, and the base was
		// validated with the server's configuration.
		g.log.Error("guard rule file not applied: the rules in force are kept", logkey.Error, err)
		return
	}
	g.applied, g.file = a, file
	g.log.Info("guard rules applied", logkey.By, a.By, logkey.Rules, ruleNames(file))
}

func ruleNames(rules []guard.Rule) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.Name
	}
	return out
}

// Base is what a rule file is applied on: the server's configured rules,
// or the defaults (admin.GuardRules).
func (g *guardRules) Base() ([]guard.Rule, string) { return slices.Clone(g.base), g.baseSource }

// InForce is the applied file this server runs and its rules; ok is false
// while none is.
func (g *guardRules) InForce() (rulefile.Applied, []guard.Rule, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.applied, slices.Clone(g.file), g.rev != 0 && g.applied.File != ""
}

// Apply stores the file for every server and puts it in force here at
// once; the others read it within guardRulesRefresh.
func (g *guardRules) Apply(ctx context.Context, a rulefile.Applied, file []guard.Rule) error {
	rec, err := a.Marshal()
	if err != nil {
		return err
	}
	rev, err := g.bucket.Put(ctx, rulefile.Key, rec)
	if err != nil {
		return fmt.Errorf("store the guard's rule file: %w", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	// A refresh may have read a later file already (another server's
	// apply): revisions only grow, and the later one stays.
	if rev > g.rev {
		g.rev = rev
		g.put(a, file)
	}
	return nil
}

// adminGuardRules is the rule file for the admin API; nil, serving no
// rule routes, when the guard is off.
func (s *Server) adminGuardRules() admin.GuardRules {
	if s.guardRules == nil {
		return nil
	}
	return s.guardRules
}
