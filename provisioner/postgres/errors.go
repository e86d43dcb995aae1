package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/arrowgate/arrowgate/provisioner"
)

// NewerSchemaError is returned for a database whose schema was written
// by a newer Arrowgate: this one would not know how to read it.
type NewerSchemaError struct {
	Version int // the database's schema version
	Known   int // the newest version this code knows
}

// Error tells the operator what to do.
func (e *NewerSchemaError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this "+
		"arrowgate knows (%d); upgrade arrowgate", e.Version, e.Known)
}

// maxAttempts bounds how often a transaction is run again after a
// serialization failure, a deadlock or a connection that broke before
// anything was sent.
const maxAttempts = 5

// inTx runs fn in a transaction and commits it, running it again from
// the start, a bounded number of times, when PostgreSQL asks for that.
// Outcomes fn returns (ErrOutOfSeats and the like) roll it back and are
// returned as they are.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		err = runTx(ctx, s.pool, fn)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			break
		}
		pause(ctx, time.Duration(attempt)*5*time.Millisecond)
	}
	return err
}

// errBegin marks a transaction that could not even begin: nothing of
// it ran, so it may run again on another connection, for example after
// a database restart broke a pooled connection.
type errBegin struct{ err error }

func (e errBegin) Error() string {
	return "beginning transaction: " + e.err.Error()
}

func (e errBegin) Unwrap() error { return e.err }

// runTx runs fn in one transaction, committing when it returns nil.
func runTx(ctx context.Context, pool *pgxpool.Pool,
	fn func(pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return errBegin{err}
	}
	if err := fn(tx); err != nil {
		// a canceled ctx makes pgx close the connection instead
		tx.Rollback(ctx)
		return err
	}
	return tx.Commit(ctx)
}

// pause sleeps for d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// retryable reports whether running the transaction again may succeed
// where it just failed, with nothing of it committed.
func retryable(err error) bool {
	var begin errBegin
	if errors.As(err, &begin) && outOfReach(err) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", // serialization_failure
			"40P01": // deadlock_detected
			return true
		}
		return false
	}
	return pgconn.SafeToRetry(err)
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
// database cannot be reached or is not serving right now.
func classify(err error) error {
	if err == nil || errors.Is(err, provisioner.ErrUnavailable) {
		return err
	}
	if outOfReach(err) {
		return fmt.Errorf("%w: %w", provisioner.ErrUnavailable, err)
	}
	return err
}

// unavailable marks any error with provisioner.ErrUnavailable: it is
// used while the store is not ready, whatever the reason.
func unavailable(err error) error {
	if errors.Is(err, provisioner.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", provisioner.ErrUnavailable, err)
}

// outOfReach reports whether err comes from the network, a timeout, or
// a server shutting down, starting up or out of connections, rather
// than from the statement itself.
func outOfReach(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return unavailableState(pe.Code)
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne),
		pgconn.Timeout(err),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return true
	}
	return false
}

// unavailableState reports whether a SQLSTATE says the server cannot
// serve now, though the statement was fine.
func unavailableState(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"): // connection exception
		return true
	case strings.HasPrefix(code, "53"): // insufficient resources
		return true
	}
	switch code {
	case "57P01", // admin_shutdown
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now
		"57P05", // idle_session_timeout
		"57014", // query_canceled, by a statement_timeout
		"25006": // read_only_sql_transaction, a standby
		return true
	}
	return false
}
