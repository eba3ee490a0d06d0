// Package diary holds the travel diary's business logic: validating new
// entries, checking and thumbnailing images, and the shapes of the stored
// entry and of the events that chain the functions together.
//
// It deliberately does not import the Aegis SDK. Everything here is plain Go
// that the functions call between their host calls, so it can be unit-tested
// natively with `go test` instead of inside a WebAssembly sandbox.
package diary

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Storage names shared by the functions. They must match the grants in
// aegis.yaml: a function that uses a name its grants do not list is refused
// by the host, so keeping them in one place keeps code and manifest in step.
const (
	// EntriesTable is the key-value table holding one JSON entry per id.
	EntriesTable = "entries"
	// TopicImageSaved is published by save-entry once an entry is stored.
	TopicImageSaved = "image.saved"
	// TopicThumbnailCreated is published by make-thumbnail once the
	// thumbnail object exists.
	TopicThumbnailCreated = "thumbnail.created"
)

// idBytes is the amount of randomness in an entry id: 128 bits makes ids
// unguessable, so knowing one entry's id reveals nothing about another's.
const idBytes = 16

// Entry is the JSON document stored in the entries table and returned by
// GET /entries/{id}. Image and Thumbnail are object keys, not URLs: the
// objects themselves are only reachable through functions granted to read
// them.
type Entry struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	Text      string `json:"text"`
	Image     string `json:"image"`
	CreatedAt string `json:"created_at"`
	Thumbnail string `json:"thumbnail,omitempty"`
}

// NewID returns a fresh entry id: 16 random bytes as 32 lowercase hex digits.
func NewID() string {
	b := make([]byte, idBytes)
	// crypto/rand.Read never returns an error (since Go 1.24 it aborts the
	// program if the system source fails), so there is nothing to handle.
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ValidID reports whether id has the exact shape NewID produces. Handlers
// check it before building any storage key from caller input, so a crafted
// id such as "../x" or "a/b" can never name a different key or object.
// Uppercase hex is refused on purpose: one canonical spelling per entry.
func ValidID(id string) bool {
	if len(id) != 2*idBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ImageKey is the object key of an entry's original image; ext is "png" or
// "jpg" (see Format.Ext).
func ImageKey(id string, f Format) string { return "images/" + id + "." + f.Ext() }

// ThumbnailKey is the object key of an entry's thumbnail, always a PNG.
func ThumbnailKey(id string) string { return "thumbs/" + id + ".png" }

// ImageSaved is the payload of an image.saved event.
type ImageSaved struct {
	ID    string `json:"id"`
	Image string `json:"image"`
}

// ThumbnailCreated is the payload of a thumbnail.created event.
type ThumbnailCreated struct {
	ID        string `json:"id"`
	Thumbnail string `json:"thumbnail"`
}

// ErrBadEvent marks an event payload that can never be processed, however
// often it is retried.
var ErrBadEvent = errors.New("malformed event")

// ParseImageSaved decodes and checks an image.saved payload. The event bus
// only delivers events from publishers granted the topic, but a consumer
// still refuses a payload that names anything other than the image of the
// entry it names: the object key comes from the id, never from free text.
func ParseImageSaved(data []byte) (ImageSaved, error) {
	var ev ImageSaved
	if err := json.Unmarshal(data, &ev); err != nil {
		return ev, fmt.Errorf("%w: image.saved payload is not valid JSON", ErrBadEvent)
	}
	if !ValidID(ev.ID) {
		return ev, fmt.Errorf("%w: image.saved has an invalid id", ErrBadEvent)
	}
	if ev.Image != ImageKey(ev.ID, PNG) && ev.Image != ImageKey(ev.ID, JPEG) {
		return ev, fmt.Errorf("%w: image.saved names an image that does not belong to entry %s", ErrBadEvent, ev.ID)
	}
	return ev, nil
}

// ParseThumbnailCreated decodes and checks a thumbnail.created payload, with
// the same reasoning as ParseImageSaved.
func ParseThumbnailCreated(data []byte) (ThumbnailCreated, error) {
	var ev ThumbnailCreated
	if err := json.Unmarshal(data, &ev); err != nil {
		return ev, fmt.Errorf("%w: thumbnail.created payload is not valid JSON", ErrBadEvent)
	}
	if !ValidID(ev.ID) {
		return ev, fmt.Errorf("%w: thumbnail.created has an invalid id", ErrBadEvent)
	}
	if ev.Thumbnail != ThumbnailKey(ev.ID) {
		return ev, fmt.Errorf("%w: thumbnail.created names a thumbnail that does not belong to entry %s", ErrBadEvent, ev.ID)
	}
	return ev, nil
}

// SetThumbnail returns the stored entry document with its "thumbnail" field
// set to key. It edits the document as a map of raw values rather than
// through Entry so that fields it does not know about (written by a newer
// save-entry, say) survive the rewrite unchanged.
func SetThumbnail(doc []byte, key string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("stored entry is not a JSON object: %w", err)
	}
	if m == nil {
		return nil, errors.New("stored entry is null")
	}
	v, err := json.Marshal(key)
	if err != nil {
		return nil, err
	}
	m["thumbnail"] = v
	return json.Marshal(m)
}
