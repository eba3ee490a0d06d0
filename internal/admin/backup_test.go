package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aegis-platform/aegis/adminapi"
)

// failingBackup writes written bytes of a backup, then fails.
type failingBackup struct{ written string }

func (f failingBackup) Estimate(context.Context) (uint64, error) { return 1 << 20, nil }

func (f failingBackup) Backup(_ context.Context, w io.Writer, _ []byte) (int, uint64, error) {
	if f.written != "" {
		if _, err := io.WriteString(w, f.written); err != nil {
			return 0, 0, err
		}
	}
	return 0, 0, errors.New("stream AEGIS_LOGS could not be read")
}

// TestBackupCutShort: a backup that fails before its first byte answers
// an error; one that fails after it cannot change its status any more, so
// its trailer says failed, and the audit log records it as failed either
// way.
func TestBackupCutShort(t *testing.T) {
	for _, c := range []struct {
		name, written string
	}{{"before the first byte", ""}, {"half way", "AEGISBAK partial"}} {
		t.Run(c.name, func(t *testing.T) {
			ta, _ := newAuditedAPI(t, func(cfg *Config) { cfg.Backup = failingBackup{c.written} })
			req, _ := http.NewRequest(http.MethodPost, ta.srv.URL+"/v1/backup", nil)
			req.Header.Set("Authorization", "Bearer "+rootToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			status := resp.Trailer.Get(adminapi.BackupStatusTrailer)
			if c.written == "" {
				if resp.StatusCode < 500 || status != "" {
					t.Fatalf("a backup failing at once: %d, trailer %q, %s", resp.StatusCode, status, body)
				}
			} else if resp.StatusCode != http.StatusOK || string(body) != c.written || status != "failed" {
				t.Fatalf("a backup cut short: %d, trailer %q, body %q", resp.StatusCode, status, body)
			}
			var outcomes []string
			for _, r := range auditRecords(t, ta, rootToken) {
				if r["action"] == "backup" {
					outcomes = append(outcomes, r["outcome"].(string))
				}
			}
			if len(outcomes) != 2 || outcomes[0] != "intent" || outcomes[1] == "ok" {
				t.Fatalf("backup records %v, want its intent and a failure", outcomes)
			}
			if strings.Contains(ta.logs.String(), "backup written") {
				t.Error("a failed backup was logged as written")
			}
		})
	}
}
