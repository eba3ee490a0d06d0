package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aegis-platform/aegis"
	"github.com/aegis-platform/aegis/adminapi"
	"github.com/aegis-platform/aegis/internal/jetstream"
	"github.com/aegis-platform/aegis/internal/periodic"
	"github.com/aegis-platform/aegis/internal/telemetry/logkey"
	"github.com/aegis-platform/aegis/internal/vault"
)

// sweepEvery is how often versions past their overlap are destroyed.
const sweepEvery = time.Minute

// openVault loads the master key (never from the data directory) and
// opens the vault on the KV bucket every server of this NATS shares. A
// missing, unreadable or wrong key stops the start with the operator's
// message; there is no plaintext fallback.
func (s *Server) openVault(ctx context.Context) error {
	var (
		kek  vault.KMS
		info vault.MasterKeyInfo
		err  error
	)
	if t := s.cfg.Transit; t != nil {
		if kek, err = vault.NewTransit(*t); err != nil {
			return fmt.Errorf("vault: %w", err)
		}
		info.Source = vault.SourceTransit
		s.log.Info("vault key-encryption key in HashiCorp Vault Transit", logkey.SecretName, t.Key)
	} else if kek, info, err = vault.LoadMasterKey(s.cfg.MasterKey); err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	switch {
	case info.Source == vault.SourceTransit:
	case info.Created:
		s.log.Warn("vault master key created: keep a copy outside this machine; without it the secrets cannot be read",
			logkey.File, info.Path)
	case info.Source == vault.SourceClusterJoin:
		s.log.Info("vault master key from the cluster join file")
	case info.Path != "":
		s.log.Info("vault master key loaded", logkey.File, info.Path)
	default:
		s.log.Info("vault master key loaded from " + vault.MasterKeyEnv)
	}
	bucket, err := s.node.Bucket(ctx, vault.Bucket, jetstream.BucketOptions{History: 1,
		Description: "the vault: secrets sealed under data keys the master key wraps; no plaintext"})
	if err != nil {
		return err
	}
	v, err := vault.Open(ctx, vault.Config{Store: bucket, KMS: kek, Logger: s.log})
	if errors.Is(err, vault.ErrWrongMasterKey) {
		where := info.Path
		switch {
		case info.Source == vault.SourceTransit:
			where = "Transit key " + s.cfg.Transit.Key
		case where == "":
			where = vault.MasterKeyEnv
		}
		return fmt.Errorf("vault (master key from %s): %w", where, err)
	}
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	s.vault, s.masterKey, s.kek = v, info, kek
	s.vaultSweep = periodic.Start(sweepEvery, 30*time.Second, s.sweepVault)
	return nil
}

// sweepVault destroys rotated versions whose overlap has ended, and picks
// up the data keys other servers rotated.
func (s *Server) sweepVault(ctx context.Context) {
	if n, err := s.vault.Sweep(ctx); err != nil {
		s.log.Warn("vault sweep failed", logkey.Error, err)
	} else if n > 0 {
		s.log.Info("rotated secret versions destroyed", logkey.Count, n)
	}
	if _, err := s.vault.RefreshDataKeys(ctx); err != nil {
		s.log.Warn("data key refresh failed", logkey.Error, err)
	}
}

// rotateDataKey gives an app's data keyset a new primary key.
func (s *Server) rotateDataKey(ctx context.Context, app string) (adminapi.DataKeyRotation, error) {
	info, err := s.vault.RotateDataKey(ctx, app)
	if err != nil {
		return adminapi.DataKeyRotation{}, err
	}
	return adminapi.DataKeyRotation{App: info.App, Keys: info.Keys, CreatedAt: info.CreatedAt, RotatedAt: info.RotatedAt}, nil
}

func (s *Server) closeVault() {
	if s.vaultSweep != nil {
		s.vaultSweep.Stop()
	}
}

// adminSecrets is the vault as the admin API sees it.
type adminSecrets struct{ v *vault.Vault }

func (a adminSecrets) Set(ctx context.Context, app, name string, value []byte) (adminapi.Secret, error) {
	info, err := a.v.Set(ctx, app, name, value)
	return secretOf(info), err
}

func (a adminSecrets) Rotate(ctx context.Context, app, name string, value []byte, overlap time.Duration) (adminapi.Secret, error) {
	info, err := a.v.Rotate(ctx, app, name, value, overlap)
	return secretOf(info), err
}

func (a adminSecrets) List(ctx context.Context, app string) ([]adminapi.Secret, error) {
	infos, err := a.v.List(ctx, app)
	if err != nil {
		return nil, err
	}
	out := make([]adminapi.Secret, 0, len(infos))
	for _, i := range infos {
		out = append(out, secretOf(i))
	}
	return out, nil
}

func (a adminSecrets) Remove(ctx context.Context, app, name string) error {
	return a.v.Remove(ctx, app, name)
}

// secretOf is a vault entry's description: the current version's date is
// when it was last set, the oldest readable version's when it was created.
func secretOf(i vault.Info) adminapi.Secret {
	s := adminapi.Secret{App: i.App, Name: i.Name, Version: i.Version}
	for _, v := range i.Versions {
		sv := adminapi.SecretVersion{Version: v.Version, CreatedAt: v.CreatedAt}
		if !v.ExpiresAt.IsZero() {
			t := v.ExpiresAt
			sv.ExpiresAt = &t
		}
		s.Versions = append(s.Versions, sv)
		if s.CreatedAt.IsZero() || v.CreatedAt.Before(s.CreatedAt) {
			s.CreatedAt = v.CreatedAt
		}
		if v.Version == i.Version {
			s.UpdatedAt = v.CreatedAt
		}
	}
	return s
}

// secretExists answers the registry's deploy check: the vault this server
// opened, or the one a test put in Config.Secrets when it can say.
func (s *Server) secretExists(ctx context.Context, app, name string) (bool, error) {
	if e, ok := s.cfg.Secrets.(interface {
		Exists(ctx context.Context, app, name string) (bool, error)
	}); ok {
		return e.Exists(ctx, app, name)
	}
	return true, nil // a reader that cannot tell: the first read says
}

// rotateMaster re-wraps every data key under a new master key written to
// the key file this server read its own from. A key from the environment
// cannot be replaced from here.
func (s *Server) rotateMaster(ctx context.Context) (adminapi.MasterRotation, error) {
	if s.masterKey.Source == vault.SourceTransit {
		return adminapi.MasterRotation{}, fmt.Errorf("the key-encryption key is Transit key %s in HashiCorp Vault: rotate it there (vault write -f %s/keys/%s/rotate); Transit keeps the older key versions for what they wrapped: %w",
			s.cfg.Transit.Key, transitMount(s.cfg.Transit), s.cfg.Transit.Key, aegis.ErrConflict)
	}
	if s.masterKey.Path == "" {
		return adminapi.MasterRotation{}, fmt.Errorf("the master key comes from %s, which the server cannot rewrite: start it with a key file (--master-key-file) to rotate from here: %w",
			vault.MasterKeyEnv, aegis.ErrConflict)
	}
	n, err := vault.RotateMasterFile(ctx, s.vault, s.masterKey.Path)
	if err != nil {
		return adminapi.MasterRotation{Rewrapped: n}, err
	}
	return adminapi.MasterRotation{Rewrapped: n, KeyFile: s.masterKey.Path}, nil
}

func transitMount(t *vault.TransitConfig) string {
	if t.Mount == "" {
		return "transit"
	}
	return t.Mount
}
