package guard

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aegis-platform/aegis"
)

// Signal is a kind of event the guard counts.
type Signal uint8

// The signals (docs/guard.md). Each names what the platform saw, never a
// credential or a value a caller sent.
const (
	// AuthFailure is a request refused 401 by the gateway (Event.Address,
	// Event.Key when the credential named a key, Event.Detail the scheme).
	AuthFailure Signal = iota + 1
	// RouteMiss is a request the gateway answered 404 because no route
	// declares its path (Event.Address).
	RouteMiss
	// PermissionDenied is a host call a function's grants refused, or an
	// egress the filter refused (Event.App, Event.Function, Event.Detail
	// the capability: "kv", "egress", …).
	PermissionDenied
	// SchemaViolation is a request, invocation or event refused by its
	// schema (Event.App, Event.Function; Event.Address, Event.Key when it
	// came through the gateway).
	SchemaViolation
	// RateLimited is a request a rate limit refused (Event.Address,
	// Event.Key when known, Event.App, Event.Function, Event.Route).
	RateLimited
	// BudgetRefused is an invocation a spent budget refused (Event.App,
	// Event.Function, Event.Key when a key's budget).
	BudgetRefused
	// Timeout is an invocation stopped at its timeout (Event.App,
	// Event.Function).
	Timeout
	// Trap is an invocation that trapped or ran out of memory.
	Trap
	// DeadLetter is an event set aside after its last attempt.
	DeadLetter
	// HopLimit is an event or invoke stopped by the hop limit.
	HopLimit
	// Invocation is one invocation run (the spend rate): Event.Value is
	// its GB-seconds.
	Invocation
	// NewEdge is a call-graph edge seen for the first time on any server
	// (Event.App, Event.Function the caller or "" for a trigger,
	// Event.Edge the edge as the call graph names it).
	NewEdge
	signalEnd
)

var signalNames = [...]string{
	AuthFailure:      "auth_failure",
	RouteMiss:        "route_miss",
	PermissionDenied: "permission_denied",
	SchemaViolation:  "schema_violation",
	RateLimited:      "rate_limited",
	BudgetRefused:    "budget_refused",
	Timeout:          "timeout",
	Trap:             "trap",
	DeadLetter:       "dead_letter",
	HopLimit:         "hop_limit",
	Invocation:       "invocation",
	NewEdge:          "new_edge",
}

func (s Signal) String() string {
	if s == 0 || s >= signalEnd {
		return fmt.Sprintf("signal(%d)", s)
	}
	return signalNames[s]
}

// ParseSignal reads a signal's name.
func ParseSignal(name string) (Signal, bool) {
	for s := Signal(1); s < signalEnd; s++ {
		if signalNames[s] == name {
			return s, true
		}
	}
	return 0, false
}

// SignalNames lists every signal's name, in order.
func SignalNames() []string { return slices.Clone(signalNames[1:]) }

// The errors an invocation the guard stops fails with: a quarantined
// function is unavailable (503; its events wait), a throttled one over a
// limit (429; its events wait too).
var (
	ErrQuarantined = fmt.Errorf("%w: function quarantined by the guard", aegis.ErrUnavailable)
	ErrThrottled   = fmt.Errorf("%w: function throttled by the guard", aegis.ErrLimitExceeded)
)

// GroupBy is what a rule counts signals by: the target its actions hit.
type GroupBy string

// The groupings.
const (
	ByAddress  GroupBy = "address"  // the client address (IPv6 by /64)
	ByKey      GroupBy = "key"      // the API key's id
	ByFunction GroupBy = "function" // "app/function"
	ByRoute    GroupBy = "route"    // "app METHOD /path"
	ByEdge     GroupBy = "edge"     // "app: from → to"
)

// GroupBys lists the groupings.
func GroupBys() []GroupBy { return []GroupBy{ByAddress, ByKey, ByFunction, ByRoute, ByEdge} }

// ActionKind is what a rule does when it fires.
type ActionKind string

// The actions. Every action but alert places a block of its kind that
// expires after the action's Duration.
const (
	// ActAlert raises an alert and nothing else. Every firing raises one
	// (one per incident); a rule whose only action is alert does no more.
	ActAlert ActionKind = "alert"
	// ActBlockAddress refuses the address's gateway requests (403).
	ActBlockAddress ActionKind = "block_address"
	// ActSuspendKey refuses the API key's requests (403).
	ActSuspendKey ActionKind = "suspend_key"
	// ActThrottle caps the function's invocations per second on each
	// server to the rate at which the rule fired (429 beyond it).
	ActThrottle ActionKind = "throttle"
	// ActQuarantine stops the function's triggers: its routes answer
	// 503, its events wait in their stream, its schedules skip.
	ActQuarantine ActionKind = "quarantine_function"
	// ActDisableRoute refuses the route's requests (403).
	ActDisableRoute ActionKind = "disable_route"
)

// ActionKinds lists the actions.
func ActionKinds() []ActionKind {
	return []ActionKind{ActAlert, ActBlockAddress, ActSuspendKey, ActThrottle, ActQuarantine, ActDisableRoute}
}

