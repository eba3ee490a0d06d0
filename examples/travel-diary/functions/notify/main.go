// Command notify consumes thumbnail.created and tells a webhook receiver
// that an entry is complete, authenticating with a bearer token it reads
// from the vault.
//
// Grants: the notify-token secret and egress to the receiver's host, and
// nothing else: it reads no table or object and publishes nothing. The
// token is read per delivery, so `aegis secrets rotate` takes effect at
// once, and the platform scrubs it from anything the function logs.
package main

import (
	"fmt"

	"github.com/aegis-platform/aegis/examples/travel-diary/internal/diary"
	aegis "github.com/aegis-platform/aegis/sdk/go"
)

// main never runs: a c-shared WebAssembly module is driven by the host
// through its exports, and the handler is registered in init. Package main
// still needs the function to build.
func main() {}

func init() { aegis.HandleEvent(notify) }

// notify fails when the receiver does not answer 2xx, so the bus retries
// and, once the retries are spent, keeps the event as a dead letter an
// operator can replay. The receiver sees the entry id as Idempotency-Key
// and can drop the duplicates a retry may cause.
func notify(ev *aegis.Event) error {
	msg, err := diary.ParseThumbnailCreated(ev.Data)
	if err != nil {
		aegis.Log("error", "notify: "+err.Error())
		return err
	}
	token, err := aegis.Secret(diary.NotifyTokenSecret)
	if err != nil {
		return fmt.Errorf("read the webhook token: %w", err)
	}
	body, err := diary.NotificationFor(msg)
	if err != nil {
		return err
	}
	res, err := aegis.Fetch(&aegis.FetchRequest{
		Method: "POST",
		URL:    diary.NotifyURL,
		Headers: map[string]string{
			"Authorization":   "Bearer " + string(token),
			"Content-Type":    "application/json",
			"Idempotency-Key": msg.ID,
		},
		Body: body,
	})
	if err != nil {
		return fmt.Errorf("notify entry %s: %w", msg.ID, err)
	}
	if res.Status < 200 || res.Status > 299 {
		return fmt.Errorf("notify entry %s: the receiver answered %d", msg.ID, res.Status)
	}
	aegis.Log("info", "entry announced: id="+msg.ID)
	return nil
}
