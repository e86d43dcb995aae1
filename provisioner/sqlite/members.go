package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/arrowgate/arrowgate/provisioner"
)

const memberColumns = `id, org_id, email, name, source, created_at,
	last_sign_in_at`

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

func scanMember(r rowScanner) (provisioner.Member, error) {
	var (
		m             provisioner.Member
		source        string
		created, last sql.NullInt64
	)
	err := r.Scan(&m.ID, &m.OrgID, &m.Email, &m.Name, &source,
		&created, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return provisioner.Member{}, provisioner.ErrNotFound
	}
	if err != nil {
		return provisioner.Member{}, err
	}
	m.Source = provisioner.Source(source)
	m.CreatedAt = fromNanos(created)
	m.LastSignInAt = fromNanos(last)
	return m, nil
}

// querier is what reads need: a pool or a transaction.
type querier interface {
	QueryRowContext(ctx context.Context, query string,
		args ...any) *sql.Row
}

func memberByEmail(ctx context.Context, q querier, orgID,
	email string) (provisioner.Member, error) {
	return scanMember(q.QueryRowContext(ctx, `SELECT `+memberColumns+`
		FROM members WHERE org_id = ? AND email = ?`, orgID, email))
}

// Member returns the member of org with the normalised email.
func (s *Store) Member(ctx context.Context, orgID,
	email string) (provisioner.Member, error) {
	m, err := memberByEmail(ctx, s.read, orgID, email)
	if err != nil {
		return provisioner.Member{}, fail("looking up member", err)
	}
	return m, nil
}

// MemberByID returns the member with the given ID.
func (s *Store) MemberByID(ctx context.Context,
	id string) (provisioner.Member, error) {
	m, err := scanMember(s.read.QueryRowContext(ctx, `SELECT `+
		memberColumns+` FROM members WHERE id = ?`, id))
	if err != nil {
		return provisioner.Member{}, fail("looking up member", err)
	}
	return m, nil
}

// AddMember adds m if a seat is free, under the write lock; see
// provisioner.Store. A zero CreatedAt is set to the current time.
func (s *Store) AddMember(ctx context.Context, m provisioner.Member,
	seats int) (provisioner.Member, error) {
	if m.ID == "" {
		id, err := newID()
		if err != nil {
			return provisioner.Member{}, err
		}
		m.ID = id
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = time.Now()
	}
	m.CreatedAt = m.CreatedAt.UTC()
	if !m.LastSignInAt.IsZero() {
		m.LastSignInAt = m.LastSignInAt.UTC()
	}

	var added provisioner.Member
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		added, err = addMember(ctx, tx, m, seats)
		return err
	})
	if err != nil {
		return provisioner.Member{}, fail("adding member", err)
	}
	return added, nil
}

// addMember is AddMember's transaction: an existing member is returned,
// an invitation is turned into the member, and otherwise a seat must be
// free.
func addMember(ctx context.Context, tx *sql.Tx, m provisioner.Member,
	seats int) (provisioner.Member, error) {
	old, err := memberByEmail(ctx, tx, m.OrgID, m.Email)
	if err == nil {
		return old, nil
	}
	if !errors.Is(err, provisioner.ErrNotFound) {
		return provisioner.Member{}, err
	}

	res, err := tx.ExecContext(ctx, `DELETE FROM invitations
		WHERE org_id = ? AND email = ?`, m.OrgID, m.Email)
	if err != nil {
		return provisioner.Member{}, err
	}
	if invited, err := res.RowsAffected(); err != nil {
		return provisioner.Member{}, err
	} else if invited == 0 {
		if err := checkSeat(ctx, tx, m.OrgID, seats); err != nil {
			return provisioner.Member{}, err
		}
	}

	_, err = tx.ExecContext(ctx, `INSERT INTO members (`+memberColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, m.ID, m.OrgID, m.Email, m.Name,
		string(m.Source), nanos(m.CreatedAt), nanos(m.LastSignInAt))
	if err != nil {
		return provisioner.Member{}, err
	}
	return m, nil
}

