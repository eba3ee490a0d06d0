package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
)

// Secrets is the vault as the admin API uses it: values go in, names,
// versions and dates come out, never a value.
type Secrets interface {
	Set(ctx context.Context, app, name string, value []byte) (adminapi.Secret, error)
	Rotate(ctx context.Context, app, name string, value []byte, overlap time.Duration) (adminapi.Secret, error)
	List(ctx context.Context, app string) ([]adminapi.Secret, error)
	Remove(ctx context.Context, app, name string) error
}

// DataKeyRotator gives an app's data keyset a new primary key (aegis
// vault rotate-data-key).
type DataKeyRotator func(ctx context.Context, app string) (adminapi.DataKeyRotation, error)

// MasterRotator re-wraps every data key of the vault under a new master
// key (aegis vault rotate-master).
type MasterRotator func(ctx context.Context) (adminapi.MasterRotation, error)

// maxOverlap bounds how long a rotated secret's previous version stays
// readable.
const maxOverlap = 30 * 24 * time.Hour

// secretValue reads a secret's value from the request body: raw bytes, at
// most adminapi.MaxSecretSize, not empty.
func secretValue(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, adminapi.MaxSecretSize))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, &userError{http.StatusRequestEntityTooLarge, "a secret is at most " + strconv.Itoa(adminapi.MaxSecretSize) + " bytes"}
	case err != nil:
		return nil, &userError{http.StatusBadRequest, "the secret's value did not arrive whole"}
	case len(b) == 0:
		return nil, &userError{http.StatusBadRequest, "a secret's value is the request body, and it is empty"}
	}
	return b, nil
}

// secretError is what a vault failure is called to the caller.
func secretError(err error, app, name string) error {
	switch {
	case errors.Is(err, aegis.ErrNotFound):
		return &userError{http.StatusNotFound, "app " + strconv.Quote(app) + " has no secret named " + strconv.Quote(name)}
	case errors.Is(err, aegis.ErrInvalidArgument):
		return &userError{http.StatusBadRequest, "a secret name is 1-64 characters of A-Z a-z 0-9 _ - . and its app a valid app name"}
	}
	return err
}

func (a *API) setSecret(w http.ResponseWriter, r *http.Request, _ string) error {
	app, name := r.PathValue("app"), r.PathValue("name")
	value, err := secretValue(w, r)
	if err != nil {
		return err
	}
	s, err := a.cfg.Secrets.Set(r.Context(), app, name, value)
	clear(value)
	if err != nil {
		return secretError(err, app, name)
	}
	noteAudit(r, "version", strconv.Itoa(s.Version))
	a.log.Info("secret set", logkey.App, app, logkey.SecretName, name, logkey.Version, s.Version)
	writeJSON(w, http.StatusCreated, s)
	return nil
}

func (a *API) rotateSecret(w http.ResponseWriter, r *http.Request, _ string) error {
	app, name := r.PathValue("app"), r.PathValue("name")
	var overlap time.Duration
	if v := r.URL.Query().Get("overlap"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxOverlap {
			return &userError{http.StatusBadRequest, "overlap: a duration from 0 to 720h, such as 24h"}
		}
		overlap = d
	}
	value, err := secretValue(w, r)
	if err != nil {
		return err
	}
	s, err := a.cfg.Secrets.Rotate(r.Context(), app, name, value, overlap)
	clear(value)
	if err != nil {
		return secretError(err, app, name)
	}
	noteAudit(r, "version", strconv.Itoa(s.Version))
	noteAudit(r, "overlap", overlap.String())
	a.log.Info("secret rotated", logkey.App, app, logkey.SecretName, name, logkey.Version, s.Version)
	writeJSON(w, http.StatusCreated, s)
	return nil
}

func (a *API) listSecrets(w http.ResponseWriter, r *http.Request, _ string) error {
	app := r.PathValue("app")
	out, err := a.cfg.Secrets.List(r.Context(), app)
	if err != nil {
		return secretError(err, app, "")
	}
	if out == nil {
		out = []adminapi.Secret{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) removeSecret(w http.ResponseWriter, r *http.Request, _ string) error {
	app, name := r.PathValue("app"), r.PathValue("name")
	if err := a.cfg.Secrets.Remove(r.Context(), app, name); err != nil {
		return secretError(err, app, name)
	}
	a.log.Info("secret removed", logkey.App, app, logkey.SecretName, name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// rotateDataKey makes a new key seal the app's tables and objects. It
// weakens nothing, so it needs no step-up; it is recorded like every change.
func (a *API) rotateDataKey(w http.ResponseWriter, r *http.Request, _ string) error {
	app := r.PathValue("app")
	out, err := a.cfg.RotateDataKey(r.Context(), app)
	switch {
	case errors.Is(err, aegis.ErrNotFound):
		return &userError{http.StatusNotFound, "app " + strconv.Quote(app) + " has stored nothing yet, so it has no data key to rotate"}
	case errors.Is(err, aegis.ErrLimitExceeded):
		return &userError{http.StatusConflict, err.Error()}
	case errors.Is(err, aegis.ErrInvalidArgument):
		return &userError{http.StatusBadRequest, "invalid app name " + strconv.Quote(app)}
	case err != nil:
		return err
	}
	noteAudit(r, "keys", strconv.Itoa(out.Keys))
	a.log.Info("data key rotated", logkey.App, app, logkey.Count, out.Keys)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// rotateMaster gives the vault a new master key while it serves: a
// dangerous change (step-up, always), recorded like every change.
func (a *API) rotateMaster(w http.ResponseWriter, r *http.Request, reqID string) error {
	if err := a.stepUp(r, reqID, []string{"rotate the vault's master key"}); err != nil {
		return err
	}
	out, err := a.cfg.RotateMaster(r.Context())
	if errors.Is(err, aegis.ErrConflict) {
		return &userError{http.StatusConflict, err.Error()}
	}
	if err != nil {
		return err
	}
	noteAudit(r, "rewrapped", strconv.Itoa(out.Rewrapped))
	a.log.Warn("vault master key rotated: keep a copy of the new key file outside this machine",
		logkey.File, out.KeyFile, logkey.Count, out.Rewrapped)
	writeJSON(w, http.StatusOK, out)
	return nil
}
