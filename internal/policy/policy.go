// Package policy owns the authorization rules of HTTP routes: CEL
// expressions over the request and the verified identity, compiled once at
// deploy and evaluated by the gateway after authentication. It is the only
// package that imports cel-go.
//
// A rule must never be able to let a request in by failing: an evaluation
// error, a result that is not a boolean, a cancelled context or a rule that
// exceeds its cost budget all deny. It never logs; the gateway logs denials.
package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"

	"github.com/aegis-platform/aegis"
)

// MaxRuleLen caps the source of one rule, as the manifest does.
const MaxRuleLen = 4 << 10

// CostLimit bounds the work one evaluation may do, in CEL cost units (about
// one per operation, more for string and list operations proportional to
// their size). Real rules cost tens; the limit only stops a rule that would
// iterate over large request data, e.g. nested comprehensions over headers.
const CostLimit = 10_000

// ErrDenied is returned by Allow when the rule could not decide: it failed
// to evaluate or produced something other than a boolean. Callers deny.
// The message makes Allow's errors read "rule error: no such key: role".
var ErrDenied = errors.New("rule error")

// Request is what a rule sees of the HTTP request as `request`.
type Request struct {
	Method string
	Path   string
	Params map[string]string
	Query  map[string][]string
	// Headers have lower-case names.
	Headers map[string][]string
}

// Identity is what a rule sees of the verified caller as `identity`.
type Identity struct {
	Scheme  string // "api-key", "jwt" or "hmac"
	Subject string
	Issuer  string         // jwt only
	KeyName string         // api-key only: the key's name
	Claims  map[string]any // jwt only
}

// Rule is a compiled rule, safe for concurrent use.
type Rule struct {
	src string
	prg cel.Program
}

// env is built once: a CEL environment is immutable and safe to share.
var env = mustEnv()

func mustEnv() *cel.Env {
	e, err := cel.NewEnv(
		cel.Variable("request", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("identity", cel.MapType(cel.StringType, cel.DynType)),
		cel.ParserExpressionSizeLimit(MaxRuleLen),
		cel.ParserRecursionLimit(64),
	)
	if err != nil {
		panic("policy: build CEL environment: " + err.Error())
	}
	return e
}

// Compile parses and type-checks a rule. A rule that does not compile or
// whose result is not a boolean is aegis.ErrInvalidArgument, with CEL's
// message (which points at the column of the problem).
func Compile(src string) (*Rule, error) {
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("compile rule: %w: empty rule", aegis.ErrInvalidArgument)
	}
	if len(src) > MaxRuleLen {
		return nil, fmt.Errorf("compile rule: %w: longer than %d bytes", aegis.ErrInvalidArgument, MaxRuleLen)
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, fmt.Errorf("compile rule: %w: %s", aegis.ErrInvalidArgument, issues(iss))
	}
	if !ast.OutputType().IsExactType(types.BoolType) {
		return nil, fmt.Errorf("compile rule: %w: result is %s, not bool (compare it, e.g. == true)", aegis.ErrInvalidArgument, ast.OutputType())
	}
	prg, err := env.Program(ast,
		cel.CostLimit(CostLimit),
		// Comprehensions check the context every 100 iterations, so a
		// cancelled request stops its rule.
		cel.InterruptCheckFrequency(100),
	)
	if err != nil {
		return nil, fmt.Errorf("compile rule: %w: %s", aegis.ErrInvalidArgument, oneLine(err.Error()))
	}
	return &Rule{src: src, prg: prg}, nil
}

// String returns the rule's source.
func (r *Rule) String() string { return r.src }

// Allow evaluates the rule. It returns true only when the rule evaluates to
// true. A rule that fails (a missing key, a type mismatch, the cost limit,
// ctx done) returns false and an error wrapping ErrDenied; the error is for
// the log, never for the client. A nil identity is an empty one.
func (r *Rule) Allow(ctx context.Context, req *Request, id *Identity) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("%w: %w", ErrDenied, err)
	}
	out, _, err := r.prg.ContextEval(ctx, map[string]any{
		"request":  requestValue(req),
		"identity": identityValue(id),
	})
	if err != nil {
		return false, fmt.Errorf("%w: %s", ErrDenied, oneLine(err.Error()))
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("%w: result is %s, not bool", ErrDenied, out.Type())
	}
	return b, nil
}

func requestValue(req *Request) map[string]any {
	if req == nil {
		req = &Request{}
	}
	return map[string]any{
		"method":  req.Method,
		"path":    req.Path,
		"params":  orEmpty(req.Params),
		"query":   orEmpty(req.Query),
		"headers": orEmpty(req.Headers),
	}
}

func identityValue(id *Identity) map[string]any {
	if id == nil {
		id = &Identity{}
	}
	return map[string]any{
		"scheme":   id.Scheme,
		"subject":  id.Subject,
		"issuer":   id.Issuer,
		"key_name": id.KeyName,
		"claims":   orEmpty(id.Claims),
	}
}

// orEmpty gives rules an empty map rather than null, so `"x" in
// request.params` is false rather than an error.
func orEmpty[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

// issues lists compile errors on one line as "line:column: message",
// without the source excerpt CEL draws under each.
func issues(iss *cel.Issues) string {
	var msgs []string
	for _, e := range iss.Errors() {
		msgs = append(msgs, fmt.Sprintf("%d:%d: %s", e.Location.Line(), e.Location.Column()+1, oneLine(e.Message)))
	}
	return strings.Join(msgs, "; ")
}

// oneLine folds CEL's multi-line messages (they draw a caret under the
// column) into one line for logs and deploy errors.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
