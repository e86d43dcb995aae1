package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/arrowgate/arrowgate/provisioner"
)

const memberColumns = `id, org_id, email, name, source, created_at,
	last_sign_in_at`

// Member returns the member of org with the normalised email.
func (s *Store) Member(ctx context.Context, orgID, email string) (
	provisioner.Member, error) {
	ctx, cancel, err := s.enter(ctx)
	if err != nil {
		return provisioner.Member{}, fail("looking up member", err)
	}
	defer cancel()
	m, err := memberByEmail(ctx, s.pool, orgID, email)
	if err != nil {
		return provisioner.Member{}, fail("looking up member", err)
	}
	return m, nil
}

// MemberByID returns the member with the given ID.
func (s *Store) MemberByID(ctx context.Context, id string) (
	provisioner.Member, error) {
	ctx, cancel, err := s.enter(ctx)
	if err != nil {
		return provisioner.Member{}, fail("looking up member", err)
	}
	defer cancel()
	row := s.pool.QueryRow(ctx,
		"SELECT "+memberColumns+" FROM members WHERE id = $1", id)
	m, err := scanMember(row)
	if err != nil {
		return provisioner.Member{}, fail("looking up member", err)
	}
	return m, nil
}

// AddMember adds m to its organization while a seat is free, in one
// transaction holding the organization's row lock, so that instances
// racing for the last seat take turns. A pending invitation for the
// email is consumed and its seat passed on; an existing member is
// returned as is.
func (s *Store) AddMember(ctx context.Context, m provisioner.Member,
	seats int) (provisioner.Member, error) {
	ctx, cancel, err := s.enter(ctx)
	if err != nil {
		return provisioner.Member{}, fail("adding member", err)
	}
	defer cancel()
	if m, err = s.completeMember(m); err != nil {
		return provisioner.Member{}, fail("adding member", err)
	}

	// a full plan says so without queueing on the organization's lock,
	// which a rush of sign-ins to a full plan would otherwise hold up
	full, err := s.plainlyFull(ctx, m, seats)
	if err != nil {
		return provisioner.Member{}, fail("adding member", err)
	}
	if full {
		return provisioner.Member{}, provisioner.ErrOutOfSeats
	}

	var out provisioner.Member
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockOrg(ctx, tx, m.OrgID); err != nil {
			return err
		}
		existing, err := memberByEmail(ctx, tx, m.OrgID, m.Email)
		if err == nil {
			out = existing
			return nil
		}
		if !errors.Is(err, provisioner.ErrNotFound) {
			return err
		}
		if err := takeSeat(ctx, tx, m, seats); err != nil {
			return err
		}
		out = m
		return nil
	})
	if err != nil {
		return provisioner.Member{}, fail("adding member", err)
	}
	return out, nil
}

// plainlyFull reports whether the organization's seats are all taken and
// m is neither a member nor invited, read without the lock. Seats are
// only taken under the lock, so a full count stays full unless someone
// is removed at the same moment; the locked check decides every other
// case.
func (s *Store) plainlyFull(ctx context.Context, m provisioner.Member,
	seats int) (bool, error) {
	var full bool
	err := s.pool.QueryRow(ctx, `
SELECT (SELECT count(*) FROM members WHERE org_id = $1)
     + (SELECT count(*) FROM invitations WHERE org_id = $1) >= $3
   AND NOT EXISTS (SELECT 1 FROM members WHERE org_id = $1 AND email = $2)
   AND NOT EXISTS (SELECT 1 FROM invitations
                   WHERE org_id = $1 AND email = $2)`,
		m.OrgID, m.Email, seats).Scan(&full)
	if err != nil {
		return false, fmt.Errorf("checking for a free seat: %w", err)
	}
	return full, nil
}

// completeMember fills in the ID and CreatedAt when empty, and rounds
// times to what PostgreSQL keeps, so that the member returned equals
// the member read back later.
func (s *Store) completeMember(m provisioner.Member) (provisioner.Member,
	error) {
	if m.ID == "" {
		id, err := s.newID()
		if err != nil {
			return m, err
		}
		m.ID = id
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = s.opts.Now()
	}
	m.CreatedAt = stored(m.CreatedAt)
	m.LastSignInAt = stored(m.LastSignInAt)
	return m, nil
}

