// Package advise owns least-privilege advice (docs/advise.md): for each
// function of an app, its grants beside what it was seen to use, and a
// narrower set of grants to paste into aegis.yaml, every change with its
// reason and the evidence it rests on.
//
// It is pure: it reads what it is given (the manifest, the call graph's
// observations, each module's host imports) and touches no store, no
// network and no file. Advice only ever narrows: it drops a grant,
// replaces a wildcard by the names used under it, or moves a write grant
// only ever read through to the read list; it never adds a name the
// function was not already granted.
//
// The policy, best evidence first:
//
//   - observed (the call graph saw the function run): a grant no call
//     used is dropped; a wildcard is replaced by the names used under it
//     (at most MaxNames of them, else it is kept with a note); a kv or
//     objects write grant only read through moves to the read list. When
//     the module imports the host function that would use a dropped grant,
//     the reason says so: observed advice is only as good as the traffic
//     seen, and a path not taken yet would be refused.
//   - imports (never seen running, its module known): the grant kinds
//     whose host functions the module does not import are dropped (a
//     write grant whose module imports only the reading functions becomes
//     a read grant); the rest is kept as written, since imports name no
//     table, key, topic or host.
//   - none: the grants are kept as they are.
package advise

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/manifest"
)

// MaxNames is the most names a wildcard grant is narrowed to: a wildcard
// used under more names is kept, with a note, since a longer list is no
// easier to review than the wildcard.
const MaxNames = 16

// The kinds of Use, in the call graph's words (docs/callgraph.md). Edges
// of the graph have the graph's kinds; names have the kinds below with an
// access ("kv.read") for kv and objects.
const (
	KindHTTP     = "http"
	KindEvent    = "event"
	KindObject   = "object"
	KindSchedule = "schedule"
	KindPublish  = "publish"
	KindInvoke   = "invoke"
	KindFetch    = "fetch"
	KindKV       = "kv"
	KindObjects  = "objects"
	KindSecret   = "secret"

	KindKVRead       = "kv.read"
	KindKVWrite      = "kv.write"
	KindObjectsRead  = "objects.read"
	KindObjectsWrite = "objects.write"
)

// Use is one observation: an edge of the call graph (From → To, Kind a
// graph kind, allowed uses in Count, refused ones in Refused), or a name a
// function reached (From the function, To the table, object folder,
// topic or host).
type Use struct {
	Kind     string
	From, To string
	Count    int64
	Refused  int64
}

// Input is what advice is computed from.
type Input struct {
	App      string
	Version  int
	Manifest *manifest.Manifest
	// Edges are the call graph's observed edges: triggers into functions,
	// and host calls counted on the grant that allowed them (or, refused,
	// on what the function asked for).
	Edges []Use
	// Names are the concrete names each function reached under its
	// grants: tables ("kv.read", "kv.write"), object folders
	// ("objects.read", "objects.write": "images/*" for images/a.jpg),
	// topics ("publish") and hosts ("fetch").
	Names []Use
	// Imports are the "aegis" host functions each function's module
	// imports; a function without an entry has an unknown module.
	Imports map[string][]string
}

// The host functions (docs/abi.md) behind each grant field.
var fieldImports = map[string][]string{
	"kv.read":        {"kv_get", "kv_list"},
	"kv.write":       {"kv_put", "kv_delete"},
	"objects.read":   {"object_get", "object_list"},
	"objects.write":  {"object_put", "object_delete"},
	"events.publish": {"publish"},
	"egress.hosts":   {"fetch"},
	"invoke":         {"invoke"},
	"secrets":        {"secret"},
}

// Advise computes the advice for every function of in.Manifest, in name
// order.
func Advise(in Input) adminapi.Advice {
	out := adminapi.Advice{App: in.App, Version: in.Version, Functions: []adminapi.FunctionAdvice{}}
	if in.Manifest == nil {
		return out
	}
	for _, u := range in.Edges {
		if u.Count > 0 || u.Refused > 0 {
			out.Observed = true
		}
	}
	if !out.Observed {
		out.Note = "no observations of " + in.App + " yet: the call graph has seen none of its functions run, " +
			"so the advice rests on each module's imports alone; run real traffic through the app and ask again"
	}
	for _, name := range in.Manifest.FunctionNames() {
		f := in.Manifest.Functions[name]
		if f == nil {
			continue
		}
		out.Functions = append(out.Functions, adviseFunction(in, name, f.Grants))
	}
	return out
}

