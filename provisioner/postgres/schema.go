package postgres

import (
	"context"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
)

// migrations are the schema changes, in order: the database is at
// version N once the first N have run. The numbers and tables match the
// SQLite store's; times are timestamptz here, with microseconds. Append
// only; never edit one that has shipped.
var migrations = []string{
	// 1: members, invitations, sessions, one-time keys and secrets,
	// and one row per organization to lock while a seat is taken.
	`
CREATE TABLE orgs (
	id TEXT PRIMARY KEY
);

CREATE TABLE members (
	id              TEXT PRIMARY KEY,
	org_id          TEXT NOT NULL,
	email           TEXT NOT NULL,
	name            TEXT NOT NULL DEFAULT '',
	source          TEXT NOT NULL,
	created_at      TIMESTAMPTZ NOT NULL,
	last_sign_in_at TIMESTAMPTZ,
	UNIQUE (org_id, email)
);
CREATE INDEX members_by_age ON members (org_id, created_at);

CREATE TABLE invitations (
	org_id     TEXT NOT NULL,
	email      TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (org_id, email)
);

CREATE TABLE sessions (
	id_hash      TEXT PRIMARY KEY,
	member_id    TEXT NOT NULL
	             REFERENCES members (id) ON DELETE CASCADE,
	org_id       TEXT NOT NULL,
	email        TEXT NOT NULL,
	name         TEXT NOT NULL DEFAULT '',
	created_at   TIMESTAMPTZ NOT NULL,
	last_seen_at TIMESTAMPTZ NOT NULL,
	expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_by_member ON sessions (member_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE INDEX sessions_by_last_seen ON sessions (last_seen_at);

CREATE TABLE once_keys (
	key        TEXT PRIMARY KEY,
	expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX once_keys_by_expiry ON once_keys (expires_at);

CREATE TABLE secrets (
	name  TEXT PRIMARY KEY,
	value BYTEA NOT NULL
);
`,
}

// versionTable records one row per migration applied.
const versionTable = `
CREATE TABLE IF NOT EXISTS schema_version (
	version    INTEGER PRIMARY KEY,
	applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`

// migrate brings the schema to the newest version in one transaction,
// holding an advisory lock so that instances starting together take
// turns: the first migrates, the others find the work done. A schema
// newer than the code is refused with a *NewerSchemaError.
func (s *Store) migrate(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)",
			s.lockKey)
		if err != nil {
			return fmt.Errorf("taking the migration lock: %w", err)
		}
		if err := s.createSchema(ctx, tx); err != nil {
			return err
		}
		v, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if v > len(migrations) {
			return &NewerSchemaError{Version: v, Known: len(migrations)}
		}
		for next := v + 1; next <= len(migrations); next++ {
			if err := applyMigration(ctx, tx, next); err != nil {
				return fmt.Errorf("migrating schema to version %d: %w",
					next, err)
			}
		}
		return nil
	})
	return classify(err)
}

// createSchema creates the store's schema, if one is set, and the
// version table.
func (s *Store) createSchema(ctx context.Context, tx pgx.Tx) error {
	if s.opts.Schema != "" {
		name := pgx.Identifier{s.opts.Schema}.Sanitize()
		_, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+name)
		if err != nil {
			return fmt.Errorf("creating schema %s: %w", name, err)
		}
	}
	if _, err := tx.Exec(ctx, versionTable); err != nil {
		return fmt.Errorf("creating the schema version table: %w", err)
	}
	return nil
}

func schemaVersion(ctx context.Context, tx pgx.Tx) (int, error) {
	var v int
	err := tx.QueryRow(ctx,
		"SELECT coalesce(max(version), 0) FROM schema_version").Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	return v, nil
}

// applyMigration runs migration number n (counting from 1) and records
// it.
func applyMigration(ctx context.Context, tx pgx.Tx, n int) error {
	if _, err := tx.Exec(ctx, migrations[n-1]); err != nil {
		return err
	}
	_, err := tx.Exec(ctx,
		"INSERT INTO schema_version (version) VALUES ($1)", n)
	return err
}

// migrationLockKey is the advisory lock key of a schema's migrations:
// instances of one schema share it, other schemas do not wait on it.
func migrationLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("arrowgate schema migration\x00" + schema))
	return int64(h.Sum64())
}

// channelName is the LISTEN/NOTIFY channel of a schema, so that
// deployments sharing a database do not hear each other. PostgreSQL
// cuts names at 63 bytes; a long schema name is hashed instead.
func channelName(schema string) string {
	const base = "arrowgate_invalidate"
	if schema == "" {
		return base
	}
	if name := base + "_" + schema; len(name) <= 63 {
		return name
	}
	h := fnv.New64a()
	h.Write([]byte(schema))
	return fmt.Sprintf("%s_%016x", base, h.Sum64())
}
