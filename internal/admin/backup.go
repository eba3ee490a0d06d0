package admin

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/connlimit"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// Backuper writes a backup of the whole platform (docs/backup.md): the
// server adapts internal/backup to it. Estimate is what the platform's
// streams hold, for a client's progress; Backup writes the sealed file to
// w, sealed also for backupKey when it is not nil, and counts what it holds.
type Backuper interface {
	Estimate(ctx context.Context) (uint64, error)
	Backup(ctx context.Context, w io.Writer, backupKey []byte) (streams int, messages uint64, err error)
}

// backupKeySize is the size of a backup key (backup.KeySize).
const backupKeySize = 32

// backup streams a sealed backup of the whole platform (POST /v1/backup):
// it holds every secret, wrapped, and every user's data, so it is a
// dangerous change (step-up, always) and recorded like every change. The
// status and counts come as trailers once the body is complete; an answer
// that fails before its first byte is an ordinary error.
func (a *API) backup(w http.ResponseWriter, r *http.Request, reqID string) error {
	var req adminapi.BackupRequest
	if r.ContentLength != 0 { // no body at all asks for a backup without a backup key
		if err := decodeJSONLimit(w, r, &req, maxJSONBody); err != nil {
			return err
		}
	}
	defer clear(req.BackupKey)
	if req.BackupKey != nil && len(req.BackupKey) != backupKeySize {
		return &userError{http.StatusBadRequest, "a backup key is " + strconv.Itoa(backupKeySize) + " bytes"}
	}
	if err := a.stepUp(r, reqID, []string{"take a backup of the whole platform"}); err != nil {
		return err
	}
	withKey := "no"
	if req.BackupKey != nil {
		withKey = "yes"
	}
	noteAudit(r, "backup_key", withKey)
	estimate, err := a.cfg.Backup.Estimate(r.Context())
	if err != nil {
		return err
	}
	// A backup takes as long as the platform's data takes to copy: the
	// caller is an authenticated admin and the answer ends when it does.
	connlimit.Unbounded(w)
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set(adminapi.BackupEstimateHeader, strconv.FormatUint(estimate, 10))
	h.Add("Trailer", adminapi.BackupStatusTrailer)
	h.Add("Trailer", adminapi.BackupStreamsTrailer)
	h.Add("Trailer", adminapi.BackupMessagesTrailer)
	lw := &lazyWriter{w: w}
	start := time.Now()
	streams, messages, err := a.cfg.Backup.Backup(r.Context(), lw, req.BackupKey)
	if err != nil && !lw.started {
		h.Del("Trailer")
		h.Del(adminapi.BackupEstimateHeader)
		return err
	}
	if err != nil {
		// The body is under way: its status cannot change any more. The
		// trailer says it failed, and the file, cut short, is refused by
		// restore in any case.
		a.log.Error("backup failed", logkey.RequestID, reqID, logkey.Error, err)
		noteFailed(r)
		h.Set(adminapi.BackupStatusTrailer, "failed")
		return nil
	}
	noteAudit(r, "streams", strconv.Itoa(streams))
	noteAudit(r, "messages", strconv.FormatUint(messages, 10))
	h.Set(adminapi.BackupStatusTrailer, "ok")
	h.Set(adminapi.BackupStreamsTrailer, strconv.Itoa(streams))
	h.Set(adminapi.BackupMessagesTrailer, strconv.FormatUint(messages, 10))
	a.log.Info("backup written", logkey.RequestID, reqID, logkey.Count, streams, logkey.Duration, time.Since(start))
	return nil
}

// lazyWriter answers 200 with the first byte of the body, so a failure
// before it can still answer with an error status.
type lazyWriter struct {
	w       http.ResponseWriter
	started bool
}

func (l *lazyWriter) Write(b []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(b)
}