// function is what one function's advice is computed from.
type function struct {
	name        string
	invocations int64
	hostCalls   int64
	// edges: allowed uses per field kind ("kv", "objects", …) and grant.
	edges map[string]map[string]int64
	// names: per name kind ("kv.read", "publish", …) the names used.
	names map[string]map[string]int64
	// imports is nil when the module is unknown.
	imports map[string]bool
	refused []Use
}

func gather(in Input, name string) *function {
	fn := &function{name: name, edges: map[string]map[string]int64{}, names: map[string]map[string]int64{}}
	for _, u := range in.Edges {
		switch {
		case isTrigger(u.Kind) && u.To == name, u.Kind == KindInvoke && u.To == name:
			fn.invocations += u.Count
		}
		if u.From != name || isTrigger(u.Kind) {
			continue
		}
		if u.Count > 0 {
			if fn.edges[u.Kind] == nil {
				fn.edges[u.Kind] = map[string]int64{}
			}
			fn.edges[u.Kind][u.To] += u.Count
			fn.hostCalls += u.Count
		}
		if u.Refused > 0 {
			fn.refused = append(fn.refused, u)
		}
	}
	for _, u := range in.Names {
		if u.From != name || u.Count <= 0 || u.To == "" {
			continue
		}
		if fn.names[u.Kind] == nil {
			fn.names[u.Kind] = map[string]int64{}
		}
		fn.names[u.Kind][u.To] += u.Count
	}
	if imps, ok := in.Imports[name]; ok {
		fn.imports = map[string]bool{}
		for _, i := range imps {
			fn.imports[i] = true
		}
	}
	return fn
}

func isTrigger(kind string) bool {
	return kind == KindHTTP || kind == KindEvent || kind == KindObject || kind == KindSchedule
}

func adviseFunction(in Input, name string, g manifest.Grants) adminapi.FunctionAdvice {
	fn := gather(in, name)
	fa := adminapi.FunctionAdvice{Function: name, Invocations: fn.invocations, Current: g}
	if fn.imports != nil {
		fa.Imports = slices.Sorted(maps.Keys(fn.imports))
		if fa.Imports == nil {
			fa.Imports = []string{}
		}
	}
	a := &advisor{fn: fn, fa: &fa}
	switch {
	case fn.invocations > 0 || fn.hostCalls > 0:
		fa.Evidence = adminapi.EvidenceObserved
		fa.Advised = a.observed(g)
	case fn.imports != nil:
		fa.Evidence = adminapi.EvidenceImports
		fa.Advised = a.fromImports(g)
	default:
		fa.Evidence = adminapi.EvidenceNone
		fa.Advised = cloneGrants(g)
		if !emptyGrants(g) {
			fa.Notes = append(fa.Notes, "never seen running and its module is unknown: grants kept as written")
		}
	}
	for _, u := range fn.refused {
		fa.Notes = append(fa.Notes, fmt.Sprintf("%d %s call(s) to %q refused outside the grants: advice never widens a grant; "+
			"grant it only if the function needs it", u.Refused, u.Kind, u.To))
	}
	return fa
}

// advisor collects one function's changes and notes.
type advisor struct {
	fn *function
	fa *adminapi.FunctionAdvice
}

func (a *advisor) change(field, grant, action string, to []string, reason string) {
	a.fa.Changes = append(a.fa.Changes, adminapi.GrantChange{Field: field, Grant: grant, Action: action, To: to, Reason: reason})
}

func (a *advisor) note(format string, args ...any) {
	a.fa.Notes = append(a.fa.Notes, fmt.Sprintf(format, args...))
}

// imported reports whether the module imports any host function behind
// field; true when the module is unknown.
func (a *advisor) imported(field string) bool {
	if a.fn.imports == nil {
		return true
	}
	for _, i := range fieldImports[field] {
		if a.fn.imports[i] {
			return true
		}
	}
	return false
}