// checkSeat returns ErrOutOfSeats unless org uses fewer than seats.
func checkSeat(ctx context.Context, q querier, orgID string,
	seats int) error {
	used, err := seatsUsed(ctx, q, orgID)
	if err != nil {
		return err
	}
	if used >= seats {
		return provisioner.ErrOutOfSeats
	}
	return nil
}

func seatsUsed(ctx context.Context, q querier, orgID string) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM members WHERE org_id = ?) +
		(SELECT count(*) FROM invitations WHERE org_id = ?)`,
		orgID, orgID).Scan(&n)
	return n, err
}

// Invite records a pending invitation if a seat is free.
func (s *Store) Invite(ctx context.Context, inv provisioner.Invitation,
	seats int) error {
	if inv.CreatedAt.IsZero() {
		inv.CreatedAt = time.Now()
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var taken bool
		err := tx.QueryRowContext(ctx, `SELECT
			EXISTS (SELECT 1 FROM members
				WHERE org_id = ? AND email = ?) OR
			EXISTS (SELECT 1 FROM invitations
				WHERE org_id = ? AND email = ?)`,
			inv.OrgID, inv.Email, inv.OrgID, inv.Email).Scan(&taken)
		if err != nil {
			return err
		}
		if taken {
			return provisioner.ErrExists
		}
		if err := checkSeat(ctx, tx, inv.OrgID, seats); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO invitations
			(org_id, email, created_at) VALUES (?, ?, ?)`,
			inv.OrgID, inv.Email, nanos(inv.CreatedAt))
		return err
	})
	if err != nil {
		return fail("inviting", err)
	}
	return nil
}

// Invitation returns the pending invitation for email.
func (s *Store) Invitation(ctx context.Context, orgID,
	email string) (provisioner.Invitation, error) {
	inv := provisioner.Invitation{OrgID: orgID, Email: email}
	var created sql.NullInt64
	err := s.read.QueryRowContext(ctx, `SELECT created_at
		FROM invitations WHERE org_id = ? AND email = ?`,
		orgID, email).Scan(&created)
	if errors.Is(err, sql.ErrNoRows) {
		return provisioner.Invitation{}, provisioner.ErrNotFound
	}
	if err != nil {
		return provisioner.Invitation{}, fail("looking up invitation", err)
	}
	inv.CreatedAt = fromNanos(created)
	return inv, nil
}

// RemoveMember removes a member; their sessions go with them.
func (s *Store) RemoveMember(ctx context.Context, memberID string) error {
	res, err := s.write.ExecContext(ctx,
		`DELETE FROM members WHERE id = ?`, memberID)
	if err != nil {
		return fail("removing member", err)
	}
	return oneRow("removing member", res)
}

// oneRow returns ErrNotFound when a statement changed no row.
func oneRow(doing string, res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fail(doing, err)
	}
	if n == 0 {
		return provisioner.ErrNotFound
	}
	return nil
}

// Members lists an organization's members, oldest first.
func (s *Store) Members(ctx context.Context,
	orgID string) ([]provisioner.Member, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+memberColumns+`
		FROM members WHERE org_id = ?
		ORDER BY created_at, rowid`, orgID)
	if err != nil {
		return nil, fail("listing members", err)
	}
	defer rows.Close()

	var out []provisioner.Member
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, fail("listing members", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fail("listing members", err)
	}
	return out, nil
}

// SeatsUsed counts members plus pending invitations of org.
func (s *Store) SeatsUsed(ctx context.Context, orgID string) (int, error) {
	n, err := seatsUsed(ctx, s.read, orgID)
	if err != nil {
		return 0, fail("counting seats", err)
	}
	return n, nil
}

// RecordSignIn sets the member's last sign-in time.
func (s *Store) RecordSignIn(ctx context.Context, memberID string,
	at time.Time) error {
	res, err := s.write.ExecContext(ctx, `UPDATE members
		SET last_sign_in_at = ? WHERE id = ?`, nanos(at), memberID)
	if err != nil {
		return fail("recording sign-in", err)
	}
	return oneRow("recording sign-in", res)
}
