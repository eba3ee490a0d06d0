// Command make-thumbnail consumes image.saved: it reads the entry's image,
// scales it to fit 128×128, stores the result as thumbs/<id>.png and
// announces it on thumbnail.created.
//
// Grants: objects read images/*, objects write thumbs/*, publish
// thumbnail.created. It has no access to the entries table: it never needs
// the entry's text, so it cannot read or change it.
package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aegis-platform/aegis/examples/travel-diary/internal/diary"
	aegis "github.com/aegis-platform/aegis/sdk/go"
)

// main never runs: a c-shared WebAssembly module is driven by the host
// through its exports, and the handler is registered in init. Package main
// still needs the function to build.
func main() {}

func init() { aegis.HandleEvent(makeThumbnail) }

// makeThumbnail is safe to run more than once for the same event, as the
// bus redelivers after failures: it overwrites the same thumbnail with the
// same bytes and announces it again, which index-entry also takes in its
// stride.
func makeThumbnail(ev *aegis.Event) error {
	msg, err := diary.ParseImageSaved(ev.Data)
	if err != nil {
		// Retrying cannot mend a malformed payload, but failing sends it,
		// once the retries are spent, to the dead-letter stream, where an
		// operator can see it; quietly dropping it would hide the fault.
		aegis.Log("error", "make-thumbnail: "+err.Error())
		return err
	}

	src, err := aegis.GetObject(msg.Image)
	if errors.Is(err, aegis.ErrNotFound) {
		// The image is gone: save-entry removes it when it fails after
		// storing it. There is nothing left to make a thumbnail of.
		aegis.Log("warn", "make-thumbnail: image "+msg.Image+" no longer exists; skipped")
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", msg.Image, err)
	}

	img, err := diary.Decode(src)
	if err != nil {
		aegis.Log("error", "make-thumbnail: "+msg.Image+": "+err.Error())
		return fmt.Errorf("decode %s: %w", msg.Image, err)
	}
	thumb := diary.Thumbnail(img)
	png, err := diary.EncodePNG(thumb)
	if err != nil {
		return fmt.Errorf("encode thumbnail: %w", err)
	}

	key := diary.ThumbnailKey(msg.ID)
	if err := aegis.PutObject(key, png); err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	event, err := json.Marshal(diary.ThumbnailCreated{ID: msg.ID, Thumbnail: key})
	if err != nil {
		return err
	}
	if err := aegis.Publish(diary.TopicThumbnailCreated, event); err != nil {
		return fmt.Errorf("publish %s: %w", diary.TopicThumbnailCreated, err)
	}

	b := img.Bounds()
	aegis.Log("info", fmt.Sprintf("thumbnail made: id=%s %dx%d -> %dx%d (%d bytes) attempt=%d",
		msg.ID, b.Dx(), b.Dy(), thumb.Bounds().Dx(), thumb.Bounds().Dy(), len(png), ev.Attempt))
	return nil
}
