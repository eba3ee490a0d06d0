package diary

import "encoding/json"

// NotifyURL is where notify posts: a webhook receiver the operator runs.
// Its host is the only one notify's egress grant names (aegis.yaml);
// pointing notify elsewhere means changing both, so the grant always says
// exactly where the diary's data may go.
const NotifyURL = "https://hooks.travel-diary.example/diary"

// NotifyTokenSecret is the vault secret holding the bearer token the
// receiver expects. It is set with `aegis secrets set travel-diary
// notify-token` and never appears in the manifest, the code or a log.
const NotifyTokenSecret = "notify-token"

// Notification is the body notify posts for a new thumbnail.
type Notification struct {
	Event     string `json:"event"`
	ID        string `json:"id"`
	Thumbnail string `json:"thumbnail"`
}

// NotificationFor returns the webhook body announcing ev.
func NotificationFor(ev ThumbnailCreated) ([]byte, error) {
	return json.Marshal(Notification{Event: "thumbnail.created", ID: ev.ID, Thumbnail: ev.Thumbnail})
}
