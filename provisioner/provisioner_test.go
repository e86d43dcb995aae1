package provisioner_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/arrowgate/arrowgate/provisioner"
	"github.com/arrowgate/arrowgate/provisioner/sqlite"
)

// t0 is when the tests' clocks start.
var t0 = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

// openStore opens an empty SQLite store and returns it with the path of
// its file.
func openStore(t testing.TB) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "arrow.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// clock is a clock the test moves by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func org(plan provisioner.Plan, seats int, jit bool) provisioner.Org {
	return provisioner.Org{ID: "acme", Plan: plan, Seats: seats,
		Domains: []string{"acme.example"}, JIT: jit}
}

func TestSignIn(t *testing.T) {
	const ann = "ann@acme.example"
	for _, c := range []struct {
		name    string
		org     provisioner.Org
		members int  // others holding seats already
		invited bool // Ann has a pending invitation
		member  bool // Ann is a member already
		want    provisioner.Outcome
		err     error
		seats   int // seats used afterwards
	}{
		{name: "member of a team plan gets in",
			org: org(provisioner.Team, 5, false), member: true,
			want: provisioner.OutcomeMember, seats: 1},
		{name: "member gets in when the plan is over-full",
			org: org(provisioner.Business, 2, true), members: 4,
			member: true, want: provisioner.OutcomeMember, seats: 5},
		{name: "invited gets in with jit off",
			org: org(provisioner.Team, 5, false), invited: true,
			want: provisioner.OutcomeInvited, seats: 1},
		{name: "invited gets in when the plan is full",
			org: org(provisioner.Starter, 3, false), members: 2,
			invited: true, want: provisioner.OutcomeInvited, seats: 3},
		{name: "stranger with jit off",
			org: org(provisioner.Business, 5, false),
			err: provisioner.ErrNotInvited},
		{name: "stranger on starter with jit forced",
			org: org(provisioner.Starter, 5, true),
			err: provisioner.ErrNotInvited},
		{name: "stranger on team with jit forced",
			org: org(provisioner.Team, 5, true),
			err: provisioner.ErrNotInvited},
		{name: "stranger on business with a free seat",
			org: org(provisioner.Business, 5, true), members: 4,
			want: provisioner.OutcomeProvisioned, seats: 5},
		{name: "stranger on omnix with a free seat",
			org:  org(provisioner.Omnix, 1, true),
			want: provisioner.OutcomeProvisioned, seats: 1},
		{name: "stranger on a full plan",
			org: org(provisioner.Omnix, 3, true), members: 3,
			err: provisioner.ErrOutOfSeats, seats: 3},
		{name: "stranger on a zero-seat plan",
			org: org(provisioner.Business, 0, true),
			err: provisioner.ErrOutOfSeats},
	} {
		t.Run(c.name, func(t *testing.T) {
			store, _ := openStore(t)
			clk := newClock()
			p := &provisioner.Provisioner{Store: store, Now: clk.Now}
			seed(t, store, c.org.ID, c.members, c.member, c.invited)
			clk.Advance(time.Hour)

			m, outcome, err := p.SignIn(t.Context(), c.org, ann, "Ann")
			if !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
				t.Fatalf("SignIn error = %v, want %v", err, c.err)
			}
			if outcome != c.want {
				t.Errorf("outcome = %q, want %q", outcome, c.want)
			}
			checkSignedIn(t, store, c.org.ID, m, err, clk.Now())
			used, err := store.SeatsUsed(t.Context(), c.org.ID)
			if err != nil || used != c.seats {
				t.Errorf("seats used = %d, %v; want %d", used, err, c.seats)
			}
		})
	}
}

