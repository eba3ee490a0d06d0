package diary

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Limits on a new entry. The image limit applies to the decoded bytes; the
// base64 text in the request is a third larger, which the manifest's
// max_body for save-entry leaves room for.
const (
	MaxTitleChars = 200
	MaxTextChars  = 10_000
	MaxImageBytes = 4 << 20 // 4 MiB
)

// ValidationError is a client mistake in a request. Its message names the
// offending field and says what is expected, but never repeats what the
// client sent: request bodies may carry personal data, and echoing input
// back is how reflected-content bugs start.
type ValidationError struct {
	Field string // JSON field name, or "" for the body as a whole
	Msg   string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// NewEntry is a validated POST /entries request.
type NewEntry struct {
	Title  string
	Text   string
	Image  []byte // decoded image bytes
	Format Format
}

// newEntryBody is the wire shape. Image is a []byte so that encoding/json
// decodes the standard base64 straight into bytes, without first holding a
// second multi-megabyte copy of the text as a string.
type newEntryBody struct {
	Title *string `json:"title"`
	Text  *string `json:"text"`
	Image []byte  `json:"image"`
}

// ParseNewEntry decodes and validates the body of POST /entries. Any error
// it returns is a *ValidationError whose message is safe to send back.
func ParseNewEntry(body []byte) (*NewEntry, error) {
	var in newEntryBody
	dec := json.NewDecoder(bytes.NewReader(body))
	// Unknown fields are refused rather than ignored: a typo such as
	// "tittle" should fail loudly, not store an entry without a title.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("", "body must hold exactly one JSON object")
	}

	if in.Title == nil {
		return nil, invalid("title", "is required")
	}
	title := strings.TrimSpace(*in.Title)
	if title == "" {
		return nil, invalid("title", "must not be empty")
	}
	if n := utf8.RuneCountInString(title); n > MaxTitleChars {
		return nil, invalid("title", "must be at most %d characters, got %d", MaxTitleChars, n)
	}

	var text string
	if in.Text != nil {
		text = *in.Text
	}
	if n := utf8.RuneCountInString(text); n > MaxTextChars {
		return nil, invalid("text", "must be at most %d characters, got %d", MaxTextChars, n)
	}

	if len(in.Image) == 0 {
		return nil, invalid("image", "is required: a base64-encoded PNG or JPEG")
	}
	if len(in.Image) > MaxImageBytes {
		return nil, invalid("image", "must be at most %d bytes once decoded, got %d", MaxImageBytes, len(in.Image))
	}
	format, err := CheckImage(in.Image)
	if err != nil {
		return nil, invalid("image", "%v", err)
	}
	return &NewEntry{Title: title, Text: text, Image: in.Image, Format: format}, nil
}

// decodeError turns an encoding/json error into a ValidationError. The
// messages of encoding/json are not passed through as they are, because some
// of them quote the input (an unknown field's name, an unexpected token).
func decodeError(err error) *ValidationError {
	var (
		typeErr *json.UnmarshalTypeError
		b64Err  base64.CorruptInputError
	)
	switch {
	case errors.As(err, &b64Err):
		return invalid("image", "is not valid standard base64 (hint: base64 -w0 FILE)")
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return invalid("", "body must be a JSON object with fields title, text and image")
	case errors.As(err, &typeErr):
		return invalid(typeErr.Field, "must be a string")
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return invalid("", "body has an unknown field; allowed fields are title, text and image")
	default:
		return invalid("", "body must be a JSON object with fields title, text and image")
	}
}
