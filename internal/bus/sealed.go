package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/aegis-platform/aegis/internal/jetstream"
)

// DataSealer seals and opens an app's data with its data key, bound to
// where it is kept (vault.SealData and OpenData). OpenData reports a
// ciphertext that does not authenticate with an error wrapping the
// sealer's corruption sentinel, which IsCorrupt recognizes.
type DataSealer interface {
	SealData(ctx context.Context, app string, where, plaintext []byte) ([]byte, error)
	OpenData(ctx context.Context, app string, where, ciphertext []byte) ([]byte, error)
	IsCorrupt(err error) bool
}

// errSealed: a verified event whose payload does not open. The envelope's
// signature covers the sealed bytes, so this is not a forgery in transit
// but a payload sealed for another app or subject, or by a key the vault
// no longer has: retrying cannot help, and the event is dead-lettered.
var errSealed = errors.New("event payload does not open with the app's data key")

// PayloadAD is what a sealed payload is bound to: the subject it was
// published on (app and topic). The event id is left out: a replayed dead
// letter gets a new id and keeps its payload as it is.
func PayloadAD(subject string) []byte { return []byte("event\x00" + subject) }

// seal returns data sealed for storage in the event stream.
func (b *Bus) seal(ctx context.Context, app, subject string, data []byte) ([]byte, error) {
	if b.cfg.Data == nil {
		return data, nil
	}
	sealed, err := b.cfg.Data.SealData(ctx, app, PayloadAD(subject), data)
	if err != nil {
		return nil, fmt.Errorf("seal the payload: %w", err)
	}
	return sealed, nil
}

// open returns the payload of a delivered event in the clear.
func (b *Bus) open(ctx context.Context, app string, m *jetstream.Message) ([]byte, error) {
	if b.cfg.Data == nil {
		return m.Data, nil
	}
	p, err := b.cfg.Data.OpenData(ctx, app, PayloadAD(m.Subject), m.Data)
	if err != nil {
		if b.cfg.Data.IsCorrupt(err) {
			return nil, errSealed
		}
		return nil, err
	}
	return p, nil
}
