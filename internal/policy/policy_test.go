package policy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis"
)

func TestCompileRefuses(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"empty", "  ", "empty rule"},
		{"syntax", `request.params.op ==`, "Syntax error"},
		{"unknown variable", `user.name == "x"`, "undeclared reference"},
		{"not bool", `request.method`, "not bool"},
		{"int result", `1 + 2`, "not bool"},
		{"bad function", `request.method.nope()`, "undeclared reference"},
		{"too long", `request.method == "` + strings.Repeat("a", MaxRuleLen) + `"`, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.src)
			if err == nil {
				t.Fatalf("Compile(%q) succeeded", tc.src)
			}
			if !errors.Is(err, aegis.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidArgument mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("err spans lines: %q", err)
			}
		})
	}
}

func TestAllow(t *testing.T) {
	req := &Request{
		Method: "POST", Path: "/users/u1/orders",
		Params:  map[string]string{"user": "u1"},
		Query:   map[string][]string{"page": {"2"}},
		Headers: map[string][]string{"x-tenant": {"acme"}},
	}
	jwtID := &Identity{Scheme: "jwt", Subject: "u1", Issuer: "https://login.example.com",
		Claims: map[string]any{"role": "admin", "roles": []any{"reader", "writer"}, "level": float64(3)}}
	keyID := &Identity{Scheme: "api-key", Subject: "ci", KeyName: "ci"}
	for _, tc := range []struct {
		name, src string
		id        *Identity
		want      bool
		err       bool
	}{
		{"claim equals", `identity.claims.role == "admin"`, jwtID, true, false},
		{"param is subject", `request.params.user == identity.subject`, jwtID, true, false},
		{"param is not subject", `request.params.user == identity.subject`, keyID, false, false},
		{"list claim", `"writer" in identity.claims.roles`, jwtID, true, false},
		{"number claim", `identity.claims.level >= 3.0`, jwtID, true, false},
		{"key name", `identity.key_name == "ci"`, keyID, true, false},
		{"method and query", `request.method == "POST" && request.query.page[0] == "2"`, keyID, true, false},
		{"header", `request.headers["x-tenant"] == ["acme"]`, keyID, true, false},
		{"has guards a missing claim", `has(identity.claims.role) && identity.claims.role == "admin"`, keyID, false, false},
		{"false", `request.method == "GET"`, keyID, false, false},
		{"missing claim errors", `identity.claims.role == "admin"`, keyID, false, true},
		{"missing param errors", `request.params.nope == "x"`, keyID, false, true},
		{"type mismatch errors", `identity.claims.role > 1`, jwtID, false, true},
		{"division by zero errors", `1 / (size(request.params) - 1) == 1`, keyID, false, true},
		{"nil identity", `identity.subject == ""`, nil, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Compile(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			ok, err := r.Allow(context.Background(), req, tc.id)
			if ok != tc.want || (err != nil) != tc.err {
				t.Fatalf("Allow = %v, %v; want %v, error %v", ok, err, tc.want, tc.err)
			}
			if err != nil && !errors.Is(err, ErrDenied) {
				t.Fatalf("err = %v, want ErrDenied", err)
			}
		})
	}
}

func TestCostLimitDenies(t *testing.T) {
	// Nested comprehensions over a modest header list: cheap to send,
	// quadratic to evaluate.
	vals := make([]string, 300)
	for i := range vals {
		vals[i] = "v"
	}
	req := &Request{Headers: map[string][]string{"x": vals}}
	r, err := Compile(`request.headers.x.all(a, request.headers.x.all(b, a == b))`)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := r.Allow(context.Background(), req, nil)
	if ok || !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "cost") {
		t.Fatalf("Allow = %v, %v; want a denial for cost", ok, err)
	}
}

func TestCancelledContextDenies(t *testing.T) {
	r, err := Compile(`true`)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ok, err := r.Allow(ctx, nil, nil); ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("Allow = %v, %v; want a denial for the cancelled context", ok, err)
	}
}

func TestRuleIsSafeForConcurrentUse(t *testing.T) {
	r, err := Compile(`request.params.user == identity.subject`)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan bool)
	for i := range 8 {
		go func() {
			sub := "a"
			if i%2 == 1 {
				sub = "b"
			}
			for range 200 {
				ok, err := r.Allow(context.Background(), &Request{Params: map[string]string{"user": "a"}}, &Identity{Subject: sub})
				if err != nil || ok != (sub == "a") {
					t.Errorf("Allow = %v, %v for subject %q", ok, err, sub)
					break
				}
			}
			done <- true
		}()
	}
	for range 8 {
		<-done
	}
}
