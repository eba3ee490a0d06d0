package auth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
)

func TestIdentityAllows(t *testing.T) {
	tests := []struct {
		scopes  []string
		app, fn string
		want    bool
	}{
		{nil, "diary", "save", true},
		{[]string{"diary"}, "diary", "save", true},
		{[]string{"diary"}, "photos", "save", false},
		{[]string{"diary/save"}, "diary", "save", true},
		{[]string{"diary/save"}, "diary", "list", false},
		{[]string{"diary/save", "photos"}, "photos", "thumb", true},
		{[]string{"diary/save"}, "diary/save", "", false},
		{[]string{"dia"}, "diary", "save", false},
	}
	for _, tt := range tests {
		id := &Identity{KeyName: "k", Scopes: tt.scopes}
		if got := id.Allows(tt.app, tt.fn); got != tt.want {
			t.Errorf("%v.Allows(%q, %q) = %v, want %v", tt.scopes, tt.app, tt.fn, got, tt.want)
		}
	}
}

func TestCreateWithOptions(t *testing.T) {
	ctx := context.Background()
	k, _, clk := newTestKeys(t)
	defer k.Close()
	opts := KeyOptions{Scopes: []string{"diary", "photos/thumb"}, ExpiresIn: time.Hour, Labels: map[string]string{"owner": "mobile"}}
	key, err := k.CreateWithOptions(ctx, "scoped", opts)
	if err != nil {
		t.Fatal(err)
	}
	id, err := k.Verify(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if id.KeyName != "scoped" || !slices.Equal(id.Scopes, opts.Scopes) {
		t.Fatalf("identity %+v", id)
	}
	list, err := k.List(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("List: %v %+v", err, list)
	}
	ki := list[0]
	if !slices.Equal(ki.Scopes, opts.Scopes) || ki.Labels["owner"] != "mobile" ||
		ki.ExpiresAt == nil || !ki.ExpiresAt.Equal(clk.Now().Add(time.Hour)) {
		t.Fatalf("KeyInfo %+v", ki)
	}

	// A key made by Create has no scopes and no expiry.
	plain, err := k.Verify(ctx, mustCreate(t, k, "plain"))
	if err != nil || len(plain.Scopes) != 0 || !plain.Allows("any", "thing") {
		t.Fatalf("plain key: %+v %v", plain, err)
	}
}

func TestCreateWithOptionsValidates(t *testing.T) {
	ctx := context.Background()
	k, s, _ := newTestKeys(t)
	defer k.Close()
	long := strings.Repeat("x", maxLabelValLen+1)
	for _, opts := range []KeyOptions{
		{Scopes: []string{""}},
		{Scopes: []string{"Diary"}},
		{Scopes: []string{"diary/"}},
		{Scopes: []string{"diary/save/x"}},
		{Scopes: []string{"GET /diary"}},
		{Scopes: make([]string, maxScopes+1)},
		{ExpiresIn: -time.Second},
		{Labels: map[string]string{"": "x"}},
		{Labels: map[string]string{"a b": "x"}},
		{Labels: map[string]string{"owner": long}},
	} {
		if _, err := k.CreateWithOptions(ctx, "bad", opts); !errors.Is(err, aegis.ErrInvalidArgument) {
			t.Errorf("%+v: err = %v, want ErrInvalidArgument", opts, err)
		}
	}
	if n := len(s.Contents()); n != 0 {
		t.Fatalf("refused options left %d store entries", n)
	}
}

func TestKeyExpiry(t *testing.T) {
	ctx := context.Background()
	k, _, clk := newTestKeys(t)
	defer k.Close()
	key, err := k.CreateWithOptions(ctx, "short", KeyOptions{ExpiresIn: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verify(ctx, key); err != nil { // and now cached
		t.Fatal(err)
	}
	clk.Advance(time.Minute - time.Nanosecond)
	if _, err := k.Verify(ctx, key); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	clk.Advance(time.Nanosecond)
	id, err := k.Verify(ctx, key)
	wantUnauthenticated(t, id, err, ReasonExpired)

	// Expiry is told only to the key's holder: a wrong secret says so.
	wrong := key[:len(key)-1] + map[bool]string{true: "q", false: "a"}[key[len(key)-1] == 'a']
	id, err = k.Verify(ctx, wrong)
	wantUnauthenticated(t, id, err, ReasonWrongSecret)
}

func TestRotateOverlap(t *testing.T) {
	ctx := context.Background()
	k, _, clk := newTestKeys(t)
	defer k.Close()
	old, err := k.CreateWithOptions(ctx, "ci", KeyOptions{Scopes: []string{"diary"}, ExpiresIn: 10 * time.Hour, Labels: map[string]string{"team": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verify(ctx, old); err != nil { // cached: Rotate must see past it
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	rotatedAt := clk.Now()
	fresh, err := k.Rotate(ctx, "ci", 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if fresh == old || fresh[:len(keyPrefix)+idChars] == old[:len(keyPrefix)+idChars] {
		t.Fatal("rotation kept the secret or the id")
	}
	for _, key := range []string{old, fresh} {
		id, err := k.Verify(ctx, key)
		if err != nil || id.KeyName != "ci" || !slices.Equal(id.Scopes, []string{"diary"}) {
			t.Fatalf("inside the overlap: %+v %v", id, err)
		}
	}
	list, err := k.List(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("List: %v %+v", err, list)
	}
	ki := list[0]
	if ki.Previous == nil || ki.Previous.ExpiresAt == nil || !ki.Previous.ExpiresAt.Equal(rotatedAt.Add(30*time.Minute)) {
		t.Fatalf("previous generation: %+v", ki.Previous)
	}
	// Same scopes and labels, same lifetime from the rotation.
	if ki.Labels["team"] != "a" || ki.ExpiresAt == nil || !ki.ExpiresAt.Equal(rotatedAt.Add(10*time.Hour)) {
		t.Fatalf("new generation: %+v", ki)
	}

	clk.Advance(30 * time.Minute)
	id, err := k.Verify(ctx, old)
	wantUnauthenticated(t, id, err, ReasonExpired)
	if _, err := k.Verify(ctx, fresh); err != nil {
		t.Fatalf("new key after the overlap: %v", err)
	}
	if list, _ := k.List(ctx); len(list) != 1 || list[0].Previous != nil {
		t.Fatalf("expired generation still listed: %+v", list)
	}
}

func TestRotateTwiceKeepsTwoGenerations(t *testing.T) {
	ctx := context.Background()
	k, _, _ := newTestKeys(t)
	defer k.Close()
	first := mustCreate(t, k, "ci")
	second, err := k.Rotate(ctx, "ci", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	third, err := k.Rotate(ctx, "ci", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, err := k.Verify(ctx, first)
	wantUnauthenticated(t, id, err, ReasonExpired)
	for _, key := range []string{second, third} {
		if _, err := k.Verify(ctx, key); err != nil {
			t.Fatal(err)
		}
	}

	// Revoking the key revokes the generation in its overlap too.
	if err := k.Revoke(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{second, third} {
		id, err := k.Verify(ctx, key)
		wantUnauthenticated(t, id, err, ReasonRevoked)
	}
	if _, err := k.Rotate(ctx, "ci", time.Hour); !errors.Is(err, aegis.ErrConflict) {
		t.Fatalf("rotate revoked: %v, want ErrConflict", err)
	}
	if _, err := k.Rotate(ctx, "nope", time.Hour); !errors.Is(err, aegis.ErrNotFound) {
		t.Fatalf("rotate unknown: %v, want ErrNotFound", err)
	}
	if _, err := k.Rotate(ctx, "ci", -time.Second); !errors.Is(err, aegis.ErrInvalidArgument) {
		t.Fatalf("negative overlap: %v, want ErrInvalidArgument", err)
	}
}

func TestRotateWithoutOverlap(t *testing.T) {
	ctx := context.Background()
	k, _, _ := newTestKeys(t)
	defer k.Close()
	old := mustCreate(t, k, "ci")
	if _, err := k.Rotate(ctx, "ci", 0); err != nil {
		t.Fatal(err)
	}
	id, err := k.Verify(ctx, old)
	wantUnauthenticated(t, id, err, ReasonExpired)
}

func TestLastUsed(t *testing.T) {
	ctx := context.Background()
	k, s, clk := newTestKeys(t)
	defer k.Close()
	key := mustCreate(t, k, "app")
	lastUsed := func() *time.Time {
		t.Helper()
		k.bg.Wait()
		list, err := k.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return list[0].LastUsedAt
	}
	if got := lastUsed(); got != nil {
		t.Fatalf("unused key has LastUsedAt %v", got)
	}
	first := clk.Now()
	if _, err := k.Verify(ctx, key); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(); got == nil || !got.Equal(first) {
		t.Fatalf("LastUsedAt = %v, want %v", got, first)
	}

	// Within a minute of the last write, uses are not written again.
	writes := func() int { return int(s.Writes()) }
	before := writes()
	for range 10 {
		clk.Advance(5 * time.Second)
		if _, err := k.Verify(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	if got := lastUsed(); writes() != before || !got.Equal(first) {
		t.Fatalf("%d writes within the minute, LastUsedAt %v", writes()-before, got)
	}
	clk.Advance(10 * time.Second)
	if _, err := k.Verify(ctx, key); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(); got == nil || !got.Equal(clk.Now()) {
		t.Fatalf("after a minute: LastUsedAt = %v, want %v", got, clk.Now())
	}

	// After Close, uses still verify but are not recorded.
	k.Close()
	k.Close()
	clk.Advance(time.Hour)
	if _, err := k.Verify(ctx, key); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(); got.Equal(clk.Now()) {
		t.Fatal("use recorded after Close")
	}
}
