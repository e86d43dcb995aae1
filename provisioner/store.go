package provisioner

import (
	"context"
	"errors"
	"time"
)

// Outcomes a caller acts on, checked with errors.Is.
var (
	// ErrNotFound means the member, invitation or session does not
	// exist (or no longer does).
	ErrNotFound = errors.New("not found")

	// ErrOutOfSeats means the plan has no free seat for a new member.
	ErrOutOfSeats = errors.New("the plan has no free seat")

	// ErrNotInvited means the person is not a member, has no pending
	// invitation, and the organization does not provision just in time.
	ErrNotInvited = errors.New("not a member and not invited")

	// ErrReplayed means a one-time key (an assertion ID) was used
	// before.
	ErrReplayed = errors.New("already used")

	// ErrExists means an invitation or member for that email exists.
	ErrExists = errors.New("already exists")

	// ErrUnavailable wraps store errors caused by the database being
	// out of reach, so callers can answer "try again later".
	ErrUnavailable = errors.New("store unavailable")
)

// IsOutcome reports whether err is one of the answers a store returns
// as they are, for callers to act on: ErrNotFound, ErrOutOfSeats,
// ErrReplayed or ErrExists. Stores wrap every other error with what they
// were doing.
func IsOutcome(err error) bool {
	switch err {
	case ErrNotFound, ErrOutOfSeats, ErrReplayed, ErrExists:
		return true
	}
	return false
}

// Source says how a member was added to an organization.
type Source string

// How members are added.
const (
	SourceJIT        Source = "jit"
	SourceInvitation Source = "invitation"
	SourceSync       Source = "sync"
)

// Member is a person who holds a seat in an organization's plan.
type Member struct {
	ID           string
	OrgID        string
	Email        string // normalised, see NormalizeEmail
	Name         string // display name from the identity provider, may be empty
	Source       Source
	CreatedAt    time.Time
	LastSignInAt time.Time // zero until the first sign-in is recorded
}

// Invitation is a pending invitation: it holds a seat until the invited
// person signs in and becomes a member.
type Invitation struct {
	OrgID     string
	Email     string
	CreatedAt time.Time
}

// Session is a signed-in browser, kept server-side. The session ID the
// browser holds is never stored: only its hash is.
type Session struct {
	IDHash     string // hex SHA-256 of the session ID
	MemberID   string
	OrgID      string
	Email      string
	Name       string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time // absolute end, whatever the activity
}

// Store keeps organizations' seats, members, invitations, sessions and
// one-time keys. Implementations are safe for concurrent use, and every
// method that changes more than one row does so atomically: a failure
// leaves nothing half-written.
//
// Seats used by an organization are its members plus its pending
// invitations. The seat limit is passed in by the caller, from the
// configuration, so that lowering it never removes anyone.
//
// Times come back in UTC, at least to the microsecond.
type Store interface {
	// Member returns the member of org with the normalised email, or
	// ErrNotFound.
	Member(ctx context.Context, orgID, email string) (Member, error)

	// MemberByID returns the member with the given ID, or ErrNotFound.
	MemberByID(ctx context.Context, id string) (Member, error)

	// AddMember adds m to its organization if a seat is free, that is
	// if members plus pending invitations are fewer than seats, checking
	// and taking the seat atomically. If a pending invitation for the
	// same email exists it is consumed, and its seat becomes the
	// member's whatever the count. If the email is already a member,
	// that member is returned with no error. ID and CreatedAt are
	// filled in when empty. Otherwise it returns ErrOutOfSeats.
	AddMember(ctx context.Context, m Member, seats int) (Member, error)

	// Invite records a pending invitation if a seat is free, otherwise
	// ErrOutOfSeats; ErrExists if the email is already a member or
	// invited.
	Invite(ctx context.Context, inv Invitation, seats int) error

	// Invitation returns the pending invitation for email, or
	// ErrNotFound.
	Invitation(ctx context.Context, orgID, email string) (Invitation, error)

	// RemoveMember removes a member and every session of theirs,
	// freeing the seat. ErrNotFound if there is no such member.
	RemoveMember(ctx context.Context, memberID string) error

	// Members lists an organization's members, oldest first.
	Members(ctx context.Context, orgID string) ([]Member, error)

	// SeatsUsed counts members plus pending invitations of org.
	SeatsUsed(ctx context.Context, orgID string) (int, error)

	// RecordSignIn sets the member's last sign-in time, or returns
	// ErrNotFound if there is no such member.
	RecordSignIn(ctx context.Context, memberID string, at time.Time) error

	// CreateSession stores a new session. ErrNotFound means its member
	// no longer exists (removed since signing in): no session is made.
	CreateSession(ctx context.Context, s Session) error

	// Session returns the session with the given ID hash, or
	// ErrNotFound. Expiry is the caller's to check.
	Session(ctx context.Context, idHash string) (Session, error)

	// TouchSession moves the session's LastSeenAt forward, or returns
	// ErrNotFound if the session is gone.
	TouchSession(ctx context.Context, idHash string, at time.Time) error

	// DeleteSession ends a session; no error if it does not exist.
	DeleteSession(ctx context.Context, idHash string) error

	// DeleteExpired removes sessions whose absolute end is at or before
	// now or last seen at or before idleCutoff, and one-time keys whose
	// expiry is at or before now. It returns how many rows went.
	DeleteExpired(ctx context.Context, now, idleCutoff time.Time) (int, error)

	// ConsumeOnce records key as used until expires. It returns
	// ErrReplayed if the key is already recorded and not expired; a
	// key whose record expired (by the store's clock) is recorded
	// anew. It backs the SAML replay cache, shared by every gateway
	// instance on the store.
	ConsumeOnce(ctx context.Context, key string, expires time.Time) error

	// Secret returns the value stored under name. If there is none, it
	// stores the result of create and returns it; when several callers
	// race, all of them get the one value that was stored first.
	Secret(ctx context.Context, name string,
		create func() ([]byte, error)) ([]byte, error)

	// Close releases the store's connections.
	Close() error
}

// Invalidation names what one gateway instance removed, so that others
// sharing the store drop it from their caches.
type Invalidation struct {
	MemberID    string // a removed member, or empty
	SessionHash string // an ended session, or empty

	// All says notifications may have been missed (the connection
	// that carries them was lost): every cached entry must go.
	All bool
}

// Notifier is implemented by stores shared by several gateway instances.
// Listen calls fn for every member removed and every session ended by any
// instance, until ctx ends. Stores used by one process need not
// implement it.
type Notifier interface {
	Listen(ctx context.Context, fn func(Invalidation)) error
}
