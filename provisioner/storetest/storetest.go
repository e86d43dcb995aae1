// Package storetest is the conformance suite every provisioner.Store
// passes: seats counted and taken atomically, invitations, members,
// sessions, one-time keys and secrets. A store's own tests call Run.
package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/arrowgate/arrowgate/provisioner"
)

// t0 is the fixed time the cases count from. Whole seconds, so that
// every store keeps it exactly.
var t0 = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

// Run runs the suite. open must return a fresh, empty store each time
// it is called; Run closes it at the end of the subtest.
func Run(t *testing.T, open func(t *testing.T) provisioner.Store) {
	cases := []struct {
		name string
		run  func(*testing.T, provisioner.Store)
	}{
		{"AddAndLookUpMember", testAddAndLookUp},
		{"AddExistingMemberReturnsIt", testAddExisting},
		{"SeatLimitIsExact", testSeatLimit},
		{"ConcurrentAddsNeverOverfill", testConcurrentSeats},
		{"InvitationHoldsSeat", testInvitationHoldsSeat},
		{"InvitationErrors", testInvitationErrors},
		{"LoweringSeatsKeepsMembers", testLoweringSeats},
		{"RemoveMemberFreesSeatAndSessions", testRemoveMember},
		{"SessionLifecycle", testSessionLifecycle},
		{"DeleteExpired", testDeleteExpired},
		{"ConsumeOnce", testConsumeOnce},
		{"ConsumeOnceConcurrent", testConsumeOnceConcurrent},
		{"SecretRace", testSecretRace},
		{"RecordSignIn", testRecordSignIn},
		{"MembersOldestFirst", testMembersOrder},
		{"NotFound", testNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("closing store: %v", err)
				}
			})
			c.run(t, s)
		})
	}
}

// member returns a new member of org for email, created at t0 plus the
// given offset.
func member(org, email string, after time.Duration) provisioner.Member {
	return provisioner.Member{
		OrgID:     org,
		Email:     email,
		Name:      "Person " + email,
		Source:    provisioner.SourceJIT,
		CreatedAt: t0.Add(after),
	}
}

func mustAdd(t *testing.T, s provisioner.Store, m provisioner.Member,
	seats int) provisioner.Member {
	t.Helper()
	got, err := s.AddMember(t.Context(), m, seats)
	if err != nil {
		t.Fatalf("AddMember(%s, seats %d): %v", m.Email, seats, err)
	}
	return got
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func wantSeats(t *testing.T, s provisioner.Store, org string, want int) {
	t.Helper()
	got, err := s.SeatsUsed(t.Context(), org)
	if err != nil {
		t.Fatalf("SeatsUsed(%s): %v", org, err)
	}
	if got != want {
		t.Fatalf("SeatsUsed(%s) = %d, want %d", org, got, want)
	}
}

// sameTime fails unless got is want, in UTC.
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
	if !got.IsZero() && got.Location() != time.UTC {
		t.Errorf("%s is in %v, want UTC", what, got.Location())
	}
}

func sameMember(t *testing.T, got, want provisioner.Member) {
	t.Helper()
	if got.ID != want.ID || got.OrgID != want.OrgID ||
		got.Email != want.Email || got.Name != want.Name ||
		got.Source != want.Source {
		t.Errorf("member = %+v, want %+v", got, want)
	}
	sameTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	sameTime(t, "LastSignInAt", got.LastSignInAt, want.LastSignInAt)
}

func testAddAndLookUp(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	want := member("acme", "ann@acme.example", 0)
	got := mustAdd(t, s, want, 5)
	if got.ID == "" {
		t.Fatal("AddMember left the ID empty")
	}
	want.ID = got.ID
	sameMember(t, got, want)

	byEmail, err := s.Member(ctx, "acme", "ann@acme.example")
	if err != nil {
		t.Fatalf("Member: %v", err)
	}
	sameMember(t, byEmail, want)
	byID, err := s.MemberByID(ctx, got.ID)
	if err != nil {
		t.Fatalf("MemberByID: %v", err)
	}
	sameMember(t, byID, want)
	wantSeats(t, s, "acme", 1)

	// the same email in another organization is another person
	_, err = s.Member(ctx, "globex", "ann@acme.example")
	wantErr(t, "Member in another org", err, provisioner.ErrNotFound)
	other := mustAdd(t, s, member("globex", "ann@acme.example", 0), 1)
	if other.ID == got.ID {
		t.Fatal("two organizations' members share an ID")
	}
	wantSeats(t, s, "acme", 1)
	wantSeats(t, s, "globex", 1)
}

