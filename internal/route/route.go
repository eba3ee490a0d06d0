// Package route owns the gateway's route table: which app and function
// answer a method and path, and the path parameters of a match. An
// undeclared route does not exist, so anything the table cannot match — an
// unknown path, a malformed one, a traversal attempt — is "not found".
//
// It must never run user-controlled patterns (no regular expressions, no
// search whose cost can exceed the table's size) and never change a table after
// New: the gateway swaps whole tables atomically on deploy and reads them
// from many goroutines without locks.
package route

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/policy"
	"github.com/aegis-platform/aegis/internal/schema"
	"github.com/aegis-platform/aegis/manifest"
)

// MaxPathLen is the longest request path Match considers; longer ones are
// not found. Real routes are far shorter, and the cap bounds the work an
// attacker can ask for.
const MaxPathLen = 2048

// Route is one declared HTTP trigger.
type Route struct {
	// Method is an upper-case HTTP method ("GET", "POST", ...).
	Method string
	// Path is a pattern of "/"-separated segments, each either a literal or
	// a parameter "{name}" that matches one whole segment. A trailing slash
	// is dropped: "/a/" and "/a" are the same route.
	Path     string
	App      string
	Function string
	// Public routes need no credential; all others do (deny by default).
	Public bool
	// Private routes are reachable only through the invoke capability. The
	// table does not look at it: the registry keeps private routes out of
	// the gateway's table altogether (so neither a 404 nor a 405's Allow
	// can reveal them) and puts them only in the table of their app.
	Private bool
	// Auth lists the credential kinds the route accepts (e.g. "api-key").
	Auth []string
	// JWT and HMAC configure the "jwt" and "hmac" kinds when Auth lists
	// them. The table never looks at them; they travel with the route so
	// the gateway finds them with the match.
	JWT  *manifest.JWTAuth
	HMAC *manifest.HMACAuth
	// Rule, when set, must allow an authenticated request before it
	// reaches the function. Like JWT and HMAC it only travels with the
	// route; a compiled rule is immutable and safe to share.
	Rule *policy.Rule
	// Schema, when set, checks the content type, path parameters, query
	// and body of a request before it reaches the function (the gateway
	// for public routes, the invoke capability for private ones). It
	// travels with the route like Rule and is as immutable.
	Schema *schema.Request
	// Rate, when set, limits the requests the gateway admits to the route
	// (internal/admission keeps the buckets, outside this immutable table).
	Rate *manifest.RouteRate
	// Name is "METHOD /path" as the table normalized them, set when the
	// route is added: the route's name in the call graph, built once
	// rather than per request.
	Name string
}

// owner names a route for error messages.
func (r *Route) owner() string {
	return fmt.Sprintf("%s %s (app %q, function %q)", r.Method, r.Path, r.App, r.Function)
}

// ConflictError is two routes with the same method and path shape
// ("/a/{x}" and "/a/{y}" are one shape): Existing was added first, Route
// is the one refused. The registry reads both to say which app already
// holds the path; errors.Is matches aegis.ErrConflict.
type ConflictError struct {
	Route, Existing Route
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("add route %s: same method and path shape as %s: conflict", e.Route.owner(), e.Existing.owner())
}

// Is reports the conflict as aegis.ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == aegis.ErrConflict }

// ErrMethodNotAllowed: the path exists but not for this method. Match returns
// it as a *MethodNotAllowedError, which carries the methods that are allowed.
var ErrMethodNotAllowed = errors.New("method not allowed")

// MethodNotAllowedError tells the gateway to answer 405 with an Allow header.
type MethodNotAllowedError struct {
	// Allow is sorted and includes HEAD whenever GET is allowed.
	Allow []string
}

func (e *MethodNotAllowedError) Error() string {
	return "method not allowed (allow: " + strings.Join(e.Allow, ", ") + ")"
}

func (e *MethodNotAllowedError) Unwrap() error { return ErrMethodNotAllowed }

// Table is a compiled, immutable set of routes: a trie of path segments, so a
// lookup costs one map probe per segment whatever the number of routes.
type Table struct {
	root   *node
	routes []*Route // declaration order, for Routes
}

type node struct {
	literal map[string]*node // child per literal segment
	param   *node            // child for any segment ("{name}")
	ends    []*endpoint      // routes ending here, one per method
}

