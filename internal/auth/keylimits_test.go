package auth

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/manifest"
)

// TestKeyLimits: a key's rate, burst and budget are stored with it, come
// back from Verify, Info and List, and survive a rotation.
func TestKeyLimits(t *testing.T) {
	ctx := context.Background()
	k, _, _ := newTestKeys(t)
	defer k.Close()
	rate := manifest.Rate{Count: 10, Per: time.Second}
	budget := manifest.Quota{Count: 1000, Per: manifest.WindowDay}
	key, err := k.CreateWithOptions(ctx, "limited", KeyOptions{Rate: rate, Burst: 20, Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	id, err := k.Verify(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if id.Rate != rate || id.Burst != 20 || id.Budget != budget {
		t.Fatalf("identity limits %v burst %d budget %v", id.Rate, id.Burst, id.Budget)
	}
	info, err := k.Info(ctx, "limited")
	if err != nil {
		t.Fatal(err)
	}
	if info.Rate != rate || info.Burst != 20 || info.Budget != budget {
		t.Fatalf("info limits %v burst %d budget %v", info.Rate, info.Burst, info.Budget)
	}
	rotated, err := k.Rotate(ctx, "limited", 0)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := k.Verify(ctx, rotated); err != nil || id.Rate != rate || id.Burst != 20 || id.Budget != budget {
		t.Fatalf("rotated key: %+v %v", id, err)
	}
	list, err := k.List(ctx)
	if err != nil || len(list) != 1 || list[0].Rate != rate {
		t.Fatalf("List: %v %+v", err, list)
	}

	// A key without limits has none.
	plain, err := k.Verify(ctx, mustCreate(t, k, "plain"))
	if err != nil || !plain.Rate.IsZero() || plain.Burst != 0 || !plain.Budget.IsZero() {
		t.Fatalf("plain key: %+v %v", plain, err)
	}
	if _, err := k.Info(ctx, "nobody"); !errors.Is(err, aegis.ErrNotFound) {
		t.Fatalf("Info of an unknown name: %v", err)
	}
}

func TestKeyLimitsValidated(t *testing.T) {
	ctx := context.Background()
	k, s, _ := newTestKeys(t)
	defer k.Close()
	for _, opts := range []KeyOptions{
		{Burst: 5}, // a burst needs a rate
		{Rate: manifest.Rate{Count: 1, Per: time.Second}, Burst: -1},
		{Rate: manifest.Rate{Count: 1, Per: time.Second}, Burst: manifest.MaxRateCount + 1},
		{Rate: manifest.Rate{Count: 1, Per: 2 * time.Second}},
		{Rate: manifest.Rate{Count: -1, Per: time.Second}},
		{Budget: manifest.Quota{Count: 1, Per: "week"}},
		{Budget: manifest.Quota{Count: manifest.MaxRateCount + 1, Per: manifest.WindowDay}},
	} {
		if _, err := k.CreateWithOptions(ctx, "bad", opts); !errors.Is(err, aegis.ErrInvalidArgument) {
			t.Errorf("%+v: err = %v, want ErrInvalidArgument", opts, err)
		}
	}
	if n := len(s.Contents()); n != 0 {
		t.Fatalf("refused options left %d store entries", n)
	}
}

// TestKeyDamagedLimitsFailClosed: a record whose rate does not parse is
// not served as a key without a limit.
func TestKeyDamagedLimitsFailClosed(t *testing.T) {
	ctx := context.Background()
	k, s, _ := newTestKeys(t)
	defer k.Close()
	key, err := k.CreateWithOptions(ctx, "damaged", KeyOptions{Rate: manifest.Rate{Count: 1, Per: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := parseKey(key)
	rec, err := k.get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	rec.Rate = "lots"
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, recordPrefix+id, b); err != nil {
		t.Fatal(err)
	}
	k.forget(id)
	if _, err := k.Verify(ctx, key); !errors.Is(err, aegis.ErrUnavailable) {
		t.Fatalf("Verify of a damaged record: %v, want ErrUnavailable", err)
	}
}
