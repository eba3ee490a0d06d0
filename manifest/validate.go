package manifest

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Limit ranges. They bound what a manifest may ask for; the server may cap
// further.
const (
	minTimeout     = time.Millisecond
	maxTimeout     = 5 * time.Minute
	minMemory      = MiB
	maxMemory      = 4 * GiB
	maxConcurrency = 1000
	maxBodySize    = 64 * MiB
	maxCapCount    = 10000
	maxEgress      = GiB
	maxEventSize   = MiB // the event stream's largest message
	maxAttempts    = 100
	maxTopicLen    = 128
	maxKeyLen      = 1024
)

var (
	nameRE  = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	tableRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	topicRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
	segRE   = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)
	paramRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	// mediaTypeRE is type "/" subtype of RFC 6838 restricted names.
	mediaTypeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$`)
)

// ValidName reports whether s is a valid app or function name (nameRule).
func ValidName(s string) bool { return nameRE.MatchString(s) }

const nameRule = "use 1-63 lowercase letters, digits and '-', starting with a letter"

var httpMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

// validator collects every problem in a decoded manifest. lines and failed
// come from the decoder; both are empty for a manifest that was not parsed
// from YAML.
type validator struct {
	file   string
	lines  map[string]int
	failed map[string]bool
	errs   Errors
	routes map[string]string // "METHOD /path/{}" -> field path of the first claim
}

func (v *validator) add(path, format string, args ...any) {
	if v.failedAt(path) {
		return // the decoder already reported this value
	}
	v.errs = append(v.errs, &Error{File: v.file, Line: v.line(path), Field: path, Msg: fmt.Sprintf(format, args...)})
}

// failedAt reports whether path or one of its ancestors failed to decode.
// It walks up the path rather than scanning v.failed, so hostile input with
// many errors costs time linear in their number.
func (v *validator) failedAt(path string) bool {
	for {
		if v.failed[path] {
			return true
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return false
		}
		path = path[:i]
	}
}

// line finds the line of path, or of its nearest ancestor that was written
// down: a missing field is reported where its parent is.
func (v *validator) line(path string) int { return lineOf(v.lines, path) }

func lineOf(lines map[string]int, path string) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	if len(lines) > 0 {
		return 1
	}
	return 0
}

func (v *validator) manifest(m *Manifest) {
	switch {
	case m.App == "":
		v.add("app", "app name is required")
	case !nameRE.MatchString(m.App):
		v.add("app", "invalid app name %q: %s", m.App, nameRule)
	}
	if len(m.Functions) == 0 {
		v.add("functions", "at least one function is required")
	}
	v.routes = map[string]string{}
	for _, name := range m.FunctionNames() {
		path := "functions." + name
		if !nameRE.MatchString(name) {
			v.add(path, "invalid function name %q: %s", name, nameRule)
		}
		fn := m.Functions[name]
		if fn == nil {
			fn = &Function{} // "f": null in JSON; report what it lacks
		}
		if fn.Name != "" && fn.Name != name {
			// Only reachable from JSON, where the name is stored twice.
			v.add(path, "function name %q does not match its key %q", fn.Name, name)
		}
		v.function(path, fn)
	}
	v.budget("budget", m.Budget)
	v.invokeGrants(m)
}

// budget checks an app's or a function's budget: a window, amounts that
// are not negative, at least one of them, and a mode.
func (v *validator) budget(path string, b *Budget) {
	if b == nil {
		return
	}
	switch {
	case b.Per == "":
		v.add(path+".per", "per is required (hour, day or month)")
	case !b.Per.Valid():
		v.add(path+".per", "invalid window %q (use hour, day or month)", b.Per)
	}
	if b.Invocations < 0 {
		v.add(path+".invocations", "invocations must not be negative")
	}
	if b.Invocations > MaxRateCount {
		v.add(path+".invocations", "invocations must be at most %d", MaxRateCount)
	}
	// NaN compares false with everything, so it is refused by name.
	if b.GBSeconds < 0 || math.IsNaN(b.GBSeconds) || math.IsInf(b.GBSeconds, 0) {
		v.add(path+".gb_seconds", "gb_seconds must be a finite number, not negative")
	}
	if b.Egress < 0 {
		v.add(path+".egress", "egress must not be negative")
	}
	if b.Invocations <= 0 && !(b.GBSeconds > 0) && b.Egress <= 0 {
		v.add(path, "a budget needs at least one amount (invocations, gb_seconds or egress)")
	}
	switch b.Mode {
	case "", BudgetHard, BudgetAlert:
	default:
		v.add(path+".mode", "unsupported budget mode %q (use %s or %s)", b.Mode, BudgetHard, BudgetAlert)
	}
}

// invokeGrants checks that every invoke grant names another function of
// the same app that has an HTTP route to call.
func (v *validator) invokeGrants(m *Manifest) {
	for _, name := range m.FunctionNames() {
		fn := m.Functions[name]
		if fn == nil {
			continue
		}
		seen := map[string]bool{}
		for i, target := range fn.Grants.Invoke {
			p := fmt.Sprintf("functions.%s.grants.invoke[%d]", name, i)
			tf, ok := m.Functions[target]
			switch {
			case target == name:
				v.add(p, "a function cannot invoke itself")
			case seen[target]:
				v.add(p, "duplicate invoke grant %q", target)
			case !ok || tf == nil:
				v.add(p, "invoke grant names %q, which is not a function of this app", target)
			case !slices.ContainsFunc(tf.Triggers, func(t Trigger) bool { return t.HTTP != nil }):
				v.add(p, "function %q has no http trigger to invoke", target)
			}
			seen[target] = true
		}
	}
}

func (v *validator) function(path string, fn *Function) {
	v.source(path+".source", fn.Source)
	for i, t := range fn.Triggers {
		v.trigger(fmt.Sprintf("%s.triggers[%d]", path, i), t)
	}
	v.grants(path+".grants", fn.Grants)
	v.limits(path+".limits", fn.Limits)
	v.budget(path+".budget", fn.Budget)
	switch fn.Isolation {
	case "", IsolationReuse, IsolationPerRequest:
	default:
		v.add(path+".isolation", "unsupported isolation %q (use %s or %s)", fn.Isolation, IsolationReuse, IsolationPerRequest)
	}
}

// source is a directory holding a Go package or a .wasm file, resolved by the
// CLI relative to the manifest. The server never reads it, so only shapes
// that cannot be a local path are refused.
func (v *validator) source(path, src string) {
	switch {
	case src == "":
		v.add(path, "source is required (a directory or a .wasm file)")
	case strings.Contains(src, "://"):
		v.add(path, "source must be a local path (a directory or a .wasm file), not a URL")
	case hasControl(src):
		v.add(path, "source contains control characters")
	}
}

func (v *validator) trigger(path string, t Trigger) {
	kinds := 0
	for _, set := range []bool{t.HTTP != nil, t.Event != nil, t.Object != nil, t.Schedule != nil} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds == 0:
		for _, kind := range []string{".http", ".event", ".object", ".schedule"} {
			if v.failed[path+kind] {
				return // "http: oops" was reported; it is not also missing
			}
		}
		v.add(path, "trigger has no target (set one of http, event, object, schedule)")
		return
	case kinds > 1:
		v.add(path, "trigger names more than one kind (set only one of http, event, object, schedule)")
		return
	}
	switch {
	case t.HTTP != nil:
		v.http(path+".http", t.HTTP)
	case t.Event != nil:
		v.event(path+".event", t.Event)
	case t.Object != nil:
		v.object(path+".object", t.Object)
	case t.Schedule != nil:
		v.schedule(path+".schedule", t.Schedule)
	}
}

func (v *validator) http(path string, h *HTTPTrigger) {
	methodOK := slices.Contains(httpMethods, h.Method)
	switch {
	case h.Method == "":
		v.add(path+".method", "method is required")
	case !methodOK:
		v.add(path+".method", "unsupported method %q (use one of %s)", h.Method, strings.Join(httpMethods, ", "))
	}
	route, err := routePattern(h.Path)
	if err != nil {
		v.add(path+".path", "%s", err.Error())
	}
	seen := map[string]bool{}
	for i, a := range h.Auth {
		p := fmt.Sprintf("%s.auth[%d]", path, i)
		switch {
		case a != AuthAPIKey && a != AuthJWT && a != AuthHMAC:
			v.add(p, "unsupported auth scheme %q (use %s, %s or %s)", a, AuthAPIKey, AuthJWT, AuthHMAC)
		case seen[a]:
			v.add(p, "duplicate auth scheme %q", a)
		}
		seen[a] = true
	}
	if h.Public && len(h.Auth) > 0 {
		v.add(path+".public", "a public route cannot also list auth schemes")
	}
	switch {
	case !h.Private:
	case h.Public:
		v.add(path+".private", "a route cannot be both private and public")
	case len(h.Auth) > 0:
		v.add(path+".private", "a private route is called only by functions with an invoke grant: remove auth")
	case h.Rule != "":
		v.add(path+".private", "a private route is called only by functions with an invoke grant: remove rule")
	}
	if h.Schema != nil {
		v.schemaFile(path+".schema.body", h.Schema.Body)
		v.schemaFile(path+".schema.query", h.Schema.Query)
		v.schemaFile(path+".schema.params", h.Schema.Params)
	}
	ctSeen := map[string]bool{}
	for i, ct := range h.ContentTypes {
		p := fmt.Sprintf("%s.content_types[%d]", path, i)
		norm := strings.ToLower(ct)
		switch {
		case !mediaTypeRE.MatchString(ct):
			v.add(p, "invalid media type %q (use type/subtype such as application/json, without parameters)", ct)
		case ctSeen[norm]:
			v.add(p, "duplicate media type %q", ct)
		}
		ctSeen[norm] = true
	}
	// The rule itself is compiled at deploy (internal/policy); here only
	// what needs no CEL.
	switch {
	case h.Rule == "":
	case h.Public:
		v.add(path+".rule", "a public route has no identity to check: remove rule or public")
	case len(h.Rule) > MaxRuleLen:
		v.add(path+".rule", "rule is longer than %d bytes", MaxRuleLen)
	case strings.TrimSpace(h.Rule) == "":
		v.add(path+".rule", "rule is empty")
	}
	switch {
	case h.JWT != nil && !seen[AuthJWT]:
		v.add(path+".jwt", "jwt is set but auth does not list %q", AuthJWT)
	case h.JWT == nil && seen[AuthJWT]:
		v.add(path+".jwt", "auth lists %q: set jwt (issuer, audience)", AuthJWT)
	case h.JWT != nil:
		v.jwt(path+".jwt", h.JWT)
	}
	switch {
	case h.HMAC != nil && !seen[AuthHMAC]:
		v.add(path+".hmac", "hmac is set but auth does not list %q", AuthHMAC)
	case h.HMAC == nil && seen[AuthHMAC]:
		v.add(path+".hmac", "auth lists %q: set hmac (secret)", AuthHMAC)
	case h.HMAC != nil:
		v.hmac(path+".hmac", h.HMAC)
	}
	if h.Rate != nil {
		v.routeRate(path+".rate", h)
	}
	if methodOK && err == nil {
		key := h.Method + " " + route
		if first, ok := v.routes[key]; ok {
			v.add(path+".path", "route %s %s is already claimed by %s", h.Method, h.Path, first)
		} else {
			v.routes[key] = path
		}
	}
}

// routeRate checks a route's rate limits; each rate was parsed when it
// was decoded. Route limits count requests from outside, at the gateway:
// a private route is only ever called through invoke, which they do not
// count, so a rate there would promise a limit that never applies.
func (v *validator) routeRate(path string, h *HTTPTrigger) {
	r := h.Rate
	switch {
	case h.Private:
		v.add(path, "a private route is called only through invoke, which route rate limits do not count: remove rate")
	case r.Total.IsZero() && r.PerCaller.IsZero() && r.PerAddress.IsZero() &&
		!v.failed[path+".total"] && !v.failed[path+".per_caller"] && !v.failed[path+".per_address"]:
		v.add(path, "rate sets no limit: set total, per_caller or per_address")
	case h.Public && !r.PerCaller.IsZero():
		v.add(path+".per_caller", "a public route has no caller to count: use per_address or total, or remove public")
	}
}

// jwtAlgorithms are the signature algorithms a jwt route may accept: all
// asymmetric, so the key that checks a token can never be the issuer's
// public key misused as an HMAC secret.
var jwtAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

const maxJWTSkew = 5 * time.Minute

func (v *validator) jwt(path string, j *JWTAuth) {
	if err := CheckIssuer(j.Issuer); err != nil {
		v.add(path+".issuer", "%s", err.Error())
	}
	switch {
	case j.Audience == "":
		v.add(path+".audience", "audience is required (the \"aud\" your issuer puts in tokens for this app)")
	case len(j.Audience) > 256 || hasControl(j.Audience) || !utf8.ValidString(j.Audience):
		v.add(path+".audience", "audience must be at most 256 printable characters")
	}
	seen := map[string]bool{}
	for i, a := range j.Algorithms {
		p := fmt.Sprintf("%s.algorithms[%d]", path, i)
		switch {
		case strings.EqualFold(a, "none"):
			v.add(p, "algorithm %q is refused: unsigned tokens prove nothing", a)
		case len(a) > 2 && strings.EqualFold(a[:2], "HS"):
			v.add(p, "algorithm %q is refused: HMAC would use a shared secret, and an issuer's public key must never be one (use one of %s)", a, strings.Join(jwtAlgorithms, ", "))
		case !slices.Contains(jwtAlgorithms, a):
			v.add(p, "unsupported algorithm %q (use one of %s)", a, strings.Join(jwtAlgorithms, ", "))
		case seen[a]:
			v.add(p, "duplicate algorithm %q", a)
		}
		seen[a] = true
	}
	if j.Skew < 0 || j.Skew.Std() > maxJWTSkew {
		v.add(path+".skew", "skew must be between 0 and %s, got %s", maxJWTSkew, j.Skew)
	}
}

// CheckIssuer accepts an OpenID Connect issuer URL: https with a host and
// no query, fragment or user info; or http on a loopback IP address, so a
// test provider on 127.0.0.1 works while nothing else travels in clear.
// The same rule applies to the jwks_uri that discovery returns.
func CheckIssuer(s string) error {
	if s == "" {
		return errors.New("issuer is required (an https URL)")
	}
	if len(s) > 512 || hasControl(s) {
		return errors.New("issuer must be an https URL of at most 512 characters")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return fmt.Errorf("issuer %q is not an absolute URL", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("issuer %q may not have user info, a query or a fragment", s)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http":
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && a.IsLoopback() {
			return nil
		}
		return fmt.Errorf("issuer %q must use https (plain http only on 127.0.0.1 or [::1])", s)
	default:
		return fmt.Errorf("issuer %q must use https", s)
	}
}

// secretNameRE is the rule for webhook secret names, which become a token of
// a storage key.
var secretNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// CheckAppName reports whether name is a valid app name.
func CheckAppName(name string) error {
	if !nameRE.MatchString(name) {
		return errors.New(nameRule)
	}
	return nil
}

// CheckSecretName reports whether name is a valid webhook secret name.
func CheckSecretName(name string) error {
	if !secretNameRE.MatchString(name) {
		return errors.New("use 1-64 letters, digits, '_' and '-'")
	}
	return nil
}

func (v *validator) hmac(path string, h *HMACAuth) {
	switch err := CheckSecretName(h.Secret); {
	case h.Secret == "":
		v.add(path+".secret", "secret is required (the name of a webhook secret of the app)")
	case err != nil:
		v.add(path+".secret", "invalid secret name %q: %s", h.Secret, err.Error())
	}
	if h.Header != "" {
		switch {
		case len(h.Header) > 64 || !headerNameRE.MatchString(h.Header):
			v.add(path+".header", "invalid header name %q: use up to 64 letters, digits and '-'", h.Header)
		case strings.EqualFold(h.Header, "Authorization") || strings.EqualFold(h.Header, "Content-Type") || strings.EqualFold(h.Header, "Content-Length"):
			v.add(path+".header", "header %q cannot carry a signature", h.Header)
		}
	}
}

var headerNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*$`)