func testAddExisting(t *testing.T, s provisioner.Store) {
	first := mustAdd(t, s, member("acme", "ann@acme.example", 0), 1)

	// the plan is full, but Ann holds her seat already
	again := member("acme", "ann@acme.example", time.Hour)
	again.Name = "Someone Else"
	got := mustAdd(t, s, again, 1)
	sameMember(t, got, first)
	wantSeats(t, s, "acme", 1)

	members, err := s.Members(t.Context(), "acme")
	if err != nil {
		t.Fatalf("Members: %v", err)
	}
	if len(members) != 1 {
		t.Fatalf("Members: got %d, want 1", len(members))
	}
}

func testSeatLimit(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	for i := range 3 {
		mustAdd(t, s, member("acme", fmt.Sprintf("p%d@acme.example", i),
			time.Duration(i)*time.Minute), 3)
	}
	_, err := s.AddMember(ctx, member("acme", "late@acme.example", 0), 3)
	wantErr(t, "fourth member of three seats", err,
		provisioner.ErrOutOfSeats)
	_, err = s.Member(ctx, "acme", "late@acme.example")
	wantErr(t, "member refused a seat", err, provisioner.ErrNotFound)
	wantSeats(t, s, "acme", 3)

	// one more seat bought: one more member
	mustAdd(t, s, member("acme", "late@acme.example", 0), 4)
	wantSeats(t, s, "acme", 4)

	// seats are counted per organization
	_, err = s.AddMember(ctx, member("globex", "gus@globex.example", 0), 0)
	wantErr(t, "member of a zero-seat plan", err, provisioner.ErrOutOfSeats)
	mustAdd(t, s, member("globex", "gus@globex.example", 0), 1)
}

func testConcurrentSeats(t *testing.T, s provisioner.Store) {
	const people, seats = 200, 20
	errs := make([]error, people)
	var wg sync.WaitGroup
	for i := range people {
		wg.Go(func() {
			m := member("acme", fmt.Sprintf("p%03d@acme.example", i), 0)
			_, errs[i] = s.AddMember(t.Context(), m, seats)
		})
	}
	wg.Wait()

	added, refused := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			added++
		case errors.Is(err, provisioner.ErrOutOfSeats):
			refused++
		default:
			t.Errorf("person %d: unexpected error %v", i, err)
		}
	}
	if added != seats || refused != people-seats {
		t.Fatalf("added %d and refused %d, want %d and %d",
			added, refused, seats, people-seats)
	}
	members, err := s.Members(t.Context(), "acme")
	if err != nil {
		t.Fatalf("Members: %v", err)
	}
	if len(members) != seats {
		t.Fatalf("Members: got %d, want %d", len(members), seats)
	}
	wantSeats(t, s, "acme", seats)
}

func testInvitationHoldsSeat(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	inv := provisioner.Invitation{OrgID: "acme",
		Email: "ivy@acme.example", CreatedAt: t0}
	if err := s.Invite(ctx, inv, 2); err != nil {
		t.Fatalf("Invite: %v", err)
	}
	got, err := s.Invitation(ctx, "acme", "ivy@acme.example")
	if err != nil {
		t.Fatalf("Invitation: %v", err)
	}
	if got.OrgID != inv.OrgID || got.Email != inv.Email {
		t.Errorf("Invitation = %+v, want %+v", got, inv)
	}
	sameTime(t, "invitation CreatedAt", got.CreatedAt, t0)
	wantSeats(t, s, "acme", 1)

	// the invitation holds one of the two seats
	mustAdd(t, s, member("acme", "bob@acme.example", 0), 2)
	_, err = s.AddMember(ctx, member("acme", "cy@acme.example", 0), 2)
	wantErr(t, "member beyond seats held by invitation", err,
		provisioner.ErrOutOfSeats)

	// the plan is full, and even shrank, yet Ivy takes her seat
	ivy := member("acme", "ivy@acme.example", time.Hour)
	ivy.Source = provisioner.SourceInvitation
	added := mustAdd(t, s, ivy, 1)
	ivy.ID = added.ID
	sameMember(t, added, ivy)
	_, err = s.Invitation(ctx, "acme", "ivy@acme.example")
	wantErr(t, "invitation after accepting it", err,
		provisioner.ErrNotFound)
	wantSeats(t, s, "acme", 2)
}

