package server

import "net/http"

// hstsValue asks browsers to use HTTPS only for this host for a year. It
// has no includeSubDomains: the server cannot know what else runs on
// sibling names.
const hstsValue = "max-age=31536000"

// gatewayHeaders and adminHeaders are the headers every response of the
// listener carries. The gateway leaves framing and referrer policy to the
// functions, whose pages may need them; the admin API serves JSON only.
func gatewayHeaders(tlsOn bool) http.Header {
	h := http.Header{"X-Content-Type-Options": {"nosniff"}}
	if tlsOn {
		h.Set("Strict-Transport-Security", hstsValue)
	}
	return h
}

func adminHeaders(tlsOn bool) http.Header {
	h := gatewayHeaders(tlsOn)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	return h
}

// withHeaders sets fixed on every response of next, when the header is
// sent, so that a handler (or a function's response headers copied by the
// gateway) cannot weaken them. A handler that writes nothing gets them when
// it returns, before net/http sends its empty response.
func withHeaders(next http.Handler, fixed http.Header) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hw := &headerWriter{ResponseWriter: w, fixed: fixed}
		next.ServeHTTP(hw, r)
		hw.apply()
	})
}

// setHeaders shares the value slices of fixed: handlers replace header
// values (Set) or append to them, and an append to a full slice copies.
func setHeaders(dst, fixed http.Header) {
	for k, v := range fixed {
		dst[k] = v
	}
}

// headerWriter re-applies fixed headers just before the response header is
// sent. It keeps Flush working for streamed responses (the admin log
// stream) and unwraps for http.ResponseController.
type headerWriter struct {
	http.ResponseWriter
	fixed http.Header
	sent  bool
}

func (w *headerWriter) apply() {
	if !w.sent {
		setHeaders(w.ResponseWriter.Header(), w.fixed)
		w.sent = true
	}
}

func (w *headerWriter) WriteHeader(status int) {
	if status >= 200 {
		w.apply()
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *headerWriter) Write(b []byte) (int, error) {
	w.apply()
	return w.ResponseWriter.Write(b)
}

func (w *headerWriter) Flush() {
	w.apply()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *headerWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
