package httperr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
)

type spent struct{ resets time.Time }

func (s spent) Error() string             { return "budget spent" }
func (s spent) Unwrap() error             { return aegis.ErrLimitExceeded }
func (s spent) BudgetScope() string       { return "function" }
func (s spent) BudgetResetsAt() time.Time { return s.resets }

// A spent budget is a 429 that says which budget and when it resets, with
// the usual fields, and Retry-After waits until then.
func TestBudgetAnswer(t *testing.T) {
	resets := time.Now().Add(90 * time.Second).UTC().Truncate(time.Second)
	err := fmt.Errorf("invoke a/f: %w", spent{resets})
	if f := Of(err); f.Status != 429 || f.Message != MsgBudget || f.Kind != aegis.ErrLimitExceeded {
		t.Fatalf("Of = %+v", f)
	}
	rec := httptest.NewRecorder()
	WriteErr(rec, err, "rid")
	var b map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 429 || b["error"] != MsgBudget || b["request_id"] != "rid" || b["budget"] != "function" || b["resets_at"] != resets.Format(time.RFC3339) || len(b) != 4 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	ra, _ := strconv.Atoi(rec.Header().Get("Retry-After"))
	if ra < 85 || ra > 91 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", rec.Header())
	}
	// Other errors keep the two-field body.
	rec = httptest.NewRecorder()
	WriteErr(rec, errors.New("x"), "rid")
	if rec.Body.String() != string(Marshal(MsgInternal, "rid")) {
		t.Fatalf("body %s", rec.Body)
	}
}
