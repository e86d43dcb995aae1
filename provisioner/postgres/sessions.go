package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/arrowgate/arrowgate/provisioner"
)

// CreateSession stores a new session. A session of a member who does
// not exist (any more) is ErrNotFound; one whose hash is taken is
// ErrExists.
func (s *Store) CreateSession(ctx context.Context,
	sess provisioner.Session) error {
	ctx, cancel, err := s.enter(ctx)
	if err != nil {
		return fail("creating session", err)
	}
	defer cancel()
	_, err = s.pool.Exec(ctx, `
INSERT INTO sessions (id_hash, member_id, org_id, email, name,
	created_at, last_seen_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		sess.IDHash, sess.MemberID, sess.OrgID, sess.Email, sess.Name,
		sess.CreatedAt, sess.LastSeenAt, sess.ExpiresAt)
	if err != nil {
		return fail("creating session", constraintOutcome(err))
	}
	return nil
}

// constraintOutcome turns a broken key into the outcome it means: a
// duplicate is ErrExists, a missing member is ErrNotFound.
func constraintOutcome(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case "23505": // unique_violation
		return provisioner.ErrExists
	case "23503": // foreign_key_violation
		return provisioner.ErrNotFound
	}
	return err
}

// Session returns the session with the given ID hash.
func (s *Store) Session(ctx context.Context, idHash string) (
	provisioner.Session, error) {
	ctx, cancel, err := s.enter(ctx)
	if err != nil {
		return provisioner.Session{}, fail("loading session", err)
	}
	defer cancel()
	sess := provisioner.Session{IDHash: idHash}
	err = s.pool.QueryRow(ctx, `
SELECT member_id, org_id, email, name, created_at, last_seen_at,
	expires_at
FROM sessions WHERE id_hash = $1`, idHash).Scan(&sess.MemberID,
		&sess.OrgID, &sess.Email, &sess.Name, &sess.CreatedAt,
		&sess.LastSeenAt, &sess.ExpiresAt)
	if err != nil {
		return provisioner.Session{}, fail("loading session", notFound(err))
	}
	sess.CreatedAt = sess.CreatedAt.UTC()
	sess.LastSeenAt = sess.LastSeenAt.UTC()
	sess.ExpiresAt = sess.ExpiresAt.UTC()
	return sess, nil
}

// TouchSession moves the session's LastSeenAt forward, never back.
// ErrNotFound if the session is gone.
func (s *Store) TouchSession(ctx context.Context, idHash string,
	at time.Time) error {
	ctx, cancel, err := s.enter(ctx)
	if err != nil {
		return fail("touching session", err)
	}
	defer cancel()
	tag, err := s.pool.Exec(ctx, `
UPDATE sessions SET last_seen_at = greatest(last_seen_at, $2)
WHERE id_hash = $1`, idHash, at)
	if err != nil {
		return fail("touching session", err)
	}
	if tag.RowsAffected() == 0 {
		return provisioner.ErrNotFound
	}
	return nil
}

// DeleteSession ends a session and, if it existed, tells every
// instance listening, in the same statement.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	ctx, cancel, err := s.enter(ctx)
	if err != nil {
		return fail("ending session", err)
	}
	defer cancel()
	payload, err := encodeInvalidation(
		provisioner.Invalidation{SessionHash: idHash})
	if err != nil {
		return fail("ending session", err)
	}
	_, err = s.pool.Exec(ctx, `
WITH ended AS (DELETE FROM sessions WHERE id_hash = $1 RETURNING 1)
SELECT pg_notify($2, $3) FROM ended`, idHash, s.channel, payload)
	if err != nil {
		return fail("ending session", err)
	}
	return nil
}

// DeleteExpired removes sessions past their absolute end or idle since
// idleCutoff or before, and one-time keys past their expiry. Expired
// sessions are not announced: every instance checks expiry itself.
func (s *Store) DeleteExpired(ctx context.Context, now,
	idleCutoff time.Time) (int, error) {
	ctx, cancel, err := s.enter(ctx)
	if err != nil {
		return 0, fail("deleting expired rows", err)
	}
	defer cancel()
	var n int64
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		sessions, err := tx.Exec(ctx, `
DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2`,
			now, idleCutoff)
		if err != nil {
			return err
		}
		keys, err := tx.Exec(ctx,
			"DELETE FROM once_keys WHERE expires_at <= $1", now)
		if err != nil {
			return err
		}
		n = sessions.RowsAffected() + keys.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fail("deleting expired rows", err)
	}
	return int(n), nil
}

// ConsumeOnce records key as used until expires, in one statement: a
// new key is inserted, an expired one is taken over, and a live one is
// left alone and reported as ErrReplayed.
func (s *Store) ConsumeOnce(ctx context.Context, key string,
	expires time.Time) error {
	ctx, cancel, err := s.enter(ctx)
	if err != nil {
		return fail("recording one-time key", err)
	}
	defer cancel()
	tag, err := s.pool.Exec(ctx, `
INSERT INTO once_keys (key, expires_at) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
WHERE once_keys.expires_at <= $3`, key, expires, s.opts.Now())
	if err != nil {
		return fail("recording one-time key", err)
	}
	if tag.RowsAffected() == 0 {
		return provisioner.ErrReplayed
	}
	return nil
}

// Secret returns the value stored under name, storing the result of
// create first when there is none. Racing callers all read back the one
// value that was inserted first.
func (s *Store) Secret(ctx context.Context, name string,
	create func() ([]byte, error)) ([]byte, error) {
	ctx, cancel, err := s.enter(ctx)
	if err != nil {
		return nil, fail("loading secret "+name, err)
	}
	defer cancel()
	v, err := s.secret(ctx, name)
	if !errors.Is(err, provisioner.ErrNotFound) {
		return v, err
	}

	fresh, err := create()
	if err != nil {
		return nil, fmt.Errorf("creating secret %s: %w", name, err)
	}
	_, err = s.pool.Exec(ctx, `
INSERT INTO secrets (name, value) VALUES ($1, $2)
ON CONFLICT (name) DO NOTHING`, name, fresh)
	if err != nil {
		return nil, fail("storing secret "+name, err)
	}
	return s.secret(ctx, name)
}

// secret reads the value under name; none is ErrNotFound.
func (s *Store) secret(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := s.pool.QueryRow(ctx,
		"SELECT value FROM secrets WHERE name = $1", name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, provisioner.ErrNotFound
	}
	if err != nil {
		return nil, fail("loading secret "+name, err)
	}
	return v, nil
}
