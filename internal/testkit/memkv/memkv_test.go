package memkv

import (
	"context"
	"errors"
	"testing"

	"github.com/aegis-platform/aegis"
)

// The errors callers test, as the JetStream bucket gives them.
func TestContract(t *testing.T) {
	ctx := context.Background()
	s := New()
	if _, _, err := s.Get(ctx, "a"); !errors.Is(err, aegis.ErrNotFound) {
		t.Fatalf("Get of a missing key: %v", err)
	}
	rev, err := s.Create(ctx, "a", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "a", []byte("2")); !errors.Is(err, aegis.ErrConflict) {
		t.Fatalf("Create over a value: %v", err)
	}
	if _, err := s.Update(ctx, "a", []byte("2"), rev+1); !errors.Is(err, aegis.ErrConflict) {
		t.Fatalf("Update at a stale revision: %v", err)
	}
	if _, err := s.Update(ctx, "a", []byte("2"), rev); err != nil {
		t.Fatalf("Update at the current revision: %v", err)
	}
	if v, _, _ := s.Get(ctx, "a"); string(v) != "2" {
		t.Fatalf("value %q", v)
	}
	if _, err := s.Put(ctx, "ab", nil); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s.Keys(ctx, "a"); len(keys) != 2 || keys[0] != "a" || keys[1] != "ab" {
		t.Fatalf("Keys = %v", keys)
	}
	boom := errors.New("down")
	s.SetFail(boom)
	if _, _, err := s.Get(ctx, "a"); !errors.Is(err, boom) {
		t.Fatalf("failing store: %v", err)
	}
}
