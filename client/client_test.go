package client

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aegis-platform/aegis"
)

// response builds the answer decodeError sees.
func response(status int, header map[string]string, body string) *http.Response {
	rec := httptest.NewRecorder()
	for k, v := range header {
		rec.Header().Set(k, v)
	}
	rec.WriteHeader(status)
	rec.WriteString(body)
	return rec.Result()
}

func TestDecodeError(t *testing.T) {
	tests := []struct {
		name   string
		resp   *http.Response
		want   APIError
		is     error
		errStr string
	}{
		{
			name:   "API shape",
			resp:   response(409, nil, `{"error":"no previous version to roll back to","request_id":"r1"}`),
			want:   APIError{Status: 409, Message: "no previous version to roll back to", RequestID: "r1"},
			is:     ErrConflict,
			errStr: "no previous version to roll back to (HTTP 409, request id r1)",
		},
		{
			name: "request id from the header when the body has none",
			resp: response(404, map[string]string{"X-Request-Id": "r2"}, `{"error":"app not found"}`),
			want: APIError{Status: 404, Message: "app not found", RequestID: "r2"},
			is:   ErrNotFound,
		},
		{
			name:   "HTML from a proxy becomes the status text",
			resp:   response(502, nil, "<html><body>Bad Gateway</body></html>"),
			want:   APIError{Status: 502, Message: "bad gateway"},
			errStr: "bad gateway (HTTP 502)",
		},
		{
			name: "short plain text is kept",
			resp: response(401, nil, "token expired\n"),
			want: APIError{Status: 401, Message: "token expired"},
			is:   ErrUnauthorized,
		},
		{
			name: "manifest errors are invalid arguments",
			resp: response(400, nil, `{"error":"aegis.yaml:3: functions.x.source: source is required","request_id":"r3"}`),
			want: APIError{Status: 400, Message: "aegis.yaml:3: functions.x.source: source is required", RequestID: "r3"},
			is:   aegis.ErrInvalidArgument,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := decodeError(tt.resp)
			var got *APIError
			if !errors.As(err, &got) || *got != tt.want {
				t.Fatalf("decodeError = %#v, want %#v", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
			if tt.errStr != "" && err.Error() != tt.errStr {
				t.Errorf("Error() = %q, want %q", err.Error(), tt.errStr)
			}
		})
	}
}

func TestAPIErrorIs(t *testing.T) {
	sentinels := []error{ErrUnauthorized, ErrPermissionDenied, ErrNotFound, ErrConflict, ErrInvalidArgument, ErrLimitExceeded, ErrUnavailable}
	for status, want := range map[int]error{
		401: ErrUnauthorized, 403: ErrPermissionDenied, 404: ErrNotFound, 409: ErrConflict,
		400: ErrInvalidArgument, 422: ErrInvalidArgument, 413: ErrLimitExceeded, 429: ErrLimitExceeded,
		503: ErrUnavailable, 500: nil,
	} {
		err := error(&APIError{Status: status})
		for _, s := range sentinels {
			if got := errors.Is(err, s); got != (s == want) {
				t.Errorf("status %d: errors.Is(err, %v) = %v", status, s, got)
			}
		}
	}
}

func TestLogRecordJSON(t *testing.T) {
	line := `{"time":"2025-03-04T05:06:07.5Z","level":"INFO","msg":"invoked","app":"d","function":"save","request_id":"r1","status":200,"trigger":"http"}`
	var r LogRecord
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatal(err)
	}
	want := LogRecord{
		Time: time.Date(2025, 3, 4, 5, 6, 7, 5e8, time.UTC), Level: "INFO", Msg: "invoked",
		App: "d", Function: "save", RequestID: "r1",
	}
	if !r.Time.Equal(want.Time) || r.Level != want.Level || r.Msg != want.Msg || r.App != want.App ||
		r.Function != want.Function || r.RequestID != want.RequestID {
		t.Errorf("got %+v, want %+v", r, want)
	}
	if len(r.Attrs) != 2 || r.Attrs["status"] != 200.0 || r.Attrs["trigger"] != "http" {
		t.Errorf("attrs = %v, want status and trigger only", r.Attrs)
	}

	// Marshalling gives back the same flat record.
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back, orig map[string]any
	_ = json.Unmarshal(b, &back)
	_ = json.Unmarshal([]byte(line), &orig)
	if len(back) != len(orig) {
		t.Fatalf("round trip = %s, want the fields of %s", b, line)
	}
	for k, v := range orig {
		if k != "time" && back[k] != v {
			t.Errorf("round trip %s = %v, want %v", k, back[k], v)
		}
	}

	var none LogRecord
	if err := json.Unmarshal([]byte(`{"time":"2025-03-04T05:06:07Z","level":"WARN","msg":"x"}`), &none); err != nil || none.Attrs != nil {
		t.Errorf("record without extra fields: attrs %v, err %v", none.Attrs, err)
	}
	if err := json.Unmarshal([]byte(`not json`), &none); err == nil {
		t.Error("malformed record decoded")
	}
}

func TestQuery(t *testing.T) {
	if got := query("app", "", "function", ""); got != "" {
		t.Errorf("all empty: %q", got)
	}
	if got := query("app", "a b", "function", "", "follow", "true"); got != "?app=a+b&follow=true" {
		t.Errorf("got %q", got)
	}
}

func TestNewTrimsBaseURL(t *testing.T) {
	c := New("http://127.0.0.1:8081/", "t")
	req, err := c.newRequest(t.Context(), http.MethodGet, "/v1/apps", nil)
	if err != nil {
		t.Fatal(err)
	}
	if req.URL.String() != "http://127.0.0.1:8081/v1/apps" || req.Header.Get("Authorization") != "Bearer t" {
		t.Errorf("request %s with %q", req.URL, req.Header.Get("Authorization"))
	}
}

func TestReadLogStream(t *testing.T) {
	stream := `{"time":"2025-03-04T05:06:07Z","level":"INFO","msg":"one"}

{"time":"2025-03-04T05:06:08Z","level":"INFO","msg":"two"}
`
	var got []string
	err := readLogStream(t.Context(), strings.NewReader(stream), func(r LogRecord) error {
		got = append(got, r.Msg)
		return nil
	})
	if err != nil || strings.Join(got, ",") != "one,two" {
		t.Fatalf("got %v, %v", got, err)
	}

	stop := errors.New("stop")
	err = readLogStream(t.Context(), strings.NewReader(stream), func(LogRecord) error { return stop })
	if err != stop {
		t.Errorf("callback error: got %v", err)
	}

	err = readLogStream(t.Context(), strings.NewReader("{\"msg\":1}\n"), func(LogRecord) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "decode log record") {
		t.Errorf("malformed record: got %v", err)
	}

	long := `{"msg":"` + strings.Repeat("x", maxLogLine) + `"}`
	if err := readLogStream(t.Context(), strings.NewReader(long), func(LogRecord) error { return nil }); err == nil {
		t.Error("an over-long line was accepted")
	}
}
