package memkv

import (
	"context"
	"errors"
	"testing"

	"github.com/aegis-platform/aegis/internal/testkit/kvcontract"
)

// memkv keeps the JetStream bucket's contract: the same suite the bucket
// passes in internal/jetstream, skipping only what the package comment
// says memkv does not do.
func TestContract(t *testing.T) {
	if _, ok := any(New()).(kvcontract.TTLStore); ok {
		t.Fatal("memkv has CreateTTL now: run KeyTTL on it instead of skipping it")
	}
	kvcontract.Run(t, kvcontract.Target{
		Open: func(*testing.T) kvcontract.Store { return New() },
		Skip: map[string]string{
			"KeyTTL": "memkv has no TTLs: no package whose unit tests use it declares CreateTTL",
		},
	})
}

// The helpers tests use to look in and break things, which the contract
// does not cover.
func TestHelpers(t *testing.T) {
	ctx := context.Background()
	s := New()
	if _, err := s.Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	s.Set("b", []byte("2"))
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if got := s.Contents(); len(got) != 1 || string(got["b"]) != "2" {
		t.Fatalf("Contents = %q", got)
	}
	if n := s.Writes(); n != 2 {
		t.Fatalf("Writes = %d, want 2 (a delete is not counted)", n)
	}
	if n := s.Gets(); n != 1 {
		t.Fatalf("Gets = %d, want 1", n)
	}

	boom := errors.New("down")
	s.SetFail(boom)
	if _, _, err := s.Get(ctx, "b"); !errors.Is(err, boom) {
		t.Fatalf("Get on a failing store: %v", err)
	}
	if _, err := s.Put(ctx, "b", nil); !errors.Is(err, boom) {
		t.Fatalf("Put on a failing store: %v", err)
	}
	if _, err := s.Keys(ctx, ""); !errors.Is(err, boom) {
		t.Fatalf("Keys on a failing store: %v", err)
	}
	s.SetFail(nil)
	if v, _, err := s.Get(ctx, "b"); err != nil || string(v) != "2" {
		t.Fatalf("Get after SetFail(nil) = %q, %v", v, err)
	}
}
