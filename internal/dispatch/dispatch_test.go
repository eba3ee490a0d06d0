package dispatch

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/internal/metrics"
	"github.com/aegis-platform/aegis/internal/sandbox"
)

// The reason of a failed invocation's record names the limit it hit before
// the root sentinel it also matches, as the errors arrive wrapped from the
// sandbox.
func TestFailureReason(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("invoke a/f@v1: %w", err) }
	tests := []struct {
		err  error
		want string
	}{
		{wrap(sandbox.ErrTimeout), "timeout"},
		{wrap(sandbox.ErrMemory), "memory limit"},
		{wrap(sandbox.ErrResponseTooLarge), "response too large"},
		{wrap(fmt.Errorf("%w: wasm trap: unreachable", sandbox.ErrTrap)), "trap"},
		{wrap(&sandbox.FunctionError{Message: "could not save"}), "function error"},
		{fmt.Errorf("invoke a/f@v1: %w: all 4 instances busy for 2s", aegis.ErrLimitExceeded), "concurrency limit"},
		{ErrDraining, "unavailable"},
		{errors.New("something else"), "error"},
	}
	for _, tt := range tests {
		if got := FailureReason(tt.err); got != tt.want {
			t.Errorf("FailureReason(%v) = %q, want %q", tt.err, got, tt.want)
		}
		// The metric's outcome is the same reason in the label's words.
		want := strings.ReplaceAll(tt.want, " ", "_")
		if got := Outcome(tt.err).String(); got != want {
			t.Errorf("Outcome(%v) = %q, want %q", tt.err, got, want)
		}
	}
	if Outcome(nil) != metrics.OutcomeSuccess {
		t.Error("a nil error is not a success")
	}
}
