// Command get-entry serves GET /entries/{id}, the stored entry, and
// GET /entries/{id}/thumbnail, the thumbnail image once make-thumbnail has
// made it.
//
// Grants: kv read entries, objects read thumbs/*. It can read neither the
// original images nor write anything.
package main

import (
	"errors"
	"net/http"
	"strings"

	"github.com/aegis-platform/aegis/examples/travel-diary/internal/diary"
	aegis "github.com/aegis-platform/aegis/sdk/go"
)

// main never runs: a c-shared WebAssembly module is driven by the host
// through its exports, and the handler is registered in init. Package main
// still needs the function to build.
func main() {}

func init() { aegis.HandleHTTP(getEntry) }

func getEntry(req *aegis.Request) *aegis.Response {
	id := req.Params["id"]
	thumbnail := strings.HasSuffix(req.Path, "/thumbnail")
	// The id is checked before it goes anywhere near a storage key. A
	// malformed id answers exactly like an unknown one, so probing the
	// route learns nothing about which ids are well formed.
	if !diary.ValidID(id) {
		if thumbnail {
			return aegis.Error(http.StatusNotFound, "thumbnail not found")
		}
		return aegis.Error(http.StatusNotFound, "entry not found")
	}
	if thumbnail {
		return getThumbnail(id)
	}

	doc, err := aegis.KV(diary.EntriesTable).Get(id)
	if errors.Is(err, aegis.ErrNotFound) {
		return aegis.Error(http.StatusNotFound, "entry not found")
	}
	if err != nil {
		return failed("read entry "+id, err)
	}
	// The stored document is written only by save-entry and index-entry,
	// in the shape of diary.Entry, so it is served as it is rather than
	// decoded and encoded again.
	return &aegis.Response{
		Status: http.StatusOK,
		Header: map[string]string{"Content-Type": "application/json"},
		Body:   doc,
	}
}

func getThumbnail(id string) *aegis.Response {
	png, err := aegis.GetObject(diary.ThumbnailKey(id))
	if errors.Is(err, aegis.ErrNotFound) {
		// Not made yet (it follows the entry asynchronously) or no such
		// entry: the same answer for both.
		return aegis.Error(http.StatusNotFound, "thumbnail not found")
	}
	if err != nil {
		return failed("read thumbnail "+id, err)
	}
	return &aegis.Response{
		Status: http.StatusOK,
		Header: map[string]string{
			"Content-Type": "image/png",
			// The bytes are always a PNG this app encoded, but a browser
			// must never second-guess the declared type.
			"X-Content-Type-Options": "nosniff",
		},
		Body: png,
	}
}

// failed logs the host error and answers with a generic message.
func failed(what string, err error) *aegis.Response {
	aegis.Log("error", "get-entry: "+what+": "+err.Error())
	if errors.Is(err, aegis.ErrUnavailable) {
		return aegis.Error(http.StatusServiceUnavailable, "storage is unavailable; try again later")
	}
	return aegis.Error(http.StatusInternalServerError, "could not read the entry")
}