// unusedReason says why an unused grant is dropped on observed evidence,
// and whether the module could still use it.
func (a *advisor) unusedReason(field string) string {
	seen := fmt.Sprintf("never used in %d observed invocation(s)", a.fn.invocations)
	switch {
	case a.fn.imports == nil:
		return seen + "; the module is unknown, so a path not seen yet may still need it"
	case a.imported(field):
		return seen + "; the module imports " + strings.Join(present(fieldImports[field], a.fn.imports), ", ") +
			", so a path not seen yet may still need it: keep it if one does"
	default:
		return seen + ", and the module does not import " + strings.Join(fieldImports[field], " or ") + ": it cannot use it"
	}
}

func present(names []string, set map[string]bool) []string {
	var out []string
	for _, n := range names {
		if set[n] {
			out = append(out, n)
		}
	}
	return out
}

// observed narrows g to what the call graph saw the function use.
func (a *advisor) observed(g manifest.Grants) manifest.Grants {
	var out manifest.Grants
	out.KV = a.readWrite("kv", KindKV, KindKVRead, KindKVWrite, g.KV, manifest.MatchPattern)
	out.Objects = a.readWrite("objects", KindObjects, KindObjectsRead, KindObjectsWrite, g.Objects, manifest.MatchPattern)
	out.Events.Publish = a.list("events.publish", KindPublish, KindPublish, g.Events.Publish, manifest.MatchPattern)
	out.Egress.Hosts = a.list("egress.hosts", KindFetch, KindFetch, g.Egress.Hosts, matchHost)
	out.Invoke = a.exact("invoke", KindInvoke, g.Invoke)
	out.Secrets = a.exact("secrets", KindSecret, g.Secrets)
	return out
}

// readWrite narrows a kv or objects grant: write grants to the names
// written, read grants to the names read, and names only read through a
// write grant moved to the read list.
func (a *advisor) readWrite(field, edgeKind, readKind, writeKind string, rw manifest.ReadWrite, match func(p, n string) bool) manifest.ReadWrite {
	var out manifest.ReadWrite
	haveNames := a.fn.names[readKind] != nil || a.fn.names[writeKind] != nil
	if !haveNames {
		// Uses were counted on grants but no names were recorded (a server
		// before names were kept): used grants are kept as written.
		out.Write = a.keepUsed(field+".write", edgeKind, rw.Write)
		out.Read = a.keepUsed(field+".read", edgeKind, rw.Read)
		return out
	}
	written := a.fn.names[writeKind]
	read := a.fn.names[readKind]
	// Names read that no read grant covers were read through a write grant.
	onlyRead := map[string]int64{}
	for n, c := range read {
		if !anyMatch(rw.Read, n, match) {
			onlyRead[n] = c
		}
	}
	out.Write = a.narrow(field+".write", rw.Write, written, match, onlyRead)
	// Names read and not covered by what stays writable need a read grant.
	needRead := map[string]int64{}
	for n, c := range read {
		if !anyMatch(out.Write, n, match) {
			needRead[n] = c
		}
	}
	out.Read = a.narrow(field+".read", rw.Read, needRead, match, nil)
	// What was read only through a write grant moves to the read list.
	for _, p := range rw.Write {
		var moved []string
		for _, n := range sortedNames(needRead) {
			if firstMatch(rw.Write, n, match) == p && !anyMatch(rw.Read, n, match) {
				moved = append(moved, n)
			}
		}
		if len(moved) == 0 {
			continue
		}
		moved = a.capNames(p, moved)
		a.change(field+".write", p, adminapi.ActionReadOnly, moved,
			fmt.Sprintf("only read through, never written, in %d observed invocation(s)", a.fn.invocations))
		for _, n := range moved {
			if !slices.Contains(out.Read, n) {
				out.Read = append(out.Read, n)
			}
		}
	}
	return out
}

