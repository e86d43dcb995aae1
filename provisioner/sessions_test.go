package provisioner_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/arrowgate/arrowgate/provisioner"
)

// signedIn returns a store holding Ann as a member, with Ann.
func signedIn(t testing.TB) (provisioner.Store, provisioner.Member,
	string) {
	t.Helper()
	store, path := openStore(t)
	ann, err := store.AddMember(t.Context(), provisioner.Member{
		OrgID: "acme", Email: "ann@acme.example", Name: "Ann",
		Source: provisioner.SourceJIT, CreatedAt: t0}, 5)
	if err != nil {
		t.Fatalf("AddMember: %v", err)
	}
	return store, ann, path
}

func start(t testing.TB, s *provisioner.Sessions,
	m provisioner.Member) string {
	t.Helper()
	id, _, err := s.Start(t.Context(), m)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return id
}

func wantLive(t *testing.T, s *provisioner.Sessions, id, when string) {
	t.Helper()
	if _, err := s.Check(t.Context(), id); err != nil {
		t.Fatalf("Check %s: %v, want a live session", when, err)
	}
}

func wantGone(t *testing.T, s *provisioner.Sessions, id, when string) {
	t.Helper()
	sess, err := s.Check(t.Context(), id)
	if !errors.Is(err, provisioner.ErrNotFound) {
		t.Fatalf("Check %s = %+v, %v; want ErrNotFound", when, sess, err)
	}
}

func TestSessionStartCheckEnd(t *testing.T) {
	store, ann, _ := signedIn(t)
	clk := newClock()
	s := provisioner.NewSessions(store, provisioner.SessionConfig{
		Now: clk.Now})

	id, started, err := s.Start(t.Context(), ann)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if len(id) != 43 || err != nil || len(raw) != 32 {
		t.Fatalf("session id %d chars (%v), want 43 base64url chars "+
			"of 32 bytes", len(id), err)
	}
	if !started.ExpiresAt.Equal(t0.Add(12*time.Hour)) ||
		started.Email != ann.Email || started.MemberID != ann.ID {
		t.Fatalf("started session = %+v", started)
	}

	clk.Advance(time.Minute)
	got, err := s.Check(t.Context(), id)
	if err != nil || got.MemberID != ann.ID || got.OrgID != "acme" ||
		got.Name != "Ann" {
		t.Fatalf("Check = %+v, %v", got, err)
	}
	wantGone(t, s, "", "of an empty id")
	wantGone(t, s, id+"x", "of an unknown id")

	// another gateway on the same store knows the session too
	other := provisioner.NewSessions(store, provisioner.SessionConfig{
		Now: clk.Now})
	wantLive(t, other, id, "on another instance")

	if err := s.End(t.Context(), id); err != nil {
		t.Fatalf("End: %v", err)
	}
	wantGone(t, s, id, "after End")
	fresh := provisioner.NewSessions(store, provisioner.SessionConfig{
		Now: clk.Now})
	wantGone(t, fresh, id, "after End, on a fresh instance")
}

func TestSessionIDFromRand(t *testing.T) {
	store, ann, _ := signedIn(t)
	s := provisioner.NewSessions(store, provisioner.SessionConfig{
		Now: newClock().Now, Rand: bytes.NewReader(make([]byte, 32))})
	if id := start(t, s, ann); id != strings.Repeat("A", 43) {
		t.Fatalf("session id from zero bytes = %q", id)
	}

	// the source is spent: no session without an id
	if _, _, err := s.Start(t.Context(), ann); err == nil {
		t.Fatal("Start without randomness made a session")
	}
}

func TestSessionStoresOnlyTheHash(t *testing.T) {
	store, ann, path := signedIn(t)
	s := provisioner.NewSessions(store, provisioner.SessionConfig{
		Now: newClock().Now})
	id := start(t, s, ann)

	got, err := store.Session(t.Context(), provisioner.HashSessionID(id))
	if err != nil || got.MemberID != ann.ID {
		t.Fatalf("store.Session(hash) = %+v, %v", got, err)
	}
	if _, err := store.Session(t.Context(), id); !errors.Is(err,
		provisioner.ErrNotFound) {
		t.Fatalf("store.Session(raw id) = %v, want ErrNotFound", err)
	}

	// the database and its write-ahead log never hold the raw id
	hash := []byte(provisioner.HashSessionID(id))
	sawHash := false
	for _, file := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(file)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(id)) {
			t.Fatalf("%s holds the raw session id", file)
		}
		sawHash = sawHash || bytes.Contains(b, hash)
	}
	if !sawHash {
		t.Fatal("the session hash is not in the files searched; " +
			"the search proves nothing")
	}
}

func TestSessionAbsoluteExpiry(t *testing.T) {
	store, ann, _ := signedIn(t)
	clk := newClock()
	s := provisioner.NewSessions(store, provisioner.SessionConfig{
		Now: clk.Now, Lifetime: 12 * time.Hour, Idle: 2 * time.Hour})
	id := start(t, s, ann)

	// used every hour, it still ends twelve hours after it started
	for range 11 {
		clk.Advance(time.Hour)
		wantLive(t, s, id, "while in use")
	}
	clk.Advance(59 * time.Minute)
	wantLive(t, s, id, "a minute before its end")
	clk.Advance(time.Minute)
	wantGone(t, s, id, "at its absolute end")

	_, err := store.Session(t.Context(), provisioner.HashSessionID(id))
	if !errors.Is(err, provisioner.ErrNotFound) {
		t.Fatalf("expired session left in the store: %v", err)
	}
}

