package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/aegis-platform/aegis/adminapi"
)

type (
	// AuditRecord is one record of the audit log.
	AuditRecord = adminapi.AuditRecord
	// AuditVerification says whether the audit chain verifies, and if
	// not which record is the first bad one.
	AuditVerification = adminapi.AuditVerification
	// AuditProblem names the first bad record of the chain.
	AuditProblem = adminapi.AuditProblem
)

// AuditQuery narrows Audit: records written within Since (zero: all) and
// at most Limit of the newest (zero: the server's default, 100).
type AuditQuery struct {
	Since time.Duration
	Limit int
}

// Audit lists audit records, oldest first (GET /v1/audit).
func (c *Client) Audit(ctx context.Context, q AuditQuery) ([]AuditRecord, error) {
	var since, limit string
	if q.Since > 0 {
		since = q.Since.String()
	}
	if q.Limit > 0 {
		limit = strconv.Itoa(q.Limit)
	}
	var out []AuditRecord
	return out, c.call(ctx, http.MethodGet, "/v1/audit"+query("since", since, "limit", limit), nil, &out, http.StatusOK)
}

// AuditVerify has the server verify the whole audit chain (GET
// /v1/audit/verify). A chain that does not verify is not an error: the
// answer says so and names the first bad record.
func (c *Client) AuditVerify(ctx context.Context) (*AuditVerification, error) {
	var out AuditVerification
	return &out, c.call(ctx, http.MethodGet, "/v1/audit/verify", nil, &out, http.StatusOK)
}

// AuditExport copies the whole chain, as NDJSON with the public key first,
// to w (GET /v1/audit/export).
func (c *Client) AuditExport(ctx context.Context, w io.Writer) error {
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/audit/export", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := c.do(req, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("read audit export: %w", err)
	}
	return nil
}
