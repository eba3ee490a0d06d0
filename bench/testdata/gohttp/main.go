// Command gohttp is goecho written the net/http way (aegis.Handle with an
// http.ServeMux): POST /echo gets its body back. Scenario 17 compares the
// two, so the price of the familiar shape is known.
package main

import (
	"io"
	"net/http"

	aegis "github.com/aegis-platform/aegis/sdk/go"
)

func init() {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(b)
	})
	aegis.Handle(mux)
}

func main() {}
