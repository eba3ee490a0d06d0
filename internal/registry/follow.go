package registry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/periodic"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// FollowInterval is how often a server compares the app records every
// server shares with what it serves: a deploy, rollback or delete made
// through another server is served here within about this long plus
// the time its modules take to build (a compile-cache hit is
// milliseconds).
const FollowInterval = 500 * time.Millisecond

// followTimeout bounds one comparison, builds included: compiling a
// large module that is not in the cache takes seconds.
const followTimeout = 2 * time.Minute

// followFull: every this many comparisons the app records are read
// whatever the bucket's last revision says, so that nothing (a bucket
// recreated behind the server's back, a revision read wrong) can keep a
// change from this server for longer than this many intervals.
const followFull = 60

// revisioned is what a StateStore may offer for Follow to read the app
// records only when something in the store changed: the revision of its
// latest write or delete (jetstream.Bucket.LastRevision). A store without
// it has its app records read on every comparison.
type revisioned interface {
	LastRevision(ctx context.Context) (uint64, error)
}

// Follower keeps a registry serving what the app records say while other
// servers on the same NATS deploy, roll back and delete apps. Stop it
// before the triggers its activations sync are closed.
type Follower struct {
	r    *Registry
	loop *periodic.Loop

	// Only the loop's goroutine touches these.
	rev     uint64 // the store's revision at the last comparison that succeeded
	runs    int
	failing bool // the last comparison failed (logged once until one succeeds)
}

// Follow starts comparing, every interval, the active version each app
// record names with the one this server serves, and activates what
// another server changed: a version it does not serve is built and
// activated exactly as Restore does (OnChange runs, so the triggers
// follow), an app whose record is gone is removed as Delete removes it.
//
// Why a comparison on a timer, not a KV watch: the comparison is the
// whole truth every time, so nothing that happens between two of them (a
// reconnect, a NATS restart, a stream leader moving, this server's own
// start racing a deploy elsewhere) can leave a change unapplied; a watch
// needs each of those handled to resume where it stopped, and its first
// missed update would go unnoticed until a restart. What a timer costs is
// one request per interval when nothing changed (the store's revision),
// and a listing of the app records when something did.
//
// A version this server activated itself matches its record (the same
// number and deploy time) and is never built again. A version whose
// modules do not build here is logged once and the version served before
// is kept, until the record changes again.
func (r *Registry) Follow(interval time.Duration) *Follower {
	if interval <= 0 {
		interval = FollowInterval
	}
	f := &Follower{r: r}
	f.loop = periodic.Start(interval, followTimeout, f.run)
	return f
}

// Stop ends following and waits for a comparison in progress. Safe twice.
func (f *Follower) Stop() { f.loop.Stop() }

func (f *Follower) run(ctx context.Context) {
	full := f.runs%followFull == 0
	f.runs++
	var rev uint64
	if rs, ok := f.r.cfg.State.(revisioned); ok {
		// Read before the records: a change made after this read moves
		// the revision again and is seen by the next comparison.
		var err error
		if rev, err = rs.LastRevision(ctx); err != nil {
			f.failed(err)
			return
		}
		if rev == f.rev && !full && !f.r.retryPending.Load() {
			return
		}
	}
	if err := f.r.follow(ctx); err != nil {
		f.failed(err)
		return
	}
	f.rev = rev
	if f.failing {
		f.failing = false
		f.r.log.Info("app records read again")
	}
}

// failed logs a comparison that could not be made, once until one can.
func (f *Follower) failed(err error) {
	if !f.failing {
		f.failing = true
		f.r.log.Warn("app records not read: changes made through other servers wait", logkey.Error, err)
	}
}

// mark names one activation of an app: the version its record makes
// active and when it was made active. A delete and a new deploy of the
// same name start again at v1, so the number alone cannot tell two of
// them apart; the time does.
type mark struct {
	version    int
	deployedAt time.Time
}

func markOf(rec *appRecord) mark { return mark{rec.Active, rec.DeployedAt} }

func (m mark) of(a *App) bool { return a.Version == m.version && a.DeployedAt.Equal(m.deployedAt) }

// follow makes the snapshot serve what the app records say, under the
// lock deploys, rollbacks and deletes hold.
func (r *Registry) follow(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	records, err := r.appRecords(ctx)
	if err != nil {
		return err
	}
	defer func() { r.retryPending.Store(len(r.retrying) > 0) }()
	for name, re := range r.retrying {
		if rec, ok := records[name]; !ok || markOf(rec) != re.mark {
			delete(r.retrying, name) // deleted or changed: built afresh below
		}
	}
	// Removals first: an app deleted elsewhere may hold a route a changed
	// one now serves.
	for _, name := range r.snap.Load().AppNames() {
		if _, ok := records[name]; !ok {
			r.removeFollowed(name)
		}
	}
	var built []*App
	for _, name := range sortedKeys(records) {
		rec := records[name]
		m := markOf(rec)
		if a, ok := r.snap.Load().Apps[name]; ok && m.of(a) {
			continue // what this server serves, whoever activated it
		}
		if was, ok := r.unbuilt[name]; ok && was == m {
			continue // failed before, logged then
		}
		if re, ok := r.retrying[name]; ok && time.Now().Before(re.next) {
			continue
		}
		app, err := r.buildFollowed(ctx, rec)
		if err != nil {
			if r.retryLater(name, m, err) {
				continue
			}
			r.unbuilt[name] = m
			r.log.Error("follow app failed: the version served before is kept", logkey.App, name,
				logkey.Version, "v"+strconv.Itoa(rec.Active), logkey.Error, err)
			continue
		}
		built = append(built, app)
	}
	r.activateFollowed(built, records)
	return nil
}

