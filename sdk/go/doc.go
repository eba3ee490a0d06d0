// Package aegis is the SDK for Aegis functions written in Go.
//
// A function is a WebAssembly reactor module built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o fn.wasm .
//
// Because a reactor's main never runs, register the handler in init and
// leave main empty:
//
//	func init() {
//		aegis.HandleHTTP(func(r *aegis.Request) *aegis.Response {
//			return aegis.Text(200, "hello")
//		})
//	}
//
//	func main() {}
//
// Everything a function can reach outside its own memory goes through the
// calls in this package (key-value tables, objects, events, fetch, calls to
// other functions of the app with Invoke, logs),
// and the platform checks each against the grants in aegis.yaml. A call
// that is not granted fails with an error matching ErrPermissionDenied.
//
// The package also builds for other platforms so that tools such as go vet
// and unit tests work on the host; there every platform call fails with
// ErrUnavailable.
package aegis
