// Command save-entry handles POST /entries: it validates a new diary entry,
// stores its image and its text, and announces the image on image.saved so
// that make-thumbnail can pick it up. It answers as soon as the entry is
// stored; the thumbnail follows asynchronously.
//
// Grants: objects write images/*, kv write entries, publish image.saved.
package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/aegis-platform/aegis/examples/travel-diary/internal/diary"
	aegis "github.com/aegis-platform/aegis/sdk/go"
)

// main never runs: a c-shared WebAssembly module is driven by the host
// through its exports, and the handler is registered in init. Package main
// still needs the function to build.
func main() {}

func init() { aegis.HandleHTTP(saveEntry) }

func saveEntry(req *aegis.Request) *aegis.Response {
	in, err := diary.ParseNewEntry(req.Body)
	if err != nil {
		// A *diary.ValidationError: names the field, never echoes input.
		return aegis.Error(http.StatusBadRequest, err.Error())
	}

	id := diary.NewID()
	entry := diary.Entry{
		ID:        id,
		Title:     in.Title,
		Text:      in.Text,
		Image:     diary.ImageKey(id, in.Format),
		CreatedAt: time.Now().UTC().Format(time.RFC3339),
	}
	doc, err := json.Marshal(entry)
	if err != nil {
		return failed("encode entry", err)
	}
	event, err := json.Marshal(diary.ImageSaved{ID: id, Image: entry.Image})
	if err != nil {
		return failed("encode event", err)
	}

	// The order is deliberate: image, then entry, then event. Whoever
	// consumes image.saved can rely on both the image and the entry
	// already existing, and an entry never points at a missing image.
	// If a later step fails, the earlier ones are undone, so a request
	// the client saw fail leaves no orphaned image or entry behind.
	if err := aegis.PutObject(entry.Image, in.Image); err != nil {
		return failed("store image", err)
	}
	entries := aegis.KV(diary.EntriesTable)
	if err := entries.Put(id, doc); err != nil {
		undo("delete image", aegis.DeleteObject(entry.Image))
		return failed("store entry", err)
	}
	if err := aegis.Publish(diary.TopicImageSaved, event); err != nil {
		undo("delete entry", entries.Delete(id))
		undo("delete image", aegis.DeleteObject(entry.Image))
		return failed("publish "+diary.TopicImageSaved, err)
	}

	// Only the id is logged: titles and texts are the user's own words
	// and have no place in operational logs.
	aegis.Log("info", "entry saved: id="+id+" format="+in.Format.Ext())
	resp := aegis.JSON(http.StatusCreated, struct {
		ID string `json:"id"`
	}{id})
	if resp.Header == nil {
		resp.Header = map[string]string{}
	}
	resp.Header["Location"] = "/entries/" + id
	return resp
}

// failed logs what went wrong in full and answers with a generic message:
// host errors can name tables, keys and limits, which callers have no need
// to see. An unavailable store is worth retrying, hence 503.
func failed(step string, err error) *aegis.Response {
	aegis.Log("error", "save-entry: "+step+": "+err.Error())
	if errors.Is(err, aegis.ErrUnavailable) {
		return aegis.Error(http.StatusServiceUnavailable, "storage is unavailable; try again later")
	}
	return aegis.Error(http.StatusInternalServerError, "could not save the entry")
}

// undo logs a failed clean-up step; the request has already failed, and the
// original error is the one worth reporting to the client.
func undo(step string, err error) {
	if err != nil && !errors.Is(err, aegis.ErrNotFound) {
		aegis.Log("warn", "save-entry: clean-up: "+step+": "+err.Error())
	}
}
