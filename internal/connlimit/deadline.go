package connlimit

import (
	"net/http"
	"time"
)

// A server's ReadTimeout and WriteTimeout are fixed for every request,
// but a request that invokes a function legitimately takes as long as the
// function's own timeout (up to 5 minutes), which no fixed bound fits:
// short enough to stop a client that reads its response a byte a minute,
// it cuts off a slow function; long enough for every function, it lets
// that client hold a connection for minutes. So the listeners keep short
// fixed timeouts, and a handler about to run a function moves this one
// request's deadlines past the function's timeout with ExtendForRun:
//
//	write deadline = now + the function's timeout + the server's WriteTimeout
//	read deadline  = now + the function's timeout + the server's ReadTimeout
//
// The request's body has been read by then; the read deadline matters
// because net/http keeps reading the connection in the background while
// the handler runs (to notice a client that goes away) and, when that read
// times out, cancels the request's context: with a ReadTimeout of a minute
// a function allowed five would be cancelled after one.

// ExtendForRun moves the deadlines of the connection r came on to allow a
// run of up to run (the function's timeout) and then the server's own
// write (read) timeout for the response. A server without such timeouts,
// or a ResponseWriter that cannot set deadlines (a test recorder), is left
// as it is.
func ExtendForRun(w http.ResponseWriter, r *http.Request, run time.Duration) {
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil {
		return
	}
	rc := http.NewResponseController(w)
	now := time.Now()
	if srv.WriteTimeout > 0 {
		_ = rc.SetWriteDeadline(now.Add(run + srv.WriteTimeout))
	}
	if srv.ReadTimeout > 0 {
		_ = rc.SetReadDeadline(now.Add(run + srv.ReadTimeout))
	}
}

// Unbounded clears the deadlines of the connection r came on, for a
// response that streams for as long as its client wants (aegis logs
// --follow): only an authenticated caller gets one, and it ends when the
// client goes away.
func Unbounded(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	_ = rc.SetReadDeadline(time.Time{})
}