// routePattern checks an HTTP path and returns it with every parameter
// written as "{}", so "/e/{id}" and "/e/{name}" are seen as the same route.
func routePattern(p string) (string, error) {
	switch {
	case p == "":
		return "", errors.New("path is required")
	case !strings.HasPrefix(p, "/"):
		return "", fmt.Errorf("path %q must start with \"/\"", p)
	case len(p) >= len("/_aegis") && strings.EqualFold(p[:len("/_aegis")], "/_aegis"):
		return "", fmt.Errorf("path %q is reserved: paths under /_aegis belong to the platform", p)
	case p == "/":
		return p, nil
	}
	segs := strings.Split(p[1:], "/")
	params := map[string]bool{}
	for i, s := range segs {
		switch {
		case s == "":
			return "", fmt.Errorf("path %q has an empty segment", p)
		case s == "." || s == "..":
			return "", fmt.Errorf("path %q has a %q segment", p, s)
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			name := s[1 : len(s)-1]
			if !paramRE.MatchString(name) {
				return "", fmt.Errorf("path %q: invalid parameter %q (use letters, digits and '_', not starting with a digit)", p, s)
			}
			if params[name] {
				return "", fmt.Errorf("path %q: duplicate parameter %q", p, name)
			}
			params[name] = true
			segs[i] = "{}"
		case !segRE.MatchString(s):
			return "", fmt.Errorf("path %q: segment %q may contain only letters, digits and . _ ~ - (or be a {param})", p, s)
		}
	}
	return "/" + strings.Join(segs, "/"), nil
}

