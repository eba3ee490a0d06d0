// Command index-entry consumes thumbnail.created and records the thumbnail's
// object key in the entry, so GET /entries/{id} shows that it exists.
//
// Grants: kv write entries. It cannot read any object or publish anything:
// it only edits the entry it is told about.
package main

import (
	"errors"
	"fmt"

	"github.com/aegis-platform/aegis/examples/travel-diary/internal/diary"
	aegis "github.com/aegis-platform/aegis/sdk/go"
)

// main never runs: a c-shared WebAssembly module is driven by the host
// through its exports, and the handler is registered in init. Package main
// still needs the function to build.
func main() {}

func init() { aegis.HandleEvent(indexEntry) }

// indexEntry is idempotent: a redelivered event sets the same field to the
// same value again.
func indexEntry(ev *aegis.Event) error {
	msg, err := diary.ParseThumbnailCreated(ev.Data)
	if err != nil {
		// As in make-thumbnail: fail, so the payload ends up in the
		// dead-letter stream for an operator rather than vanishing.
		aegis.Log("error", "index-entry: "+err.Error())
		return err
	}

	entries := aegis.KV(diary.EntriesTable)
	doc, err := entries.Get(msg.ID)
	if errors.Is(err, aegis.ErrNotFound) {
		// save-entry stores the entry before anything is published, so a
		// missing entry was removed since; there is nothing to update.
		aegis.Log("warn", "index-entry: entry "+msg.ID+" no longer exists; skipped")
		return nil
	}
	if err != nil {
		return fmt.Errorf("read entry %s: %w", msg.ID, err)
	}

	updated, err := diary.SetThumbnail(doc, msg.Thumbnail)
	if err != nil {
		aegis.Log("error", "index-entry: entry "+msg.ID+": "+err.Error())
		return err
	}
	if err := entries.Put(msg.ID, updated); err != nil {
		return fmt.Errorf("write entry %s: %w", msg.ID, err)
	}
	aegis.Log("info", "entry indexed: id="+msg.ID)
	return nil
}