// Target is the grouping an action needs: a block of an address needs
// signals counted by address, and so on. Alert needs none ("").
func (k ActionKind) Target() GroupBy {
	switch k {
	case ActBlockAddress:
		return ByAddress
	case ActSuspendKey:
		return ByKey
	case ActThrottle, ActQuarantine:
		return ByFunction
	case ActDisableRoute:
		return ByRoute
	}
	return ""
}

// Action is one thing a rule does, for Duration (alert: how long one
// incident lasts, the time during which the rule firing again on the same
// target raises no new alert; default DefaultIncident).
type Action struct {
	Kind     ActionKind
	Duration time.Duration
}

// DefaultIncident is how long an alert-only incident stays open.
const DefaultIncident = 15 * time.Minute

// Rule fires when more than Threshold signals of one of its kinds, for
// one target of its grouping, fall within Window; then it does Then.
type Rule struct {
	Name    string
	Signals []Signal
	GroupBy GroupBy
	// Threshold: the rule fires at the Threshold+1st signal within Window.
	Threshold int
	Window    time.Duration
	// Baseline, when above zero, makes the rule compare with the
	// target's own past: it fires only when the signals within Window are
	// also more than Baseline times the average per Window over the
	// target's last BaselineWindows windows (spend spike). Threshold is
	// then the floor below which it never fires.
	Baseline float64
	// GBSeconds counts an Invocation signal's GB-seconds instead of one
	// per invocation (Threshold in GB-seconds).
	GBSeconds bool
	// Learning, for NewEdge: edges first seen within Learning after the
	// caller's app was deployed are learned, not counted.
	Learning time.Duration
	Then     []Action
	// Disabled turns a default rule off (a rule file may say so).
	Disabled bool
}

// BaselineWindows is how many past windows a baseline averages.
const BaselineWindows = 15

// Names of the built-in rules.
const (
	RuleBruteForce          = "brute_force"
	RuleShadowAPI           = "shadow_api"
	RuleKeyAbuse            = "key_abuse"
	RuleCompromisedFunction = "compromised_function"
	RuleNewCallPath         = "new_call_path"
	RuleSpendSpike          = "spend_spike"
)

// DefaultRules are on without configuration (docs/guard.md).
func DefaultRules() []Rule {
	const m = time.Minute
	return []Rule{
		{Name: RuleBruteForce, Signals: []Signal{AuthFailure}, GroupBy: ByAddress, Threshold: 20, Window: m,
			Then: []Action{{ActBlockAddress, 15 * m}}},
		{Name: RuleShadowAPI, Signals: []Signal{RouteMiss}, GroupBy: ByAddress, Threshold: 50, Window: m,
			Then: []Action{{ActBlockAddress, 15 * m}}},
		{Name: RuleKeyAbuse, Signals: []Signal{AuthFailure, RateLimited, BudgetRefused, SchemaViolation}, GroupBy: ByKey,
			Threshold: 100, Window: m, Then: []Action{{ActSuspendKey, 15 * m}}},
		{Name: RuleCompromisedFunction, Signals: []Signal{PermissionDenied}, GroupBy: ByFunction, Threshold: 10, Window: m,
			Then: []Action{{ActAlert, DefaultIncident}}},
		{Name: RuleNewCallPath, Signals: []Signal{NewEdge}, GroupBy: ByEdge, Threshold: 0, Window: m, Learning: 10 * m,
			Then: []Action{{ActAlert, DefaultIncident}}},
		{Name: RuleSpendSpike, Signals: []Signal{Invocation}, GroupBy: ByFunction, Threshold: 600, Window: m, Baseline: 10,
			Then: []Action{{ActAlert, DefaultIncident}, {ActThrottle, 15 * m}}},
	}
}

// Limits of a rule set: what a rule file may ask for.
const (
	MaxRules     = 64
	MaxThreshold = 1_000_000
	MaxWindow    = 24 * time.Hour
	MaxDuration  = 7 * 24 * time.Hour
	MaxLearning  = 7 * 24 * time.Hour
	MaxBaseline  = 1000
)

// ErrInvalidRule is wrapped by every error Validate returns.
var ErrInvalidRule = errors.New("invalid guard rule")

// FieldError names the field of a rule that is wrong, as a rule file
// spells it ("when.threshold", "then[1].duration").
type FieldError struct {
	Rule  string
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("rule %q: %s: %s", e.Rule, e.Field, e.Msg)
}

func (e *FieldError) Unwrap() error { return ErrInvalidRule }

