// Command gohold is examples/echo with two additions for measuring memory
// per warm instance: a request may ask the function to hold its instance
// for a while before answering (so that many instances are in use at
// once), and every reply names the instance that served it (so the
// benchmark can count them instead of assuming). Everything else, the SDK
// and the JSON work, is echo's, so an instance weighs what an echo
// instance weighs.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	aegis "github.com/aegis-platform/aegis/sdk/go"
)

func main() {}

// instanceID is drawn once per instance, when the module initializes.
var instanceID string

func init() {
	var b [8]byte
	_, _ = rand.Read(b[:])
	instanceID = hex.EncodeToString(b[:])
	aegis.HandleHTTP(hold)
}

type request struct {
	Message string `json:"message"`
	HoldMS  int    `json:"hold_ms"`
}

type reply struct {
	Message  string `json:"message"`
	Instance string `json:"instance"`
}

func hold(req *aegis.Request) *aegis.Response {
	var in request
	if err := json.Unmarshal(req.Body, &in); err != nil || in.Message == "" {
		return aegis.Error(http.StatusBadRequest, `body must be {"message": "...", "hold_ms": n}`)
	}
	if in.HoldMS > 0 {
		time.Sleep(time.Duration(in.HoldMS) * time.Millisecond)
	}
	return aegis.JSON(http.StatusOK, &reply{Message: in.Message, Instance: instanceID})
}