// lockOrg takes the row lock of the organization, creating its row on
// its first seat. Every transaction that takes a seat holds it until it
// ends.
func lockOrg(ctx context.Context, tx pgx.Tx, orgID string) error {
	b := &pgx.Batch{}
	b.Queue("INSERT INTO orgs (id) VALUES ($1) ON CONFLICT DO NOTHING",
		orgID)
	b.Queue("SELECT id FROM orgs WHERE id = $1 FOR UPDATE", orgID)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("locking org %s: %w", orgID, err)
	}
	return nil
}

// takeSeat inserts the member, consuming a pending invitation for the
// email or else a free seat, in one statement. The organization's lock
// must be held. It returns ErrOutOfSeats when neither is there.
func takeSeat(ctx context.Context, tx pgx.Tx, m provisioner.Member,
	seats int) error {
	// the counts see the invitation as it was before the DELETE; when
	// one is consumed, the count does not matter
	tag, err := tx.Exec(ctx, `
WITH invited AS (
	DELETE FROM invitations WHERE org_id = $2 AND email = $3
	RETURNING 1
)
INSERT INTO members (`+memberColumns+`)
SELECT $1, $2, $3, $4, $5, $6, $7
WHERE EXISTS (SELECT 1 FROM invited)
   OR (SELECT count(*) FROM members WHERE org_id = $2)
    + (SELECT count(*) FROM invitations WHERE org_id = $2) < $8`,
		m.ID, m.OrgID, m.Email, m.Name, string(m.Source),
		m.CreatedAt, nullTime(m.LastSignInAt), seats)
	if err != nil {
		return fmt.Errorf("inserting member: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return provisioner.ErrOutOfSeats
	}
	return nil
}

// Invite records a pending invitation while a seat is free, under the
// organization's lock like AddMember.
func (s *Store) Invite(ctx context.Context, inv provisioner.Invitation,
	seats int) error {
	ctx, cancel, err := s.enter(ctx)
	if err != nil {
		return fail("inviting", err)
	}
	defer cancel()
	if inv.CreatedAt.IsZero() {
		inv.CreatedAt = s.opts.Now()
	}

	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockOrg(ctx, tx, inv.OrgID); err != nil {
			return err
		}
		var taken bool
		err := tx.QueryRow(ctx, `
SELECT EXISTS (SELECT 1 FROM members WHERE org_id = $1 AND email = $2)
    OR EXISTS (SELECT 1 FROM invitations WHERE org_id = $1 AND email = $2)`,
			inv.OrgID, inv.Email).Scan(&taken)
		if err != nil {
			return fmt.Errorf("looking for the email: %w", err)
		}
		if taken {
			return provisioner.ErrExists
		}
		return insertInvitation(ctx, tx, inv, seats)
	})
	if err != nil {
		return fail("inviting", err)
	}
	return nil
}

// insertInvitation inserts inv if a seat is free. The organization's
// lock must be held.
func insertInvitation(ctx context.Context, tx pgx.Tx,
	inv provisioner.Invitation, seats int) error {
	tag, err := tx.Exec(ctx, `
INSERT INTO invitations (org_id, email, created_at)
SELECT $1, $2, $3
WHERE (SELECT count(*) FROM members WHERE org_id = $1)
    + (SELECT count(*) FROM invitations WHERE org_id = $1) < $4`,
		inv.OrgID, inv.Email, inv.CreatedAt, seats)
	if err != nil {
		return fmt.Errorf("inserting invitation: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return provisioner.ErrOutOfSeats
	}
	return nil
}

// Invitation returns the pending invitation for email.
func (s *Store) Invitation(ctx context.Context, orgID, email string) (
	provisioner.Invitation, error) {
	ctx, cancel, err := s.enter(ctx)
	if err != nil {
		return provisioner.Invitation{}, fail("looking up invitation", err)
	}
	defer cancel()
	inv := provisioner.Invitation{OrgID: orgID, Email: email}
	err = s.pool.QueryRow(ctx, `
SELECT created_at FROM invitations WHERE org_id = $1 AND email = $2`,
		orgID, email).Scan(&inv.CreatedAt)
	if err != nil {
		return provisioner.Invitation{},
			fail("looking up invitation", notFound(err))
	}
	inv.CreatedAt = inv.CreatedAt.UTC()
	return inv, nil
}

// RemoveMember removes a member and their sessions, freeing the seat,
// and tells every instance listening, in the same transaction.
func (s *Store) RemoveMember(ctx context.Context, memberID string) error {
	ctx, cancel, err := s.enter(ctx)
	if err != nil {
		return fail("removing member", err)
	}
	defer cancel()

	err = s.inTx(ctx, func(tx pgx.Tx) error {
		ended, err := deleteSessionsOf(ctx, tx, memberID)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "DELETE FROM members WHERE id = $1",
			memberID)
		if err != nil {
			return fmt.Errorf("deleting member: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return provisioner.ErrNotFound
		}
		return s.notify(ctx, tx, removal(memberID, ended)...)
	})
	if err != nil {
		return fail("removing member", err)
	}
	return nil
}

// deleteSessionsOf deletes a member's sessions and returns their
// hashes.
func deleteSessionsOf(ctx context.Context, tx pgx.Tx, memberID string) (
	[]string, error) {
	rows, err := tx.Query(ctx,
		"DELETE FROM sessions WHERE member_id = $1 RETURNING id_hash",
		memberID)
	if err != nil {
		return nil, fmt.Errorf("deleting sessions: %w", err)
	}
	hashes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("deleting sessions: %w", err)
	}
	return hashes, nil
}

