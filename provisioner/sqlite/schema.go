package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are the schema changes, in order: the database is at
// version N once the first N have run. Append only; never edit one that
// has shipped.
var migrations = []string{
	// 1: members, invitations, sessions, one-time keys and secrets.
	`
CREATE TABLE members (
	id              TEXT PRIMARY KEY,
	org_id          TEXT NOT NULL,
	email           TEXT NOT NULL,
	name            TEXT NOT NULL DEFAULT '',
	source          TEXT NOT NULL,
	created_at      INTEGER NOT NULL,
	last_sign_in_at INTEGER,
	UNIQUE (org_id, email)
);
CREATE INDEX members_by_age ON members (org_id, created_at);

CREATE TABLE invitations (
	org_id     TEXT NOT NULL,
	email      TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (org_id, email)
);

CREATE TABLE sessions (
	id_hash      TEXT PRIMARY KEY,
	member_id    TEXT NOT NULL
	             REFERENCES members (id) ON DELETE CASCADE,
	org_id       TEXT NOT NULL,
	email        TEXT NOT NULL,
	name         TEXT NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	last_seen_at INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_by_member ON sessions (member_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE INDEX sessions_by_last_seen ON sessions (last_seen_at);

CREATE TABLE once_keys (
	key        TEXT PRIMARY KEY,
	expires_at INTEGER NOT NULL
);
CREATE INDEX once_keys_by_expiry ON once_keys (expires_at);

CREATE TABLE secrets (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
);
`,
}

// NewerSchemaError is returned by Open for a database whose schema was
// written by a newer Arrowgate: this one would not know how to read it.
type NewerSchemaError struct {
	Version int // the database's schema version
	Known   int // the newest version this code knows
}

// Error tells the operator what to do.
func (e *NewerSchemaError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this "+
		"arrowgate knows (%d); upgrade arrowgate", e.Version, e.Known)
}

// migrate brings the schema to the newest version, one transaction per
// migration, refusing a database newer than the code.
func migrate(ctx context.Context, db *sql.DB) error {
	v, err := schemaVersion(ctx, db)
	if err != nil {
		return err
	}
	if v > len(migrations) {
		return &NewerSchemaError{Version: v, Known: len(migrations)}
	}
	for next := v + 1; next <= len(migrations); next++ {
		if err := applyMigration(ctx, db, next); err != nil {
			return fmt.Errorf("migrating schema to version %d: %w",
				next, err)
		}
	}
	return nil
}

func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	return v, nil
}

// applyMigration runs migration number n (counting from 1) unless
// another process got there first while this one waited for the lock.
func applyMigration(ctx context.Context, db *sql.DB, n int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()

	v, err := schemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	if v >= n {
		return nil
	}
	if _, err := tx.ExecContext(ctx, migrations[n-1]); err != nil {
		return err
	}
	// PRAGMA takes no parameters; n is an int from this code
	pragma := fmt.Sprintf("PRAGMA user_version = %d", n)
	if _, err := tx.ExecContext(ctx, pragma); err != nil {
		return err
	}
	return tx.Commit()
}