// seed adds n other members, and Ann as a member or invited.
func seed(t *testing.T, s provisioner.Store, orgID string, n int,
	member, invited bool) {
	t.Helper()
	ctx := t.Context()
	for i := range n {
		_, err := s.AddMember(ctx, provisioner.Member{OrgID: orgID,
			Email:     fmt.Sprintf("p%d@acme.example", i),
			Source:    provisioner.SourceSync,
			CreatedAt: t0}, n)
		if err != nil {
			t.Fatal(err)
		}
	}
	if member {
		_, err := s.AddMember(ctx, provisioner.Member{OrgID: orgID,
			Email: "ann@acme.example", Name: "Ann",
			Source: provisioner.SourceSync, CreatedAt: t0}, n+1)
		if err != nil {
			t.Fatal(err)
		}
	}
	if invited {
		err := s.Invite(ctx, provisioner.Invitation{OrgID: orgID,
			Email: "ann@acme.example", CreatedAt: t0}, n+1)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// checkSignedIn checks that a signed-in member is stored with the
// sign-in time, and that a refused person was not added.
func checkSignedIn(t *testing.T, s provisioner.Store, orgID string,
	m provisioner.Member, signInErr error, now time.Time) {
	t.Helper()
	stored, err := s.Member(t.Context(), orgID, "ann@acme.example")
	if signInErr != nil {
		if !errors.Is(err, provisioner.ErrNotFound) {
			t.Errorf("refused person stored as %+v, %v", stored, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("signed-in member not stored: %v", err)
	}
	if stored.ID != m.ID || m.Email != "ann@acme.example" {
		t.Errorf("SignIn returned %+v, store has %+v", m, stored)
	}
	if !m.LastSignInAt.Equal(now) || !stored.LastSignInAt.Equal(now) {
		t.Errorf("last sign-in = %v (stored %v), want %v",
			m.LastSignInAt, stored.LastSignInAt, now)
	}
	_, err = s.Invitation(t.Context(), orgID, "ann@acme.example")
	if !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("invitation still pending after sign-in: %v", err)
	}
}

func TestSignInSource(t *testing.T) {
	store, _ := openStore(t)
	p := &provisioner.Provisioner{Store: store, Now: newClock().Now}
	o := org(provisioner.Business, 5, true)
	if err := p.Invite(t.Context(), o, "ivy@acme.example"); err != nil {
		t.Fatalf("Invite: %v", err)
	}
	for email, want := range map[string]provisioner.Source{
		"ivy@acme.example": provisioner.SourceInvitation,
		"jo@acme.example":  provisioner.SourceJIT,
	} {
		m, _, err := p.SignIn(t.Context(), o, email, "")
		if err != nil || m.Source != want {
			t.Errorf("SignIn(%s) source = %q, %v; want %q",
				email, m.Source, err, want)
		}
	}
}

func TestInviteErrors(t *testing.T) {
	store, _ := openStore(t)
	p := &provisioner.Provisioner{Store: store, Now: newClock().Now}
	o := org(provisioner.Team, 1, false)
	if err := p.Invite(t.Context(), o, "ivy@acme.example"); err != nil {
		t.Fatalf("Invite: %v", err)
	}
	err := p.Invite(t.Context(), o, "ivy@acme.example")
	if !errors.Is(err, provisioner.ErrExists) {
		t.Errorf("inviting twice: %v, want ErrExists", err)
	}
	err = p.Invite(t.Context(), o, "jo@acme.example")
	if !errors.Is(err, provisioner.ErrOutOfSeats) {
		t.Errorf("inviting beyond seats: %v, want ErrOutOfSeats", err)
	}
}

func TestSignInConcurrentFirstSignIns(t *testing.T) {
	const people, seats = 200, 20
	store, _ := openStore(t)
	p := &provisioner.Provisioner{Store: store, Now: newClock().Now}
	o := org(provisioner.Business, seats, true)

	outcomes := make([]provisioner.Outcome, people)
	errs := make([]error, people)
	var wg sync.WaitGroup
	for i := range people {
		wg.Go(func() {
			email := fmt.Sprintf("p%03d@acme.example", i)
			_, outcomes[i], errs[i] = p.SignIn(t.Context(), o, email, "")
		})
	}
	wg.Wait()

	provisioned, refused := 0, 0
	for i := range people {
		switch {
		case errs[i] == nil &&
			outcomes[i] == provisioner.OutcomeProvisioned:
			provisioned++
		case errors.Is(errs[i], provisioner.ErrOutOfSeats):
			refused++
		default:
			t.Errorf("person %d: %q, %v", i, outcomes[i], errs[i])
		}
	}
	members, err := store.Members(t.Context(), "acme")
	if provisioned != seats || refused != people-seats ||
		err != nil || len(members) != seats {
		t.Fatalf("provisioned %d, refused %d, members %d (%v); "+
			"want %d, %d, %d", provisioned, refused, len(members), err,
			seats, people-seats, seats)
	}
}

func TestSignInAfterLoweringSeats(t *testing.T) {
	store, _ := openStore(t)
	p := &provisioner.Provisioner{Store: store, Now: newClock().Now}
	o := org(provisioner.Omnix, 5, true)
	emails := make([]string, 5)
	for i := range emails {
		emails[i] = fmt.Sprintf("p%d@acme.example", i)
		if _, _, err := p.SignIn(t.Context(), o, emails[i], ""); err != nil {
			t.Fatalf("first sign-in of %s: %v", emails[i], err)
		}
	}

	o.Seats = 2
	for _, email := range emails {
		_, outcome, err := p.SignIn(t.Context(), o, email, "")
		if err != nil || outcome != provisioner.OutcomeMember {
			t.Errorf("%s after seats were lowered: %q, %v",
				email, outcome, err)
		}
	}
	_, _, err := p.SignIn(t.Context(), o, "new@acme.example", "")
	if !errors.Is(err, provisioner.ErrOutOfSeats) {
		t.Errorf("newcomer after seats were lowered: %v, want "+
			"ErrOutOfSeats", err)
	}
}
