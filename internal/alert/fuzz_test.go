package alert

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzDecode: a record read back from the stream never panics the reader,
// and one it accepts is an alert Publish would store again.
func FuzzDecode(f *testing.F) {
	good, _ := json.Marshal(sampleAlert("inc-1", time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)))
	f.Add(good)
	f.Add([]byte(`{"id":"x","rule":"brute_force","extra":1}`))
	f.Add([]byte(`{"id":"a\nb"}`))
	f.Add([]byte(`{"id":"x"} {}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decode(b)
		if err != nil {
			return
		}
		if checkID(a.ID) != nil {
			t.Fatalf("accepted an alert with id %q", a.ID)
		}
		again, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decode(again); err != nil && len(again) <= MaxRecord {
			t.Fatalf("an accepted alert does not read back: %v", err)
		}
	})
}
