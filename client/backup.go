package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/aegis-platform/aegis/adminapi"
)

// BackupRequest is the body of POST /v1/backup.
type BackupRequest = adminapi.BackupRequest

// BackupResult is what a complete backup holds.
type BackupResult struct {
	Bytes    int64
	Streams  int
	Messages uint64
}

// ErrBackupIncomplete is a backup whose answer ended before the server said
// it was complete: what was written must not be kept.
var ErrBackupIncomplete = errors.New("the server did not complete the backup")

// Backup asks for a backup of the whole platform (step-up) and copies the
// sealed file to w as it arrives. backupKey, when not nil, is a 32-byte key
// that also opens the backup; it travels in the request body, so use TLS
// toward a remote server. started, when not nil, is called with the
// server's estimate of the size before the first byte is written. A nil
// error means every byte arrived and the server said the backup is
// complete; anything else means w holds no usable backup.
func (c *Client) Backup(ctx context.Context, backupKey []byte, w io.Writer, started func(estimate int64)) (BackupResult, error) {
	body, err := json.Marshal(BackupRequest{BackupKey: backupKey})
	if err != nil {
		return BackupResult{}, err
	}
	defer clear(body)
	req, err := c.newRequest(ctx, http.MethodPost, "/v1/backup", bytes.NewReader(body))
	if err != nil {
		return BackupResult{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/octet-stream")
	resp, err := c.do(req, http.StatusOK)
	if err != nil {
		return BackupResult{}, err
	}
	defer resp.Body.Close()
	if started != nil {
		est, _ := strconv.ParseInt(resp.Header.Get(adminapi.BackupEstimateHeader), 10, 64)
		started(est)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return BackupResult{Bytes: n}, fmt.Errorf("backup: %w", err)
	}
	// Trailers are read with the end of the body.
	if st := resp.Trailer.Get(adminapi.BackupStatusTrailer); st != "ok" {
		return BackupResult{Bytes: n}, fmt.Errorf("backup: %w (status %q; the server's log says why)", ErrBackupIncomplete, st)
	}
	out := BackupResult{Bytes: n}
	out.Streams, _ = strconv.Atoi(resp.Trailer.Get(adminapi.BackupStreamsTrailer))
	out.Messages, _ = strconv.ParseUint(resp.Trailer.Get(adminapi.BackupMessagesTrailer), 10, 64)
	return out, nil
}
