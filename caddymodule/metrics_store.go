package caddymodule

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/arrowgate/arrowgate/provisioner"
)

// The store operations, the values of the operation label.
const (
	opMember = iota
	opMemberByID
	opAddMember
	opInvite
	opInvitation
	opRemoveMember
	opMembers
	opSeatsUsed
	opRecordSignIn
	opCreateSession
	opSession
	opTouchSession
	opDeleteSession
	opDeleteExpired
	opConsumeOnce
	opSecret
	opActiveSessions
	storeOps
)

var storeOpLabels = [storeOps]string{
	opMember:         "member",
	opMemberByID:     "member_by_id",
	opAddMember:      "add_member",
	opInvite:         "invite",
	opInvitation:     "invitation",
	opRemoveMember:   "remove_member",
	opMembers:        "members",
	opSeatsUsed:      "seats_used",
	opRecordSignIn:   "record_sign_in",
	opCreateSession:  "create_session",
	opSession:        "session",
	opTouchSession:   "touch_session",
	opDeleteSession:  "delete_session",
	opDeleteExpired:  "delete_expired",
	opConsumeOnce:    "consume_once",
	opSecret:         "secret",
	opActiveSessions: "active_sessions",
}

// storeHandles are the label handles of every store operation.
type storeHandles [storeOps]struct {
	ok, failed prometheus.Observer
	errors     prometheus.Counter
}

func newStoreHandles(p *processCollectors) storeHandles {
	var hs storeHandles
	for op, label := range storeOpLabels {
		hs[op].ok = p.storeCalls.WithLabelValues(label, "ok")
		hs[op].failed = p.storeCalls.WithLabelValues(label, "error")
		hs[op].errors = p.storeErrors.WithLabelValues(label)
	}
	return hs
}

// done records a call of op that began at start and returned *err. The
// answers callers act on (not found, out of seats, replayed, exists)
// are results, not failures.
func (hs *storeHandles) done(op int, start time.Time, err *error) {
	took := time.Since(start).Seconds()
	if *err == nil || isStoreAnswer(*err) {
		hs[op].ok.Observe(took)
		return
	}
	hs[op].failed.Observe(took)
	hs[op].errors.Inc()
}

func isStoreAnswer(err error) bool {
	return errors.Is(err, provisioner.ErrNotFound) ||
		errors.Is(err, provisioner.ErrOutOfSeats) ||
		errors.Is(err, provisioner.ErrReplayed) ||
		errors.Is(err, provisioner.ErrExists)
}

// instrument wraps s so that its calls are timed and its failures
// counted. A store that is a provisioner.Notifier stays one.
func (hs *storeHandles) instrument(s provisioner.Store) provisioner.Store {
	is := &instrumentedStore{inner: s, hs: hs}
	if n, ok := s.(provisioner.Notifier); ok {
		return instrumentedNotifier{is, n}
	}
	return is
}

// sessionCounter is a store that counts live sessions by org, as the
// SQLite and PostgreSQL stores do. It backs arrowgate_sessions_active.
type sessionCounter interface {
	ActiveSessions(ctx context.Context, now,
		idleCutoff time.Time) (map[string]int, error)
}

// instrumentedStore is a provisioner.Store that times every call to the
// store it wraps.
type instrumentedStore struct {
	inner provisioner.Store
	hs    *storeHandles
}

// instrumentedNotifier is an instrumentedStore that relays Listen.
type instrumentedNotifier struct {
	*instrumentedStore
	n provisioner.Notifier
}

// Listen relays invalidations from the wrapped store.
func (s instrumentedNotifier) Listen(ctx context.Context,
	fn func(provisioner.Invalidation)) error {
	return s.n.Listen(ctx, fn)
}

// activeSessions counts live sessions by org; ok is false when the
// wrapped store cannot count them.
func (s *instrumentedStore) activeSessions(ctx context.Context, now,
	idleCutoff time.Time) (counts map[string]int, ok bool, err error) {
	sc, ok := s.inner.(sessionCounter)
	if !ok {
		return nil, false, nil
	}
	defer s.hs.done(opActiveSessions, time.Now(), &err)
	counts, err = sc.ActiveSessions(ctx, now, idleCutoff)
	return counts, true, err
}