// appRecords reads every app record, by app.
func (r *Registry) appRecords(ctx context.Context) (map[string]*appRecord, error) {
	keys, err := r.cfg.State.Keys(ctx, "app.")
	if err != nil {
		return nil, fmt.Errorf("follow apps: %w", err)
	}
	records := make(map[string]*appRecord, len(keys))
	for _, k := range keys {
		name := strings.TrimPrefix(k, "app.")
		rec, err := r.loadAppRecord(ctx, name)
		if errors.Is(err, aegis.ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("follow %s: %w", name, err)
		}
		records[name] = rec
	}
	return records, nil
}

// buildFollowed builds the version rec makes active, as Restore does.
func (r *Registry) buildFollowed(ctx context.Context, rec *appRecord) (*App, error) {
	var ver versionRecord
	if err := r.getJSON(ctx, versionKey(rec.App, rec.Active), &ver); err != nil {
		return nil, readError{fmt.Errorf("read v%d: %w", rec.Active, err)}
	}
	app, err := r.build(ctx, &ver)
	if err != nil {
		return nil, err
	}
	app.DeployedAt = rec.DeployedAt
	return app, nil
}

// activateFollowed activates the apps built, one by one as Restore does.
// One whose route another app still holds here may be waiting for that
// app's own change in the same comparison (the route moved from one app
// to the other), so a refused app is tried again while others go in; one
// still refused after that is logged and not built again until its
// record changes.
func (r *Registry) activateFollowed(built []*App, records map[string]*appRecord) {
	for len(built) > 0 {
		var refused []*App
		why := map[*App]error{}
		for _, app := range built {
			next, err := r.withApp(app)
			var ce *RouteConflictError
			if errors.As(err, &ce) {
				refused, why[app] = append(refused, app), err
				continue
			}
			if err != nil {
				r.closeApp(app)
				r.unbuilt[app.Name] = markOf(records[app.Name])
				r.log.Error("follow app failed: the version served before is kept", logkey.App, app.Name,
					logkey.Version, app.versionLabel(), logkey.Error, err)
				continue
			}
			delete(r.unbuilt, app.Name)
			delete(r.retrying, app.Name)
			r.activate(next, app.Name)
			r.log.Info("app followed", logkey.App, app.Name, logkey.Version, app.versionLabel())
		}
		if len(refused) == len(built) {
			for _, app := range refused {
				r.closeApp(app)
				r.unbuilt[app.Name] = markOf(records[app.Name])
				r.log.Error("follow app failed: the version served before is kept", logkey.App, app.Name,
					logkey.Version, app.versionLabel(), logkey.Error, why[app])
			}
			return
		}
		built = refused
	}
}

// removeFollowed stops serving an app whose record another server
// deleted, as Delete does on the server it was made through.
func (r *Registry) removeFollowed(name string) {
	cur := r.snap.Load()
	apps := make(map[string]*App, len(cur.Apps))
	for n, a := range cur.Apps {
		if n != name {
			apps[n] = a
		}
	}
	next, err := snapshotOf(apps)
	if err != nil {
		// Fewer apps than a snapshot that held cannot conflict; were they
		// to, serving on is the safe side, and the next comparison tries
		// again.
		r.log.Error("remove app failed", logkey.App, name, logkey.Error, err)
		return
	}
	delete(r.unbuilt, name)
	delete(r.retrying, name)
	r.activate(next, name)
	r.log.Info("app removed", logkey.App, name)
}

// readError is a build that failed because something it needs could not
// be read from JetStream, not because it is wrong: a module read from a
// replica still catching up after a restart ("digests do not match"), a
// leader moving. Trying again later builds it; a module that does not
// compile never will.
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }
func (e readError) Unwrap() error { return e.err }

// retry is an activation waiting to be built again, and when.
type retry struct {
	mark mark
	next time.Time
	wait time.Duration
}

// Waits between the attempts at an activation whose build could not read
// what it needs: growing, so a store that stays unreadable is not read
// every comparison.
const (
	firstRetryWait = time.Second
	maxRetryWait   = 10 * time.Second
)

// retryLater reports whether err is a readError, and if so schedules the
// activation m of app name to be built again by Follow, logging the first
// failure of each activation. Called with mu held.
func (r *Registry) retryLater(name string, m mark, err error) bool {
	if !errors.As(err, new(readError)) {
		return false
	}
	re, ok := r.retrying[name]
	if !ok || re.mark != m {
		re = &retry{mark: m, wait: firstRetryWait}
		r.retrying[name] = re
		r.log.Warn("app not built yet: what it needs could not be read; trying again", logkey.App, name,
			logkey.Version, "v"+strconv.Itoa(m.version), logkey.Error, err)
	} else {
		re.wait = min(2*re.wait, maxRetryWait)
	}
	re.next = time.Now().Add(re.wait)
	r.retryPending.Store(true)
	return true
}