func (v *validator) event(path string, e *EventTrigger) {
	switch err := checkTopic(e.Topic); {
	case e.Topic == "":
		v.add(path+".topic", "topic is required")
	case err != nil:
		v.add(path+".topic", "invalid topic %q: %s", e.Topic, err.Error())
	}
	if e.MaxAttempts < 0 || e.MaxAttempts > maxAttempts {
		v.add(path+".max_attempts", "max_attempts must be between 0 and %d, got %d", maxAttempts, e.MaxAttempts)
	}
	v.schemaFile(path+".schema", e.Schema)
}

// schemaFile checks a schema reference: a relative path to a .json file
// inside the manifest's directory. The CLI reads it; the server only
// matches the name against the files sent with the deploy, so a name that
// could climb out of the directory is refused here for both.
func (v *validator) schemaFile(path, name string) {
	if name == "" {
		return
	}
	if err := CheckSchemaFile(name); err != nil {
		v.add(path, "invalid schema file %q: %s", name, err.Error())
	}
}

// CheckSchemaFile reports whether name is an acceptable schema file
// reference: relative, forward slashes, no "." or ".." segments, ending in
// .json.
func CheckSchemaFile(name string) error {
	switch {
	case len(name) > 256:
		return errors.New("longer than 256 bytes")
	case strings.Contains(name, "://"):
		return errors.New("must be a file next to the manifest, not a URL")
	case !utf8.ValidString(name), hasControl(name):
		return errors.New("contains control characters or invalid UTF-8")
	case strings.HasPrefix(name, "/"), strings.Contains(name, `\`), len(name) > 1 && name[1] == ':':
		return errors.New("must be a relative path with forward slashes")
	case !strings.HasSuffix(name, ".json"):
		return errors.New("must end in .json")
	}
	for _, seg := range strings.Split(name, "/") {
		switch seg {
		case "", ".", "..":
			return errors.New("must not contain empty, \".\" or \"..\" segments")
		}
	}
	return nil
}

// SchemaFiles lists every schema file the manifest names, sorted and
// without duplicates.
func (m *Manifest) SchemaFiles() []string {
	var out []string
	for _, fn := range m.Functions {
		if fn == nil {
			continue
		}
		for _, t := range fn.Triggers {
			switch {
			case t.HTTP != nil:
				out = append(out, t.HTTP.Schema.Files()...)
			case t.Event != nil && t.Event.Schema != "":
				out = append(out, t.Event.Schema)
			case t.Object != nil && t.Object.Schema != "":
				out = append(out, t.Object.Schema)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// SchemaFields lists every schema file the manifest names with the field
// path that names it, in function name and trigger order: what a caller
// that reads the files needs to point at the manifest line of one that is
// missing (Positions.Errorf).
func (m *Manifest) SchemaFields() []SchemaField {
	var out []SchemaField
	add := func(field, file string) {
		if file != "" {
			out = append(out, SchemaField{Field: field, File: file})
		}
	}
	for _, name := range m.FunctionNames() {
		fn := m.Functions[name]
		if fn == nil {
			continue
		}
		for i, t := range fn.Triggers {
			p := fmt.Sprintf("functions.%s.triggers[%d]", name, i)
			switch {
			case t.HTTP != nil && t.HTTP.Schema != nil:
				add(p+".http.schema.body", t.HTTP.Schema.Body)
				add(p+".http.schema.query", t.HTTP.Schema.Query)
				add(p+".http.schema.params", t.HTTP.Schema.Params)
			case t.Event != nil:
				add(p+".event.schema", t.Event.Schema)
			case t.Object != nil:
				add(p+".object.schema", t.Object.Schema)
			}
		}
	}
	return out
}

// SchemaField is one schema file a manifest names and the field naming it.
type SchemaField struct {
	Field string // e.g. "functions.orders.triggers[0].http.schema.body"
	File  string
}

func (v *validator) object(path string, o *ObjectTrigger) {
	// An empty prefix is allowed: it means every object of the app.
	if o.Prefix != "" {
		if err := checkKey(o.Prefix, true); err != nil {
			v.add(path+".prefix", "invalid prefix %q: %s", o.Prefix, err.Error())
		}
	}
	seen := map[string]bool{}
	for i, op := range o.Operations {
		p := fmt.Sprintf("%s.operations[%d]", path, i)
		switch {
		case op != "put" && op != "delete":
			v.add(p, "unsupported operation %q (use put or delete)", op)
		case seen[op]:
			v.add(p, "duplicate operation %q", op)
		}
		seen[op] = true
	}
	v.schemaFile(path+".schema", o.Schema)
}

func (v *validator) schedule(path string, s *ScheduleTrigger) {
	if strings.TrimSpace(s.Cron) == "" {
		v.add(path+".cron", "cron is required")
		return
	}
	switch _, err := ParseCron(s.Cron); {
	case errors.Is(err, errCronTimeZone):
		v.add(path+".cron", "%s", err.Error())
	case err != nil:
		v.add(path+".cron", "invalid cron expression %q: %s", s.Cron, err.Error())
	}
}

func (v *validator) grants(path string, g Grants) {
	v.patterns(path+".kv.read", g.KV.Read, "table", checkTable, checkTable)
	v.patterns(path+".kv.write", g.KV.Write, "table", checkTable, checkTable)
	keyExact := func(s string) error { return checkKey(s, false) }
	keyPrefix := func(s string) error { return checkKey(s, true) }
	v.patterns(path+".objects.read", g.Objects.Read, "object", keyExact, keyPrefix)
	v.patterns(path+".objects.write", g.Objects.Write, "object", keyExact, keyPrefix)
	v.patterns(path+".events.publish", g.Events.Publish, "topic", checkTopic, checkTopicPrefix)
	// The same parser builds the patterns fetch matches against
	// (EgressGrants.Patterns), so what passes here is what is granted.
	for i, h := range g.Egress.Hosts {
		if _, err := ParseHostPattern(h); err != nil {
			v.add(fmt.Sprintf("%s.egress.hosts[%d]", path, i), "%s", err.Error())
		}
	}
	// Secrets are granted by exact name: a pattern would grant secrets
	// set after the deploy that its reviewer never saw.
	seen := map[string]bool{}
	for i, name := range g.Secrets {
		p := fmt.Sprintf("%s.secrets[%d]", path, i)
		switch err := CheckVaultSecretName(name); {
		case err != nil:
			v.add(p, "invalid secret name %q: %s", name, err.Error())
		case seen[name]:
			v.add(p, "duplicate secret grant %q", name)
		}
		seen[name] = true
	}
}

// patterns checks grant patterns with one rule for every kind of resource:
// "*" is everything, "prefix*" is a prefix match, anything else is an exact
// name checked by the resource's own name rule.
func (v *validator) patterns(path string, list []string, kind string, exact, prefix func(string) error) {
	for i, p := range list {
		var err error
		switch base, isPrefix := strings.CutSuffix(p, "*"); {
		case p == "*":
		case strings.Contains(base, "*"):
			err = errors.New("'*' may appear only at the end")
		case isPrefix:
			err = prefix(base)
		default:
			err = exact(p)
		}
		if err != nil {
			v.add(fmt.Sprintf("%s[%d]", path, i), "invalid %s pattern %q: %s", kind, p, err.Error())
		}
	}
}

func checkTable(s string) error {
	if !tableRE.MatchString(s) {
		return errors.New("use 1-64 letters, digits, '_' and '-'")
	}
	return nil
}

func checkTopic(s string) error {
	switch {
	case s == "":
		return errors.New("topic is required")
	case len(s) > maxTopicLen:
		return fmt.Errorf("topic is longer than %d characters", maxTopicLen)
	case !topicRE.MatchString(s):
		return errors.New("use dot-separated words of letters, digits, '_' and '-'")
	}
	return nil
}

// checkTopicPrefix allows "image." (from "image.*") as well as "ima".
func checkTopicPrefix(s string) error {
	if len(s) > maxTopicLen {
		return fmt.Errorf("longer than %d characters", maxTopicLen)
	}
	if !topicRE.MatchString(strings.TrimSuffix(s, ".")) {
		return errors.New("use dot-separated words of letters, digits, '_' and '-'")
	}
	return nil
}

// checkKey checks an object key, or a key prefix, which may end in "/".
// Keys are relative and free of "." and ".." segments so that no key can
// be read as a path that climbs out of the app's objects.
func checkKey(s string, prefix bool) error {
	switch {
	case s == "":
		return errors.New("key is empty")
	case len(s) > maxKeyLen:
		return fmt.Errorf("longer than %d bytes", maxKeyLen)
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	case hasControl(s):
		return errors.New("contains control characters")
	case strings.HasPrefix(s, "/"):
		return errors.New("must not start with \"/\"")
	case strings.ContainsAny(s, `\*`):
		return errors.New(`must not contain "\" or "*"`)
	}
	segs := strings.Split(s, "/")
	if prefix && segs[len(segs)-1] == "" {
		segs = segs[:len(segs)-1] // "images/" is a fine prefix
	}
	for _, seg := range segs {
		switch seg {
		case "":
			return errors.New("has an empty segment (\"//\" or a trailing \"/\")")
		case ".", "..":
			return fmt.Errorf("must not contain a %q segment", seg)
		}
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

func (v *validator) limits(path string, l Limits) {
	if l.Timeout != 0 && (l.Timeout.Std() < minTimeout || l.Timeout.Std() > maxTimeout) {
		v.add(path+".timeout", "timeout must be between 1ms and 5m, got %s", l.Timeout)
	}
	if l.Memory != 0 && (l.Memory < minMemory || l.Memory > maxMemory) {
		v.add(path+".memory", "memory must be between %s and %s, got %s", minMemory, maxMemory, l.Memory)
	}
	if l.Concurrency < 0 || l.Concurrency > maxConcurrency {
		v.add(path+".concurrency", "concurrency must be between 0 and %d, got %d", maxConcurrency, l.Concurrency)
	}
	if l.MaxBody < 0 || l.MaxBody > maxBodySize {
		v.add(path+".max_body", "max_body must be between 0 and %s, got %s", maxBodySize, l.MaxBody)
	}
	if l.MaxResponse < 0 || l.MaxResponse > maxBodySize {
		v.add(path+".max_response", "max_response must be between 0 and %s, got %s", maxBodySize, l.MaxResponse)
	}
	if l.MaxFetches < 0 || l.MaxFetches > maxCapCount {
		v.add(path+".max_fetches", "max_fetches must be between 0 and %d, got %d", maxCapCount, l.MaxFetches)
	}
	if l.MaxPublishes < 0 || l.MaxPublishes > maxCapCount {
		v.add(path+".max_publishes", "max_publishes must be between 0 and %d, got %d", maxCapCount, l.MaxPublishes)
	}
	if l.MaxEgress < 0 || l.MaxEgress > maxEgress {
		v.add(path+".max_egress", "max_egress must be between 0 and %s, got %s", maxEgress, l.MaxEgress)
	}
	if l.MaxEventSize < 0 || l.MaxEventSize > maxEventSize {
		v.add(path+".max_event_size", "max_event_size must be between 0 and %s, got %s", maxEventSize, l.MaxEventSize)
	}
}
