// Package sqlite is the embedded default store of Arrowgate: one SQLite
// file, written by one gateway process, with no server to run.
//
// Writes go through a single connection whose transactions begin with
// BEGIN IMMEDIATE, so a seat is checked and taken under the database's
// write lock: two sign-ins can never both take the last seat, whether
// they race in this process or in another one opening the same file.
// Reads go through a small pool of read-only connections and, the
// journal being in WAL mode, never wait for a writer.
//
// The store does not implement provisioner.Notifier: gateways sharing
// members across instances should use the PostgreSQL store.
package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/arrowgate/arrowgate/provisioner"
)

// busyTimeout is how long a statement waits for a lock held by another
// connection (another process on the same file) before the store
// reports provisioner.ErrUnavailable.
const busyTimeout = 5 * time.Second

// Store is a provisioner.Store kept in a SQLite database file. It is
// safe for concurrent use. Close it when done.
type Store struct {
	// write has exactly one connection; its transactions take the
	// write lock as they begin.
	write *sql.DB

	// read is a pool of read-only connections.
	read *sql.DB
}

// Open opens the SQLite database at path, creating it and its parent
// directory when missing, and brings its schema up to date. A database
// written by a newer Arrowgate is refused with a *NewerSchemaError.
func Open(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}

	s, err := openPools(abs)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if err := migrate(ctx, s.write); err != nil {
		s.Close()
		return nil, fmt.Errorf("opening %s: %w", path, classify(err))
	}
	return s, nil
}

// openPools opens the writer and the readers. Nothing touches the file
// until the first statement runs.
func openPools(path string) (*Store, error) {
	write, err := sql.Open("sqlite", dsn(path, map[string]string{
		"_journal_mode": "WAL",
		"_synchronous":  "NORMAL",
		"_txlock":       "immediate",
	}))
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	read, err := sql.Open("sqlite", dsn(path, map[string]string{
		"_query_only": "1",
	}))
	if err != nil {
		write.Close()
		return nil, err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	return &Store{write: write, read: read}, nil
}

// dsn builds a file: URI for path with the settings every connection
// shares and the extra ones given.
func dsn(path string, extra map[string]string) string {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_foreign_keys", "1")
	for k, v := range extra {
		q.Set(k, v)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path),
		RawQuery: q.Encode()}
	return u.String()
}

// Close releases the store's connections.
func (s *Store) Close() error {
	return errors.Join(s.read.Close(), s.write.Close())
}

// writeTx runs fn in a transaction that holds the write lock from its
// first statement, and commits if fn returns no error.
func (s *Store) writeTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// fail wraps err with what the store was doing, marking errors caused by
// the database being out of reach with provisioner.ErrUnavailable.
// Outcomes callers act on are returned as they are.
func fail(doing string, err error) error {
	if provisioner.IsOutcome(err) {
		return err
	}
	return fmt.Errorf("%s: %w", doing, classify(err))
}

// classify marks err with provisioner.ErrUnavailable when it means the
// database cannot be reached or locked right now.
func classify(err error) error {
	if errors.Is(err, provisioner.ErrUnavailable) {
		return err
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY,
			sqlite3.SQLITE_PROTOCOL:
			return fmt.Errorf("%w: %w", provisioner.ErrUnavailable, err)
		}
		return err
	}
	if errors.Is(err, sql.ErrConnDone) ||
		err.Error() == "sql: database is closed" {
		return fmt.Errorf("%w: %w", provisioner.ErrUnavailable, err)
	}
	return err
}

// newID returns a random member ID: 16 bytes, hex-encoded.
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("making member id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// nanos is how a time is stored: nanoseconds since 1970 UTC, or NULL
// for the zero time.
func nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// fromNanos turns a stored time back into a time.Time in UTC.
func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// Interface guards
var _ provisioner.Store = (*Store)(nil)