func (s *instrumentedStore) Member(ctx context.Context, orgID,
	email string) (m provisioner.Member, err error) {
	defer s.hs.done(opMember, time.Now(), &err)
	return s.inner.Member(ctx, orgID, email)
}

func (s *instrumentedStore) MemberByID(ctx context.Context,
	id string) (m provisioner.Member, err error) {
	defer s.hs.done(opMemberByID, time.Now(), &err)
	return s.inner.MemberByID(ctx, id)
}

func (s *instrumentedStore) AddMember(ctx context.Context,
	m provisioner.Member, seats int) (_ provisioner.Member, err error) {
	defer s.hs.done(opAddMember, time.Now(), &err)
	return s.inner.AddMember(ctx, m, seats)
}

func (s *instrumentedStore) Invite(ctx context.Context,
	inv provisioner.Invitation, seats int) (err error) {
	defer s.hs.done(opInvite, time.Now(), &err)
	return s.inner.Invite(ctx, inv, seats)
}

func (s *instrumentedStore) Invitation(ctx context.Context, orgID,
	email string) (_ provisioner.Invitation, err error) {
	defer s.hs.done(opInvitation, time.Now(), &err)
	return s.inner.Invitation(ctx, orgID, email)
}

func (s *instrumentedStore) RemoveMember(ctx context.Context,
	memberID string) (err error) {
	defer s.hs.done(opRemoveMember, time.Now(), &err)
	return s.inner.RemoveMember(ctx, memberID)
}

func (s *instrumentedStore) Members(ctx context.Context,
	orgID string) (_ []provisioner.Member, err error) {
	defer s.hs.done(opMembers, time.Now(), &err)
	return s.inner.Members(ctx, orgID)
}

func (s *instrumentedStore) SeatsUsed(ctx context.Context,
	orgID string) (_ int, err error) {
	defer s.hs.done(opSeatsUsed, time.Now(), &err)
	return s.inner.SeatsUsed(ctx, orgID)
}

func (s *instrumentedStore) RecordSignIn(ctx context.Context,
	memberID string, at time.Time) (err error) {
	defer s.hs.done(opRecordSignIn, time.Now(), &err)
	return s.inner.RecordSignIn(ctx, memberID, at)
}

func (s *instrumentedStore) CreateSession(ctx context.Context,
	sess provisioner.Session) (err error) {
	defer s.hs.done(opCreateSession, time.Now(), &err)
	return s.inner.CreateSession(ctx, sess)
}

func (s *instrumentedStore) Session(ctx context.Context,
	idHash string) (_ provisioner.Session, err error) {
	defer s.hs.done(opSession, time.Now(), &err)
	return s.inner.Session(ctx, idHash)
}

func (s *instrumentedStore) TouchSession(ctx context.Context,
	idHash string, at time.Time) (err error) {
	defer s.hs.done(opTouchSession, time.Now(), &err)
	return s.inner.TouchSession(ctx, idHash, at)
}

func (s *instrumentedStore) DeleteSession(ctx context.Context,
	idHash string) (err error) {
	defer s.hs.done(opDeleteSession, time.Now(), &err)
	return s.inner.DeleteSession(ctx, idHash)
}

func (s *instrumentedStore) DeleteExpired(ctx context.Context, now,
	idleCutoff time.Time) (_ int, err error) {
	defer s.hs.done(opDeleteExpired, time.Now(), &err)
	return s.inner.DeleteExpired(ctx, now, idleCutoff)
}

func (s *instrumentedStore) ConsumeOnce(ctx context.Context, key string,
	expires time.Time) (err error) {
	defer s.hs.done(opConsumeOnce, time.Now(), &err)
	return s.inner.ConsumeOnce(ctx, key, expires)
}

func (s *instrumentedStore) Secret(ctx context.Context, name string,
	create func() ([]byte, error)) (_ []byte, err error) {
	defer s.hs.done(opSecret, time.Now(), &err)
	return s.inner.Secret(ctx, name, create)
}

// Close is not timed: it happens once, when the last configuration
// using the store is unloaded.
func (s *instrumentedStore) Close() error { return s.inner.Close() }

// Interface guards
var (
	_ provisioner.Store    = (*instrumentedStore)(nil)
	_ provisioner.Notifier = instrumentedNotifier{}
)
