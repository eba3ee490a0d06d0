package server

import (
	"context"
	"fmt"
	"io"

	"github.com/aegis-platform/aegis/internal/backup"
	"github.com/aegis-platform/aegis/internal/vault"
)

// backuper is the server as the admin API's POST /v1/backup sees it.
type backuper struct{ s *Server }

func (b backuper) Estimate(ctx context.Context) (uint64, error) {
	return b.s.node.StoredBytes(ctx)
}

// Backup writes a backup of every stream on this server's NATS and the
// key files of its data directory, sealed for the current master key (and
// the backup key when given).
func (b backuper) Backup(ctx context.Context, w io.Writer, backupKey []byte) (int, uint64, error) {
	s := b.s
	kek, err := s.backupKEK()
	if err != nil {
		return 0, 0, err
	}
	sum, err := backup.Write(ctx, w, s.node, backup.Options{
		WriterOptions: backup.WriterOptions{Master: kek, BackupKey: backupKey, ServerVersion: s.cfg.OTLP.ServiceVersion},
		DataDir:       s.cfg.DataDir,
	})
	return sum.Streams, sum.Messages, err
}

// backupKEK is the key-encryption key as it is now: a key file is read
// again, since `aegis vault rotate-master` replaces it while the server
// serves; a key from the environment or Transit is the one opened at start
// (Transit keeps its own key versions).
func (s *Server) backupKEK() (vault.KMS, error) {
	switch s.masterKey.Source {
	case vault.SourceFile, vault.SourceDefaultFile:
		k, _, err := vault.LoadMasterKey(vault.MasterKeyOptions{File: s.masterKey.Path})
		if err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		return k, nil
	}
	if s.kek == nil {
		return nil, fmt.Errorf("backup: the vault is not open")
	}
	return s.kek, nil
}