// narrow keeps each grant of list the names used cover, replacing a
// wildcard by those names. readOnly, when given, are names read through
// list, so that a grant read through but never written is not reported
// as unused (readWrite moves it).
func (a *advisor) narrow(field string, list []string, used map[string]int64, match func(p, n string) bool, readOnly map[string]int64) []string {
	var out []string
	for _, p := range list {
		var under []string
		for _, n := range sortedNames(used) {
			if firstMatch(list, n, match) == p {
				under = append(under, n)
			}
		}
		switch {
		case len(under) == 0:
			if readOnly != nil && anyUnder(list, p, readOnly, match) {
				continue // reported by readWrite as read-only
			}
			a.change(field, p, adminapi.ActionDrop, nil, a.unusedReason(field))
		case !isWildcard(p) || len(under) == 1 && under[0] == p:
			out = appendNew(out, p)
		default:
			names := a.capNames(p, minimal(under))
			if len(names) == 1 && names[0] == p {
				out = appendNew(out, p)
				continue
			}
			a.change(field, p, adminapi.ActionNarrow, names, fmt.Sprintf(
				"only %s used under %q in %d observed invocation(s); a name not seen yet would be refused",
				quoteList(names), p, a.fn.invocations))
			for _, n := range names {
				out = appendNew(out, n)
			}
		}
	}
	return out
}

// capNames returns names, or the pattern itself with a note when there
// are more than MaxNames of them.
func (a *advisor) capNames(p string, names []string) []string {
	if len(names) <= MaxNames {
		return names
	}
	a.note("%q kept: %d names were used under it, more than the %d advice lists", p, len(names), MaxNames)
	return []string{p}
}

// list narrows a grant list of one access (topics, hosts).
func (a *advisor) list(field, edgeKind, nameKind string, list []string, match func(p, n string) bool) []string {
	if a.fn.names[nameKind] == nil {
		return a.keepUsed(field, edgeKind, list)
	}
	return a.narrow(field, list, a.fn.names[nameKind], match, nil)
}

// keepUsed keeps the grants of list the call graph counted uses on, and
// drops the others.
func (a *advisor) keepUsed(field, edgeKind string, list []string) []string {
	var out []string
	for _, p := range list {
		key := p
		if edgeKind == KindFetch {
			key = canonicalHost(p)
		}
		if a.fn.edges[edgeKind][key] > 0 {
			out = appendNew(out, p)
			if isWildcard(p) {
				a.note("%q kept as written: it was used, but no names under it were recorded", p)
			}
			continue
		}
		a.change(field, p, adminapi.ActionDrop, nil, a.unusedReason(field))
	}
	return out
}

// exact keeps the exact grants (functions, secrets) used.
func (a *advisor) exact(field, edgeKind string, list []string) []string {
	return a.keepUsed(field, edgeKind, list)
}

// fromImports drops the grant kinds the module cannot use.
func (a *advisor) fromImports(g manifest.Grants) manifest.Grants {
	out := cloneGrants(g)
	out.KV = a.rwImports("kv", g.KV)
	out.Objects = a.rwImports("objects", g.Objects)
	out.Events.Publish = a.dropUnimported("events.publish", g.Events.Publish)
	out.Egress.Hosts = a.dropUnimported("egress.hosts", g.Egress.Hosts)
	out.Invoke = a.dropUnimported("invoke", g.Invoke)
	out.Secrets = a.dropUnimported("secrets", g.Secrets)
	for _, p := range slices.Concat(out.KV.Read, out.KV.Write, out.Objects.Read, out.Objects.Write, out.Events.Publish, out.Egress.Hosts) {
		if isWildcard(p) {
			a.note("%q kept as written: the function was never seen running, and imports name no table, key, topic or host", p)
		}
	}
	return out
}