func testInvitationErrors(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	invite := func(email string, seats int) error {
		return s.Invite(ctx, provisioner.Invitation{OrgID: "acme",
			Email: email, CreatedAt: t0}, seats)
	}
	mustAdd(t, s, member("acme", "ann@acme.example", 0), 3)
	if err := invite("ivy@acme.example", 3); err != nil {
		t.Fatalf("Invite: %v", err)
	}

	wantErr(t, "inviting a member", invite("ann@acme.example", 3),
		provisioner.ErrExists)
	wantErr(t, "inviting twice", invite("ivy@acme.example", 3),
		provisioner.ErrExists)
	wantErr(t, "inviting beyond seats", invite("joe@acme.example", 2),
		provisioner.ErrOutOfSeats)
	_, err := s.Invitation(ctx, "acme", "joe@acme.example")
	wantErr(t, "invitation refused a seat", err, provisioner.ErrNotFound)
	wantSeats(t, s, "acme", 2)
}

func testLoweringSeats(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	var kept []provisioner.Member
	for i := range 5 {
		kept = append(kept, mustAdd(t, s, member("acme",
			fmt.Sprintf("p%d@acme.example", i),
			time.Duration(i)*time.Minute), 5))
	}

	// the organization now buys two seats: nobody is removed
	for _, m := range kept {
		got, err := s.Member(ctx, "acme", m.Email)
		if err != nil {
			t.Fatalf("Member(%s) after lowering seats: %v", m.Email, err)
		}
		sameMember(t, got, m)
		again := mustAdd(t, s, member("acme", m.Email, time.Hour), 2)
		if again.ID != m.ID {
			t.Fatalf("re-adding %s gave ID %s, want %s",
				m.Email, again.ID, m.ID)
		}
	}
	_, err := s.AddMember(ctx, member("acme", "new@acme.example", 0), 2)
	wantErr(t, "new member over lowered seats", err,
		provisioner.ErrOutOfSeats)
	wantSeats(t, s, "acme", 5)
}

func session(m provisioner.Member, hash string,
	seen time.Time) provisioner.Session {
	return provisioner.Session{
		IDHash:     hash,
		MemberID:   m.ID,
		OrgID:      m.OrgID,
		Email:      m.Email,
		Name:       m.Name,
		CreatedAt:  t0,
		LastSeenAt: seen,
		ExpiresAt:  t0.Add(12 * time.Hour),
	}
}

func mustCreate(t *testing.T, s provisioner.Store, sess provisioner.Session) {
	t.Helper()
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession(%s): %v", sess.IDHash, err)
	}
}

func sameSession(t *testing.T, got, want provisioner.Session) {
	t.Helper()
	if got.IDHash != want.IDHash || got.MemberID != want.MemberID ||
		got.OrgID != want.OrgID || got.Email != want.Email ||
		got.Name != want.Name {
		t.Errorf("session = %+v, want %+v", got, want)
	}
	sameTime(t, "session CreatedAt", got.CreatedAt, want.CreatedAt)
	sameTime(t, "session LastSeenAt", got.LastSeenAt, want.LastSeenAt)
	sameTime(t, "session ExpiresAt", got.ExpiresAt, want.ExpiresAt)
}

func testRemoveMember(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	ann := mustAdd(t, s, member("acme", "ann@acme.example", 0), 1)
	gus := mustAdd(t, s, member("globex", "gus@globex.example", 0), 1)
	mustCreate(t, s, session(ann, "ann-laptop", t0))
	mustCreate(t, s, session(ann, "ann-phone", t0))
	mustCreate(t, s, session(gus, "gus-laptop", t0))

	if err := s.RemoveMember(ctx, ann.ID); err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	_, err := s.Member(ctx, "acme", ann.Email)
	wantErr(t, "Member after removal", err, provisioner.ErrNotFound)
	_, err = s.MemberByID(ctx, ann.ID)
	wantErr(t, "MemberByID after removal", err, provisioner.ErrNotFound)
	for _, h := range []string{"ann-laptop", "ann-phone"} {
		_, err = s.Session(ctx, h)
		wantErr(t, "session of a removed member", err,
			provisioner.ErrNotFound)
	}
	if _, err := s.Session(ctx, "gus-laptop"); err != nil {
		t.Fatalf("another member's session after removal: %v", err)
	}
	wantSeats(t, s, "acme", 0)

	// the seat is free again
	mustAdd(t, s, member("acme", "bob@acme.example", 0), 1)
	wantErr(t, "removing twice", s.RemoveMember(ctx, ann.ID),
		provisioner.ErrNotFound)
	wantErr(t, "session for a removed member",
		s.CreateSession(ctx, session(ann, "ann-late", t0)),
		provisioner.ErrNotFound)
}