func TestSessionIdleExpiry(t *testing.T) {
	store, ann, _ := signedIn(t)
	clk := newClock()
	cfg := provisioner.SessionConfig{Now: clk.Now,
		Lifetime: 12 * time.Hour, Idle: 2 * time.Hour}
	s := provisioner.NewSessions(store, cfg)
	id := start(t, s, ann)

	// each use pushes the idle end back
	for range 3 {
		clk.Advance(2*time.Hour - time.Minute)
		wantLive(t, s, id, "just before going idle")
	}

	// the use is stored: an instance with nothing cached agrees
	other := provisioner.NewSessions(store, cfg)
	clk.Advance(2*time.Hour - time.Minute)
	wantLive(t, other, id, "on another instance")

	clk.Advance(2 * time.Hour)
	wantGone(t, s, id, "after two idle hours")
	wantGone(t, other, id, "after two idle hours, elsewhere")
}

func TestSessionSweep(t *testing.T) {
	store, ann, _ := signedIn(t)
	clk := newClock()
	s := provisioner.NewSessions(store, provisioner.SessionConfig{
		Now: clk.Now, Idle: 2 * time.Hour})
	start(t, s, ann)
	start(t, s, ann)
	clk.Advance(90 * time.Minute)
	kept := start(t, s, ann)

	clk.Advance(time.Hour)
	n, err := s.Sweep(t.Context())
	if err != nil || n != 2 {
		t.Fatalf("Sweep = %d, %v; want the 2 idle sessions", n, err)
	}
	wantLive(t, s, kept, "after the sweep")
}

func TestRemovedMemberLosesSession(t *testing.T) {
	store, ann, _ := signedIn(t)
	clk := newClock()
	s := provisioner.NewSessions(store, provisioner.SessionConfig{
		Now: clk.Now, CacheTTL: time.Hour})
	id := start(t, s, ann)
	wantLive(t, s, id, "before removal")

	if err := s.RemoveMember(t.Context(), ann.ID); err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	wantGone(t, s, id, "right after removal here")
}

func TestRemovedElsewhereLosesSessionAfterTTL(t *testing.T) {
	store, ann, _ := signedIn(t)
	clk := newClock()
	const ttl = 50 * time.Millisecond
	here := provisioner.NewSessions(store, provisioner.SessionConfig{
		Now: clk.Now, CacheTTL: ttl})
	there := provisioner.NewSessions(store, provisioner.SessionConfig{
		Now: clk.Now})
	id := start(t, here, ann)
	wantLive(t, here, id, "before removal")

	if err := there.RemoveMember(t.Context(), ann.ID); err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	// the cache TTL runs on the wall clock; the test clock stands still
	deadline := time.Now().Add(100 * ttl)
	for {
		_, err := here.Check(t.Context(), id)
		if errors.Is(err, provisioner.ErrNotFound) {
			return
		}
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("session of a removed member still live %v "+
				"after removal, with a cache TTL of %v", 100*ttl, ttl)
		}
		time.Sleep(ttl / 5)
	}
}

func TestInvalidateDropsAtOnce(t *testing.T) {
	store, ann, _ := signedIn(t)
	clk := newClock()
	cfg := provisioner.SessionConfig{Now: clk.Now, CacheTTL: time.Hour}
	here := provisioner.NewSessions(store, cfg)
	there := provisioner.NewSessions(store, cfg)

	// a member removed elsewhere
	id := start(t, here, ann)
	if err := there.RemoveMember(t.Context(), ann.ID); err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	wantLive(t, here, id, "from the cache, before Invalidate")
	here.Invalidate(provisioner.Invalidation{MemberID: ann.ID})
	wantGone(t, here, id, "after Invalidate of the member")

	// a session ended elsewhere
	bob, err := store.AddMember(t.Context(), provisioner.Member{
		OrgID: "acme", Email: "bob@acme.example", CreatedAt: t0}, 5)
	if err != nil {
		t.Fatal(err)
	}
	id = start(t, here, bob)
	if err := there.End(t.Context(), id); err != nil {
		t.Fatalf("End: %v", err)
	}
	wantLive(t, here, id, "from the cache, before Invalidate")
	here.Invalidate(provisioner.Invalidation{
		SessionHash: provisioner.HashSessionID(id)})
	wantGone(t, here, id, "after Invalidate of the session")

	// notifications missed: everything cached goes
	cy, err := store.AddMember(t.Context(), provisioner.Member{
		OrgID: "acme", Email: "cy@acme.example", CreatedAt: t0}, 5)
	if err != nil {
		t.Fatal(err)
	}
	id = start(t, here, cy)
	if err := there.RemoveMember(t.Context(), cy.ID); err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	wantLive(t, here, id, "from the cache, before Invalidate")
	here.Invalidate(provisioner.Invalidation{All: true})
	wantGone(t, here, id, "after Invalidate of all")
}

// BenchmarkSessionsCheck measures the hot path: a live session whose
// session and member are cached, checked between two touches.
func BenchmarkSessionsCheck(b *testing.B) {
	store, ann, _ := signedIn(b)
	s := provisioner.NewSessions(store, provisioner.SessionConfig{
		Now: newClock().Now, CacheTTL: time.Hour})
	id := start(b, s, ann)

	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Check(b.Context(), id); err != nil {
			b.Fatal(err)
		}
	}
}