func (a *advisor) rwImports(field string, rw manifest.ReadWrite) manifest.ReadWrite {
	out := manifest.ReadWrite{Read: slices.Clone(rw.Read)}
	canRead, canWrite := a.imported(field+".read"), a.imported(field+".write")
	for _, p := range rw.Write {
		switch {
		case canWrite:
			out.Write = append(out.Write, p)
		case canRead:
			a.change(field+".write", p, adminapi.ActionReadOnly, []string{p}, fmt.Sprintf(
				"never seen running; its module imports %s but not %s: it can only read",
				strings.Join(present(fieldImports[field+".read"], a.fn.imports), ", "), strings.Join(fieldImports[field+".write"], " or ")))
			out.Read = appendNew(out.Read, p)
		default:
			a.change(field+".write", p, adminapi.ActionDrop, nil, importReason(field+".write"))
		}
	}
	if !canRead && !canWrite {
		for _, p := range rw.Read {
			a.change(field+".read", p, adminapi.ActionDrop, nil, importReason(field+".read"))
		}
		out.Read = nil
	}
	return out
}

func (a *advisor) dropUnimported(field string, list []string) []string {
	if a.imported(field) {
		return slices.Clone(list)
	}
	for _, p := range list {
		a.change(field, p, adminapi.ActionDrop, nil, importReason(field))
	}
	return nil
}

func importReason(field string) string {
	if strings.HasSuffix(field, ".read") {
		kind := strings.TrimSuffix(field, ".read")
		return "never seen running; its module imports no " + kind + " host function (" +
			strings.Join(slices.Concat(fieldImports[field], fieldImports[kind+".write"]), ", ") + "): it cannot use it"
	}
	return "never seen running; its module does not import " + strings.Join(fieldImports[field], " or ") + ": it cannot use it"
}

// matchHost reports whether the egress pattern p covers name, a host or
// host:port as the call graph records a fetch.
func matchHost(p, name string) bool {
	hp, err := manifest.ParseHostPattern(p)
	if err != nil {
		return false
	}
	host, port := name, uint16(0)
	if h, ps, err := net.SplitHostPort(name); err == nil {
		n, err := strconv.ParseUint(ps, 10, 16)
		if err != nil {
			return false
		}
		host, port = h, uint16(n)
	}
	// A name without a port was recorded under a pattern without one,
	// which matches any port.
	return hp.Match(host, port)
}

func canonicalHost(p string) string {
	if hp, err := manifest.ParseHostPattern(p); err == nil {
		return hp.String()
	}
	return p
}

func isWildcard(p string) bool { return strings.HasSuffix(p, "*") || strings.HasPrefix(p, "*.") }

func firstMatch(list []string, n string, match func(p, n string) bool) string {
	for _, p := range list {
		if match(p, n) {
			return p
		}
	}
	return ""
}

func anyMatch(list []string, n string, match func(p, n string) bool) bool {
	return firstMatch(list, n, match) != ""
}

// anyUnder reports whether some name of names falls first under p in list.
func anyUnder(list []string, p string, names map[string]int64, match func(p, n string) bool) bool {
	for n := range names {
		if firstMatch(list, n, match) == p {
			return true
		}
	}
	return false
}

// minimal drops the names another name of the list covers as a pattern
// ("images/a/*" under "images/*").
func minimal(names []string) []string {
	var out []string
	for _, n := range names {
		covered := false
		for _, m := range names {
			if m != n && strings.HasSuffix(m, "*") && manifest.MatchPattern(m, n) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, n)
		}
	}
	return out
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func sortedNames(m map[string]int64) []string { return slices.Sorted(maps.Keys(m)) }

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

func cloneGrants(g manifest.Grants) manifest.Grants {
	return manifest.Grants{
		KV:      manifest.ReadWrite{Read: slices.Clone(g.KV.Read), Write: slices.Clone(g.KV.Write)},
		Objects: manifest.ReadWrite{Read: slices.Clone(g.Objects.Read), Write: slices.Clone(g.Objects.Write)},
		Events:  manifest.EventGrants{Publish: slices.Clone(g.Events.Publish)},
		Egress:  manifest.EgressGrants{Hosts: slices.Clone(g.Egress.Hosts)},
		Invoke:  slices.Clone(g.Invoke),
		Secrets: slices.Clone(g.Secrets),
	}
}

func emptyGrants(g manifest.Grants) bool {
	return len(g.KV.Read)+len(g.KV.Write)+len(g.Objects.Read)+len(g.Objects.Write)+
		len(g.Events.Publish)+len(g.Egress.Hosts)+len(g.Invoke)+len(g.Secrets) == 0
}