func testSessionLifecycle(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	ann := mustAdd(t, s, member("acme", "ann@acme.example", 0), 1)
	want := session(ann, "h1", t0)
	mustCreate(t, s, want)
	got, err := s.Session(ctx, "h1")
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	sameSession(t, got, want)

	later := t0.Add(90 * time.Minute)
	if err := s.TouchSession(ctx, "h1", later); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	want.LastSeenAt = later
	got, err = s.Session(ctx, "h1")
	if err != nil {
		t.Fatalf("Session after touch: %v", err)
	}
	sameSession(t, got, want)

	if err := s.DeleteSession(ctx, "h1"); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	_, err = s.Session(ctx, "h1")
	wantErr(t, "Session after delete", err, provisioner.ErrNotFound)
	if err := s.DeleteSession(ctx, "h1"); err != nil {
		t.Fatalf("DeleteSession twice: %v", err)
	}
	wantErr(t, "touching a deleted session",
		s.TouchSession(ctx, "h1", later), provisioner.ErrNotFound)
	if _, err := s.MemberByID(ctx, ann.ID); err != nil {
		t.Fatalf("member after ending a session: %v", err)
	}
}

func testDeleteExpired(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	now := t0.Add(6 * time.Hour)
	idleCutoff := now.Add(-2 * time.Hour)
	ann := mustAdd(t, s, member("acme", "ann@acme.example", 0), 1)

	live := session(ann, "live", now.Add(-time.Hour))
	ended := session(ann, "ended", now.Add(-time.Minute))
	ended.ExpiresAt = now.Add(-time.Second)
	idle := session(ann, "idle", idleCutoff.Add(-time.Second))
	for _, sess := range []provisioner.Session{live, ended, idle} {
		mustCreate(t, s, sess)
	}
	// the sweep judges keys by now, not by the wall clock
	for key, exp := range map[string]time.Time{
		"spent": now.Add(-time.Minute),
		"fresh": time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		if err := s.ConsumeOnce(ctx, key, exp); err != nil {
			t.Fatalf("ConsumeOnce(%s): %v", key, err)
		}
	}

	n, err := s.DeleteExpired(ctx, now, idleCutoff)
	if err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	if n != 3 {
		t.Errorf("DeleteExpired removed %d rows, want 3", n)
	}
	for _, h := range []string{"ended", "idle"} {
		_, err := s.Session(ctx, h)
		wantErr(t, h+" session after sweep", err, provisioner.ErrNotFound)
	}
	got, err := s.Session(ctx, "live")
	if err != nil {
		t.Fatalf("live session after sweep: %v", err)
	}
	sameSession(t, got, live)
	wantErr(t, "fresh key after sweep",
		s.ConsumeOnce(ctx, "fresh", now.Add(time.Hour)),
		provisioner.ErrReplayed)

	n, err = s.DeleteExpired(ctx, now, idleCutoff)
	if err != nil || n != 0 {
		t.Fatalf("second DeleteExpired = %d, %v; want 0, nil", n, err)
	}
}

func testConsumeOnce(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	// far from the wall clock on both sides
	future := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	past := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

	if err := s.ConsumeOnce(ctx, "assertion-1", future); err != nil {
		t.Fatalf("first use: %v", err)
	}
	wantErr(t, "replay", s.ConsumeOnce(ctx, "assertion-1", future),
		provisioner.ErrReplayed)
	if err := s.ConsumeOnce(ctx, "assertion-2", future); err != nil {
		t.Fatalf("another key: %v", err)
	}

	// a key whose record expired may be used again, once
	if err := s.ConsumeOnce(ctx, "assertion-3", past); err != nil {
		t.Fatalf("first use of an expiring key: %v", err)
	}
	if err := s.ConsumeOnce(ctx, "assertion-3", future); err != nil {
		t.Fatalf("use after the record expired: %v", err)
	}
	wantErr(t, "replay after renewal",
		s.ConsumeOnce(ctx, "assertion-3", future), provisioner.ErrReplayed)
}

func testConsumeOnceConcurrent(t *testing.T, s provisioner.Store) {
	const tries = 20
	future := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	errs := make([]error, tries)
	var wg sync.WaitGroup
	for i := range tries {
		wg.Go(func() {
			errs[i] = s.ConsumeOnce(t.Context(), "assertion", future)
		})
	}
	wg.Wait()

	used := 0
	for _, err := range errs {
		switch {
		case err == nil:
			used++
		case !errors.Is(err, provisioner.ErrReplayed):
			t.Errorf("unexpected error %v", err)
		}
	}
	if used != 1 {
		t.Fatalf("key accepted %d times, want once", used)
	}
}

