package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/arrowgate/arrowgate/provisioner"
)

// CreateSession stores a new session, or returns ErrNotFound if its
// member no longer exists.
func (s *Store) CreateSession(ctx context.Context,
	sess provisioner.Session) error {
	res, err := s.write.ExecContext(ctx, `INSERT INTO sessions
		(id_hash, member_id, org_id, email, name,
		 created_at, last_seen_at, expires_at)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?
		WHERE EXISTS (SELECT 1 FROM members WHERE id = ?)`,
		sess.IDHash, sess.MemberID, sess.OrgID, sess.Email, sess.Name,
		nanos(sess.CreatedAt), nanos(sess.LastSeenAt),
		nanos(sess.ExpiresAt), sess.MemberID)
	if err != nil {
		return fail("creating session", err)
	}
	return oneRow("creating session", res)
}

// Session returns the session with the given ID hash.
func (s *Store) Session(ctx context.Context,
	idHash string) (provisioner.Session, error) {
	sess := provisioner.Session{IDHash: idHash}
	var created, seen, expires sql.NullInt64
	err := s.read.QueryRowContext(ctx, `SELECT member_id, org_id, email,
		name, created_at, last_seen_at, expires_at
		FROM sessions WHERE id_hash = ?`, idHash).Scan(&sess.MemberID,
		&sess.OrgID, &sess.Email, &sess.Name, &created, &seen, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return provisioner.Session{}, provisioner.ErrNotFound
	}
	if err != nil {
		return provisioner.Session{}, fail("loading session", err)
	}
	sess.CreatedAt = fromNanos(created)
	sess.LastSeenAt = fromNanos(seen)
	sess.ExpiresAt = fromNanos(expires)
	return sess, nil
}

// TouchSession moves the session's LastSeenAt forward, never back.
func (s *Store) TouchSession(ctx context.Context, idHash string,
	at time.Time) error {
	res, err := s.write.ExecContext(ctx, `UPDATE sessions
		SET last_seen_at = max(last_seen_at, ?) WHERE id_hash = ?`,
		nanos(at), idHash)
	if err != nil {
		return fail("touching session", err)
	}
	return oneRow("touching session", res)
}

// DeleteSession ends a session.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	_, err := s.write.ExecContext(ctx,
		`DELETE FROM sessions WHERE id_hash = ?`, idHash)
	if err != nil {
		return fail("deleting session", err)
	}
	return nil
}

// DeleteExpired removes sessions past their end or idle since
// idleCutoff, and one-time keys past their expiry.
func (s *Store) DeleteExpired(ctx context.Context, now,
	idleCutoff time.Time) (int, error) {
	var total int64
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`DELETE FROM sessions
				WHERE expires_at <= ? OR last_seen_at <= ?`,
				[]any{nanos(now), nanos(idleCutoff)}},
			{`DELETE FROM once_keys WHERE expires_at <= ?`,
				[]any{nanos(now)}},
		} {
			res, err := tx.ExecContext(ctx, q.sql, q.args...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, fail("deleting expired sessions", err)
	}
	return int(total), nil
}

// ConsumeOnce records key as used until expires, or returns ErrReplayed
// if it is recorded and not yet expired by the wall clock. An expired
// record is replaced.
func (s *Store) ConsumeOnce(ctx context.Context, key string,
	expires time.Time) error {
	res, err := s.write.ExecContext(ctx, `INSERT INTO once_keys
		(key, expires_at) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
		WHERE once_keys.expires_at <= ?`,
		key, nanos(expires), time.Now().UnixNano())
	if err != nil {
		return fail("consuming one-time key", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fail("consuming one-time key", err)
	}
	if n == 0 {
		return provisioner.ErrReplayed
	}
	return nil
}

// Secret returns the value stored under name, storing the result of
// create first if there is none. The first value stored wins.
func (s *Store) Secret(ctx context.Context, name string,
	create func() ([]byte, error)) ([]byte, error) {
	v, err := secret(ctx, s.read, name)
	if err == nil || !errors.Is(err, provisioner.ErrNotFound) {
		return v, err
	}

	fresh, err := create()
	if err != nil {
		return nil, fmt.Errorf("creating secret %s: %w", name, err)
	}
	_, err = s.write.ExecContext(ctx, `INSERT INTO secrets (name, value)
		VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, fresh)
	if err != nil {
		return nil, fail("storing secret", err)
	}
	return secret(ctx, s.write, name)
}

func secret(ctx context.Context, q querier, name string) ([]byte, error) {
	var v []byte
	err := q.QueryRowContext(ctx,
		`SELECT value FROM secrets WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, provisioner.ErrNotFound
	}
	if err != nil {
		return nil, fail("loading secret", err)
	}
	return v, nil
}