// Validate checks one rule. A disabled rule needs only its name.
func (r Rule) Validate() error {
	bad := func(field, format string, a ...any) error {
		return &FieldError{Rule: r.Name, Field: field, Msg: fmt.Sprintf(format, a...)}
	}
	if !validName(r.Name) {
		return bad("name", "must be 1 to 64 of a-z, 0-9 and _, starting with a letter")
	}
	if r.Disabled {
		return nil
	}
	if len(r.Signals) == 0 {
		return bad("when.signal", "names no signal (one of %s)", strings.Join(SignalNames(), ", "))
	}
	for _, s := range r.Signals {
		if s == 0 || s >= signalEnd {
			return bad("when.signal", "unknown signal %v", s)
		}
	}
	if !slices.Contains(GroupBys(), r.GroupBy) {
		return bad("when.group_by", "%q is not one of address, key, function, route, edge", r.GroupBy)
	}
	if r.Threshold < 0 || r.Threshold > MaxThreshold {
		return bad("when.threshold", "must be 0 to %d", MaxThreshold)
	}
	if r.Window <= 0 || r.Window > MaxWindow {
		return bad("when.window", "must be above 0 and at most %s", MaxWindow)
	}
	if r.Baseline < 0 || r.Baseline > MaxBaseline {
		return bad("when.baseline", "must be 0 (none) to %d", MaxBaseline)
	}
	if r.Baseline > 0 && r.GroupBy != ByFunction {
		return bad("when.baseline", "compares a function with its own past: needs group_by function")
	}
	if r.GBSeconds && !(len(r.Signals) == 1 && r.Signals[0] == Invocation) {
		return bad("when.measure", "gb_seconds is measured on the invocation signal alone")
	}
	if r.Learning < 0 || r.Learning > MaxLearning {
		return bad("when.learning", "must be 0 to %s", MaxLearning)
	}
	if r.Learning > 0 && !slices.Contains(r.Signals, NewEdge) {
		return bad("when.learning", "applies to the new_edge signal only")
	}
	if len(r.Then) == 0 {
		return bad("then", "names no action (one of alert, block_address, suspend_key, throttle, quarantine_function, disable_route)")
	}
	seen := map[ActionKind]bool{}
	for i, a := range r.Then {
		field := fmt.Sprintf("then[%d]", i)
		if !slices.Contains(ActionKinds(), a.Kind) {
			return bad(field+".action", "%q is not one of alert, block_address, suspend_key, throttle, quarantine_function, disable_route", a.Kind)
		}
		if seen[a.Kind] {
			return bad(field+".action", "%s named twice", a.Kind)
		}
		seen[a.Kind] = true
		if t := a.Kind.Target(); t != "" && t != r.GroupBy {
			return bad(field+".action", "%s needs signals grouped by %s, not %s", a.Kind, t, r.GroupBy)
		}
		if a.Duration <= 0 || a.Duration > MaxDuration {
			return bad(field+".duration", "must be above 0 and at most %s", MaxDuration)
		}
	}
	return nil
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// Merge applies a rule file's rules to the defaults: a rule named like a
// default replaces it (Disabled turns it off), any other is added. The
// result is in the defaults' order, then the file's.
func Merge(defaults, file []Rule) []Rule {
	out := slices.Clone(defaults)
	for _, r := range file {
		if i := slices.IndexFunc(out, func(d Rule) bool { return d.Name == r.Name }); i >= 0 {
			out[i] = r
			continue
		}
		out = append(out, r)
	}
	return out
}

// Weakenings lists, in words, how rules make the defaults weaker: a
// default disabled, a threshold raised, a window shortened, a baseline
// raised, a learning window lengthened, a grouping, signal or action
// dropped, an action's duration shortened. Applying such a file needs a
// step-up code.
func Weakenings(defaults, rules []Rule) []string {
	var out []string
	for _, d := range defaults {
		i := slices.IndexFunc(rules, func(r Rule) bool { return r.Name == d.Name })
		if i < 0 {
			continue
		}
		r := rules[i]
		say := func(format string, a ...any) { out = append(out, d.Name+": "+fmt.Sprintf(format, a...)) }
		if r.Disabled {
			say("disabled")
			continue
		}
		if r.Threshold > d.Threshold {
			say("threshold raised from %d to %d", d.Threshold, r.Threshold)
		}
		if r.Window < d.Window {
			say("window shortened from %s to %s", d.Window, r.Window)
		}
		if d.Baseline > 0 && r.Baseline > d.Baseline {
			say("baseline raised from %gx to %gx", d.Baseline, r.Baseline)
		}
		if r.Learning > d.Learning {
			say("learning window lengthened from %s to %s", d.Learning, r.Learning)
		}
		if r.GroupBy != d.GroupBy {
			say("grouped by %s instead of %s", r.GroupBy, d.GroupBy)
		}
		if r.GBSeconds != d.GBSeconds {
			say("measures something else than the default")
		}
		for _, s := range d.Signals {
			if !slices.Contains(r.Signals, s) {
				say("no longer counts %s", s)
			}
		}
		for _, a := range d.Then {
			j := slices.IndexFunc(r.Then, func(b Action) bool { return b.Kind == a.Kind })
			switch {
			case j < 0:
				say("no longer does %s", a.Kind)
			case r.Then[j].Duration < a.Duration:
				say("%s shortened from %s to %s", a.Kind, a.Duration, r.Then[j].Duration)
			}
		}
	}
	return out
}