type endpoint struct {
	route *Route
	// params maps segment positions to parameter names, in path order.
	params []param
}

type param struct {
	name  string
	index int // which segment, counting from 0
}

// New compiles routes into a Table. A route whose method or path is invalid
// is aegis.ErrInvalidArgument; two routes with the same method and the same
// path shape ("/a/{x}" and "/a/{y}" are one shape) are aegis.ErrConflict,
// and the error names both owners. The routes are copied: later changes to
// the slice do not reach the table.
func New(routes []Route) (*Table, error) {
	t := &Table{root: &node{}}
	for i := range routes {
		r := routes[i]
		r.Auth = slices.Clone(r.Auth)
		if err := t.add(&r); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (t *Table) add(r *Route) error {
	method, err := normalizeMethod(r.Method)
	if err != nil {
		return fmt.Errorf("add route %s %s (app %q, function %q): %w", r.Method, r.Path, r.App, r.Function, err)
	}
	r.Method = method
	segs, err := splitPattern(r.Path)
	if err != nil {
		return fmt.Errorf("add route %s: %w", r.owner(), err)
	}
	r.Path = "/" + strings.Join(segs, "/")
	r.Name = r.Method + " " + r.Path

	e := &endpoint{route: r}
	n := t.root
	for i, s := range segs {
		if name, ok := paramName(s); ok {
			if slices.ContainsFunc(e.params, func(p param) bool { return p.name == name }) {
				return fmt.Errorf("add route %s: parameter {%s} appears twice: %w", r.owner(), name, aegis.ErrInvalidArgument)
			}
			e.params = append(e.params, param{name: name, index: i})
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
			continue
		}
		if n.literal == nil {
			n.literal = map[string]*node{}
		}
		child := n.literal[s]
		if child == nil {
			child = &node{}
			n.literal[s] = child
		}
		n = child
	}
	for _, other := range n.ends {
		if other.route.Method == r.Method {
			return &ConflictError{Route: *r, Existing: *other.route}
		}
	}
	n.ends = append(n.ends, e)
	t.routes = append(t.routes, r)
	return nil
}

// Routes returns a copy of the table's routes, sorted by path then method,
// with paths and methods as normalized by New.
func (t *Table) Routes() []Route {
	if t == nil {
		return nil
	}
	out := make([]Route, len(t.routes))
	for i, r := range t.routes {
		out[i] = *r
		out[i].Auth = slices.Clone(r.Auth)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// Match finds the route for a request. path is the request's escaped path,
// as sent on the wire (r.URL.EscapedPath(), not the already-decoded
// r.URL.Path, which would decode twice), without the query.
//
//   - Each segment is percent-decoded exactly once; parameters hold decoded
//     values. A path with "." or ".." segments (even encoded), an empty
//     segment, a NUL, an encoded "/" (%2F), bad percent-encoding or more than
//     MaxPathLen bytes does not match anything: aegis.ErrNotFound.
//   - A trailing slash is ignored: "/a/" matches the route "/a".
//   - Literal segments beat parameters ("/entries/new" beats
//     "/entries/{id}"), and the most literal route that has the method wins.
//   - HEAD falls back to the GET route when no HEAD route is declared.
//   - A path that matches only for other methods is a *MethodNotAllowedError.
//
// The returned Route belongs to the table and must not be modified. params is
// nil when the route has none. Unless the path has percent-escapes (one
// allocation for the decoded copy), the only allocation is the params map.
func (t *Table) Match(method, path string) (*Route, map[string]string, error) {
	if t == nil {
		return nil, nil, aegis.ErrNotFound
	}
	clean, ok := Clean(path)
	if !ok {
		return nil, nil, aegis.ErrNotFound
	}
	rest := clean[1:] // drop the leading "/"
	e := t.root.find(rest, method)
	if e == nil && method == "HEAD" {
		e = t.root.find(rest, "GET")
	}
	if e == nil {
		var allow []string
		t.root.allowed(rest, &allow)
		if len(allow) == 0 {
			return nil, nil, aegis.ErrNotFound
		}
		if slices.Contains(allow, "GET") && !slices.Contains(allow, "HEAD") {
			allow = append(allow, "HEAD")
		}
		sort.Strings(allow)
		return nil, nil, &MethodNotAllowedError{Allow: slices.Compact(allow)}
	}
	return e.route, e.values(rest), nil
}

// find returns the endpoint for method under n for the segments in path,
// trying the literal child before the parameter child at every level. n's
// subtree is a tree, so each node is visited at most once: the search is
// bounded by the table's size, never exponential in the path.
func (n *node) find(path, method string) *endpoint {
	if path == "" {
		for _, e := range n.ends {
			if e.route.Method == method {
				return e
			}
		}
		return nil
	}
	seg, rest, _ := strings.Cut(path, "/")
	if child := n.literal[seg]; child != nil {
		if e := child.find(rest, method); e != nil {
			return e
		}
	}
	if n.param != nil {
		return n.param.find(rest, method)
	}
	return nil
}

// allowed appends the methods of every route matching path. Only used to
// build a 405, so it may allocate.
func (n *node) allowed(path string, out *[]string) {
	if path == "" {
		for _, e := range n.ends {
			*out = append(*out, e.route.Method)
		}
		return
	}
	seg, rest, _ := strings.Cut(path, "/")
	if child := n.literal[seg]; child != nil {
		child.allowed(rest, out)
	}
	if n.param != nil {
		n.param.allowed(rest, out)
	}
}

// values extracts the parameters of e from path (the cleaned path without its
// leading "/"). The values are substrings of path: no copies.
func (e *endpoint) values(path string) map[string]string {
	if len(e.params) == 0 {
		return nil
	}
	m := make(map[string]string, len(e.params))
	i, p := 0, 0
	for p < len(e.params) {
		seg, rest, _ := strings.Cut(path, "/")
		if e.params[p].index == i {
			m[e.params[p].name] = seg
			p++
		}
		path = rest
		i++
	}
	return m
}

// normalizeMethod upper-cases a declared method and checks it is a plain
// token, so a manifest's "post" works and nothing odd reaches an Allow header.
func normalizeMethod(m string) (string, error) {
	m = strings.ToUpper(m)
	if m == "" || len(m) > 16 {
		return "", fmt.Errorf("method must be 1 to 16 letters: %w", aegis.ErrInvalidArgument)
	}
	for i := 0; i < len(m); i++ {
		if m[i] < 'A' || m[i] > 'Z' {
			return "", fmt.Errorf("method %q must be letters only: %w", m, aegis.ErrInvalidArgument)
		}
	}
	return m, nil
}

// splitPattern validates a declared path and returns its segments.
func splitPattern(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("path must start with '/': %w", aegis.ErrInvalidArgument)
	}
	if len(p) > MaxPathLen {
		return nil, fmt.Errorf("path longer than %d bytes: %w", MaxPathLen, aegis.ErrInvalidArgument)
	}
	if p == "/" {
		return nil, nil
	}
	p = strings.TrimSuffix(p[1:], "/")
	segs := strings.Split(p, "/")
	for _, s := range segs {
		if err := checkPatternSegment(s); err != nil {
			return nil, err
		}
	}
	return segs, nil
}

func checkPatternSegment(s string) error {
	if s == "" {
		return fmt.Errorf("path has an empty segment: %w", aegis.ErrInvalidArgument)
	}
	if s == "." || s == ".." {
		return fmt.Errorf("path segment %q is not allowed: %w", s, aegis.ErrInvalidArgument)
	}
	if strings.HasPrefix(s, "{") || strings.HasSuffix(s, "}") {
		if _, ok := paramName(s); !ok {
			return fmt.Errorf("path segment %q: a parameter is a whole segment {name}, name of letters, digits and '_', not starting with a digit: %w", s, aegis.ErrInvalidArgument)
		}
		return nil
	}
	// Literals are compared with decoded request segments, so they are
	// written decoded: RFC 3986 pchar without '%'.
	for i := 0; i < len(s); i++ {
		if !isPchar(s[i]) {
			return fmt.Errorf("path segment %q: character %q is not allowed in a literal: %w", s, s[i], aegis.ErrInvalidArgument)
		}
	}
	return nil
}

// paramName returns name for a segment "{name}".
func paramName(s string) (string, bool) {
	if len(s) < 3 || s[0] != '{' || s[len(s)-1] != '}' {
		return "", false
	}
	name := s[1 : len(s)-1]
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || i > 0 && '0' <= c && c <= '9') {
			return "", false
		}
	}
	return name, true
}

// isPchar: unreserved / sub-delims / ":" / "@" (RFC 3986 §3.3), no "%".
func isPchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0
}
