package adminapi

// BackupRequest is the body of POST /v1/backup. BackupKey, when set (32
// bytes, base64 in JSON), also opens the backup, besides the master key;
// the server uses it for this backup only and keeps nothing of it.
type BackupRequest struct {
	BackupKey []byte `json:"backup_key,omitempty"`
}

// The answer to POST /v1/backup is the backup file itself
// (application/octet-stream), with these fields: an estimate of its size
// before the body, and after it, as HTTP trailers, whether it is complete.
// A client keeps the file only when the status trailer says "ok"; a backup
// cut short is refused by restore anyway.
const (
	// BackupEstimateHeader is the bytes the platform's streams hold: a
	// backup is usually smaller (compressed), never much larger.
	BackupEstimateHeader = "Aegis-Backup-Estimate"
	// BackupStatusTrailer is "ok" when the backup is complete, "failed"
	// when the server could not finish it.
	BackupStatusTrailer = "Aegis-Backup-Status"
	// BackupStreamsTrailer and BackupMessagesTrailer count what it holds.
	BackupStreamsTrailer  = "Aegis-Backup-Streams"
	BackupMessagesTrailer = "Aegis-Backup-Messages"
)
