//go:build aegis_wazero

package sandbox

import (
	"context"
	"log/slog"
	"testing"

	"github.com/aegis-platform/aegis/internal/testkit/logbuf"
)

// TestPreemptionKeepsResults runs the same guests and requests with the
// countdown and as the modules come, on a runtime stopping guests with
// wazero's own close-on-context-done: every answer and every kind of
// failure must be the same.
func TestPreemptionKeepsResults(t *testing.T) {
	instrumented := newEnv(t)
	plain := &testEnv{host: newRecorder(), logs: logbuf.New()}
	// A cache of its own: wazero's cache key is the module's bytes, not
	// the runtime's settings, and these bytes are compiled here with
	// close-on-context-done's checks.
	e, err := New(context.Background(), Config{Host: plain.host, contextDone: true,
		CacheDir: testCacheDir() + "-context-done", Logger: slog.New(slog.NewTextHandler(plain.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	plain.engine = e
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	compareOutcomes(t, "with the countdown", runDifferential(t, instrumented), "with close-on-context-done", runDifferential(t, plain))
}
