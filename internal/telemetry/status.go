package telemetry

import "net/http"

// StatusWriter remembers the status a handler answered, for what is
// recorded about a request once it is served: the gateway's span, the
// admin API's audit record. Unwrap keeps http.ResponseController working
// through it (the deadlines connlimit sets).
type StatusWriter struct {
	http.ResponseWriter
	status int
}

// NewStatusWriter wraps w.
func NewStatusWriter(w http.ResponseWriter) *StatusWriter { return &StatusWriter{ResponseWriter: w} }

// WriteHeader records the first status written.
func (s *StatusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Write records 200 when nothing was written before.
func (s *StatusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap is the wrapped writer.
func (s *StatusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Status is the status answered so far: 0 when nothing was written.
func (s *StatusWriter) Status() int { return s.status }