// Members lists an organization's members, oldest first.
func (s *Store) Members(ctx context.Context, orgID string) (
	[]provisioner.Member, error) {
	ctx, cancel, err := s.enter(ctx)
	if err != nil {
		return nil, fail("listing members", err)
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, "SELECT "+memberColumns+
		" FROM members WHERE org_id = $1 ORDER BY created_at, id", orgID)
	if err != nil {
		return nil, fail("listing members", err)
	}
	members, err := pgx.CollectRows(rows,
		func(r pgx.CollectableRow) (provisioner.Member, error) {
			return scanMember(r)
		})
	if err != nil {
		return nil, fail("listing members", err)
	}
	return members, nil
}

// SeatsUsed counts members plus pending invitations of org.
func (s *Store) SeatsUsed(ctx context.Context, orgID string) (int, error) {
	ctx, cancel, err := s.enter(ctx)
	if err != nil {
		return 0, fail("counting seats", err)
	}
	defer cancel()
	var n int
	err = s.pool.QueryRow(ctx, `
SELECT (SELECT count(*) FROM members WHERE org_id = $1)
     + (SELECT count(*) FROM invitations WHERE org_id = $1)`,
		orgID).Scan(&n)
	if err != nil {
		return 0, fail("counting seats", err)
	}
	return n, nil
}

// RecordSignIn sets the member's last sign-in time.
func (s *Store) RecordSignIn(ctx context.Context, memberID string,
	at time.Time) error {
	ctx, cancel, err := s.enter(ctx)
	if err != nil {
		return fail("recording sign-in", err)
	}
	defer cancel()
	tag, err := s.pool.Exec(ctx,
		"UPDATE members SET last_sign_in_at = $2 WHERE id = $1",
		memberID, nullTime(at))
	if err != nil {
		return fail("recording sign-in", err)
	}
	if tag.RowsAffected() == 0 {
		return provisioner.ErrNotFound
	}
	return nil
}

// querier is what a member lookup needs of a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func memberByEmail(ctx context.Context, q querier, orgID,
	email string) (provisioner.Member, error) {
	row := q.QueryRow(ctx, "SELECT "+memberColumns+
		" FROM members WHERE org_id = $1 AND email = $2", orgID, email)
	return scanMember(row)
}

// scanMember reads one member row; no row is ErrNotFound.
func scanMember(row pgx.Row) (provisioner.Member, error) {
	var (
		m      provisioner.Member
		source string
		last   *time.Time
	)
	err := row.Scan(&m.ID, &m.OrgID, &m.Email, &m.Name, &source,
		&m.CreatedAt, &last)
	if err != nil {
		return provisioner.Member{}, notFound(err)
	}
	m.Source = provisioner.Source(source)
	m.CreatedAt = m.CreatedAt.UTC()
	if last != nil {
		m.LastSignInAt = last.UTC()
	}
	return m, nil
}

// notFound turns pgx's "no rows" into provisioner.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return provisioner.ErrNotFound
	}
	return err
}

// stored rounds t to what a timestamptz keeps: microseconds, in UTC.
// The zero time stays zero.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Truncate(time.Microsecond).UTC()
}

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