func testSecretRace(t *testing.T, s provisioner.Store) {
	const callers = 10
	got := make([][]byte, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			got[i], errs[i] = s.Secret(t.Context(), "signing-key",
				func() ([]byte, error) {
					return fmt.Appendf(nil, "key-from-%d", i), nil
				})
		})
	}
	wg.Wait()

	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if string(got[i]) != string(got[0]) {
			t.Fatalf("caller %d got %q, caller 0 got %q",
				i, got[i], got[0])
		}
	}

	// later callers read it, and never create
	again, err := s.Secret(t.Context(), "signing-key",
		func() ([]byte, error) {
			return nil, errors.New("create called for a stored secret")
		})
	if err != nil || string(again) != string(got[0]) {
		t.Fatalf("Secret again = %q, %v; want %q", again, err, got[0])
	}
	other, err := s.Secret(t.Context(), "other-key",
		func() ([]byte, error) { return []byte("other"), nil })
	if err != nil || string(other) != "other" {
		t.Fatalf("another secret = %q, %v; want \"other\"", other, err)
	}

	// a failing create stores nothing
	boom := errors.New("no entropy")
	_, err = s.Secret(t.Context(), "third-key",
		func() ([]byte, error) { return nil, boom })
	wantErr(t, "Secret with failing create", err, boom)
	third, err := s.Secret(t.Context(), "third-key",
		func() ([]byte, error) { return []byte("third"), nil })
	if err != nil || string(third) != "third" {
		t.Fatalf("Secret after a failed create = %q, %v", third, err)
	}
}

func testRecordSignIn(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	ann := mustAdd(t, s, member("acme", "ann@acme.example", 0), 1)
	if !ann.LastSignInAt.IsZero() {
		t.Fatalf("new member's LastSignInAt = %v, want zero",
			ann.LastSignInAt)
	}
	for _, at := range []time.Time{t0.Add(time.Hour), t0.Add(3 * time.Hour)} {
		if err := s.RecordSignIn(ctx, ann.ID, at); err != nil {
			t.Fatalf("RecordSignIn: %v", err)
		}
		got, err := s.Member(ctx, "acme", "ann@acme.example")
		if err != nil {
			t.Fatalf("Member: %v", err)
		}
		ann.LastSignInAt = at
		sameMember(t, got, ann)
	}
}

func testMembersOrder(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	// added newest first: the list is by CreatedAt, not by insertion
	for _, m := range []provisioner.Member{
		member("acme", "cy@acme.example", 2*time.Hour),
		member("globex", "gus@globex.example", time.Hour),
		member("acme", "ann@acme.example", 0),
		member("acme", "bob@acme.example", time.Hour),
	} {
		mustAdd(t, s, m, 10)
	}
	got, err := s.Members(ctx, "acme")
	if err != nil {
		t.Fatalf("Members: %v", err)
	}
	var emails []string
	for _, m := range got {
		emails = append(emails, m.Email)
	}
	want := "[ann@acme.example bob@acme.example cy@acme.example]"
	if fmt.Sprint(emails) != want {
		t.Fatalf("Members = %v, want %s", emails, want)
	}

	none, err := s.Members(ctx, "initech")
	if err != nil || len(none) != 0 {
		t.Fatalf("Members of an empty org = %v, %v; want none", none, err)
	}
}

func testNotFound(t *testing.T, s provisioner.Store) {
	ctx := t.Context()
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"Member", func() error {
			_, err := s.Member(ctx, "acme", "nobody@acme.example")
			return err
		}},
		{"MemberByID", func() error {
			_, err := s.MemberByID(ctx, "no-such-id")
			return err
		}},
		{"Invitation", func() error {
			_, err := s.Invitation(ctx, "acme", "nobody@acme.example")
			return err
		}},
		{"RemoveMember", func() error {
			return s.RemoveMember(ctx, "no-such-id")
		}},
		{"RecordSignIn", func() error {
			return s.RecordSignIn(ctx, "no-such-id", t0)
		}},
		{"Session", func() error {
			_, err := s.Session(ctx, "no-such-hash")
			return err
		}},
		{"TouchSession", func() error {
			return s.TouchSession(ctx, "no-such-hash", t0)
		}},
		{"CreateSession", func() error {
			return s.CreateSession(ctx, session(provisioner.Member{
				ID: "no-such-id", OrgID: "acme"}, "h", t0))
		}},
	} {
		wantErr(t, c.name, c.call(), provisioner.ErrNotFound)
	}
	used, err := s.SeatsUsed(ctx, "acme")
	if err != nil || used != 0 {
		t.Fatalf("SeatsUsed of an empty store = %d, %v; want 0", used, err)
	}
}
