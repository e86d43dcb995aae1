package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/arrowgate/arrowgate/internal/faultproxy"
	"github.com/arrowgate/arrowgate/provisioner"
	"github.com/arrowgate/arrowgate/provisioner/storetest"
)

// testDSN returns the database the tests use, from ARROW_TEST_POSTGRES.
// Without one, or when it does not answer, the test fails under CI and
// is skipped elsewhere.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("ARROW_TEST_POSTGRES")
	if dsn == "" {
		missing(t, "ARROW_TEST_POSTGRES is not set")
	}
	if err := reachable(dsn); err != nil {
		missing(t, fmt.Sprintf("ARROW_TEST_POSTGRES does not answer: %v",
			err))
	}
	return dsn
}

func missing(t testing.TB, why string) {
	t.Helper()
	const how = " (set it to a DSN such as " +
		"postgres://postgres@127.0.0.1:5432/test)"
	if os.Getenv("CI") == "true" {
		t.Fatal("CI needs PostgreSQL: " + why + how)
	}
	t.Skip("SKIPPING the PostgreSQL store tests: " + why + how)
}

var reachableOnce sync.Map // dsn → error

func reachable(dsn string) error {
	if err, ok := reachableOnce.Load(dsn); ok {
		return errOrNil(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		err = conn.Close(ctx)
	}
	reachableOnce.Store(dsn, err)
	return err
}

func errOrNil(v any) error {
	err, _ := v.(error)
	return err
}

// freshSchema returns the name of a schema no other run uses, dropped
// with everything in it when the test ends.
func freshSchema(t testing.TB, dsn string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	schema := "arrowtest_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		exec(t, dsn, "DROP SCHEMA IF EXISTS "+
			pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})
	return schema
}

// exec runs one statement on a connection of its own.
func exec(t testing.TB, dsn, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("running %q: %v", sql, err)
	}
}

// queryInt runs a query returning one integer.
func queryInt(t testing.TB, dsn, sql string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("running %q: %v", sql, err)
	}
	return n
}

// openStore opens a store on schema, closed when the test ends.
func openStore(t testing.TB, dsn, schema string, opts Options) *Store {
	t.Helper()
	opts.Schema = schema
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t,
			zaptest.Level(zap.InfoLevel))
	}
	s, err := Open(t.Context(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// viaProxy returns dsn with its host and port replaced by addr, and
// without TLS so that the proxy can see the statements.
func viaProxy(t testing.TB, dsn, addr string) string {
	t.Helper()
	u := dsnURL(t, dsn)
	u.Host = addr
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String()
}

// target returns the host:port of the database dsn names.
func target(t testing.TB, dsn string) string {
	t.Helper()
	u := dsnURL(t, dsn)
	if u.Port() == "" {
		return u.Host + ":5432"
	}
	return u.Host
}

func dsnURL(t testing.TB, dsn string) *url.URL {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Fatalf("ARROW_TEST_POSTGRES must be a postgres:// URL for "+
			"this test, got %q", dsn)
	}
	return u
}

func TestConformance(t *testing.T) {
	dsn := testDSN(t)
	storetest.Run(t, func(t *testing.T) provisioner.Store {
		return openStore(t, dsn, freshSchema(t, dsn), Options{})
	})
}

func TestConcurrentOpensMigrateOnce(t *testing.T) {
	dsn := testDSN(t)
	schema := freshSchema(t, dsn)

	const instances = 5
	took := make([]time.Duration, instances)
	errs := make([]error, instances)
	stores := make([]*Store, instances)
	var wg sync.WaitGroup
	for i := range instances {
		wg.Go(func() {
			start := time.Now()
			stores[i], errs[i] = Open(t.Context(), dsn,
				Options{Schema: schema})
			took[i] = time.Since(start)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	t.Logf("5 concurrent Opens of a fresh schema took %v", took)

	table := pgx.Identifier{schema, "schema_version"}.Sanitize()
	rows := queryInt(t, dsn, "SELECT count(*) FROM "+table)
	distinct := queryInt(t, dsn,
		"SELECT count(DISTINCT version) FROM "+table)
	if rows != len(migrations) || distinct != len(migrations) {
		t.Fatalf("schema_version holds %d rows, %d versions; want %d "+
			"of each", rows, distinct, len(migrations))
	}

	// every instance works on the one schema
	for i, s := range stores {
		m := provisioner.Member{OrgID: "acme", Source: "jit",
			Email: fmt.Sprintf("p%d@acme.example", i)}
		if _, err := s.AddMember(t.Context(), m, instances); err != nil {
			t.Fatalf("AddMember on instance %d: %v", i, err)
		}
	}
	used, err := stores[0].SeatsUsed(t.Context(), "acme")
	if err != nil || used != instances {
		t.Fatalf("SeatsUsed = %d, %v; want %d", used, err, instances)
	}

	start := time.Now()
	again := openStore(t, dsn, schema, Options{})
	t.Logf("Open of an up-to-date schema took %v", time.Since(start))
	if _, err := again.Member(t.Context(), "acme",
		"p0@acme.example"); err != nil {
		t.Fatalf("Member after reopening: %v", err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dsn := testDSN(t)
	newer := len(migrations) + 1
	want := fmt.Sprintf("database schema version %d is newer than this "+
		"arrowgate knows (%d); upgrade arrowgate", newer, len(migrations))

	t.Run("AtStart", func(t *testing.T) {
		schema := freshSchema(t, dsn)
		openStore(t, dsn, schema, Options{})
		bumpVersion(t, dsn, schema, newer)

		s, err := Open(t.Context(), dsn, Options{Schema: schema})
		if err == nil {
			s.Close()
			t.Fatal("Open accepted a newer schema")
		}
		var ne *NewerSchemaError
		if !errors.As(err, &ne) || ne.Version != newer {
			t.Fatalf("Open: got %v, want a *NewerSchemaError", err)
		}
		if ne.Error() != want {
			t.Fatalf("message = %q, want %q", ne.Error(), want)
		}
	})

	t.Run("WhenTheDatabaseReturns", func(t *testing.T) {
		schema := freshSchema(t, dsn)
		openStore(t, dsn, schema, Options{})
		bumpVersion(t, dsn, schema, newer)
		p := faultproxy.New(t, target(t, dsn), false)
		s := openStore(t, viaProxy(t, dsn, p.Addr()), schema, Options{})

		p.Up(t)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		var ne *NewerSchemaError
		if err := s.Ready(ctx); !errors.As(err, &ne) {
			t.Fatalf("Ready: got %v, want a *NewerSchemaError", err)
		}
		_, err := s.Member(t.Context(), "acme", "ann@acme.example")
		if !errors.Is(err, provisioner.ErrUnavailable) ||
			!errors.As(err, &ne) {
			t.Fatalf("Member on a newer schema: got %v, want "+
				"ErrUnavailable with the schema message", err)
		}
	})
}

func bumpVersion(t *testing.T, dsn, schema string, v int) {
	t.Helper()
	exec(t, dsn, "INSERT INTO "+
		pgx.Identifier{schema, "schema_version"}.Sanitize()+
		" (version) VALUES ($1)", v)
}

func TestSeatsAcrossInstances(t *testing.T) {
	dsn := testDSN(t)
	schema := freshSchema(t, dsn)
	const instances, people, seats = 3, 500, 100
	var stores []*Store
	for range instances {
		stores = append(stores, openStore(t, dsn, schema, Options{}))
	}

	var added, refused atomic.Int32
	errs := make(chan error, people)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range people {
		wg.Go(func() {
			m := provisioner.Member{OrgID: "acme", Source: "jit",
				Email: fmt.Sprintf("p%03d@acme.example", i)}
			_, err := stores[i%instances].AddMember(t.Context(), m, seats)
			switch {
			case err == nil:
				added.Add(1)
			case errors.Is(err, provisioner.ErrOutOfSeats):
				refused.Add(1)
			default:
				errs <- err
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		t.Errorf("unexpected error: %v", err)
	}
	t.Logf("%d concurrent AddMember over %d instances for %d seats "+
		"took %v", people, instances, seats, took)

	if added.Load() != seats || refused.Load() != people-seats {
		t.Fatalf("added %d, refused %d; want %d and %d", added.Load(),
			refused.Load(), seats, people-seats)
	}
	for i, s := range stores {
		members, err := s.Members(t.Context(), "acme")
		if err != nil || len(members) != seats {
			t.Fatalf("instance %d sees %d members (%v), want %d",
				i, len(members), err, seats)
		}
	}
}

func TestSharedAcrossInstances(t *testing.T) {
	dsn := testDSN(t)
	schema := freshSchema(t, dsn)
	var stores []*Store
	for range 3 {
		stores = append(stores, openStore(t, dsn, schema, Options{}))
	}
	future := time.Now().Add(time.Hour)

	for _, c := range []struct {
		name string
		call func(s *Store, i int) (string, error)
		want func(t *testing.T, results []string, errs []error)
	}{
		{
			name: "AssertionAcceptedOnce",
			call: func(s *Store, i int) (string, error) {
				return "", s.ConsumeOnce(t.Context(), "id-1", future)
			},
			want: func(t *testing.T, _ []string, errs []error) {
				accepted := 0
				for _, err := range errs {
					switch {
					case err == nil:
						accepted++
					case !errors.Is(err, provisioner.ErrReplayed):
						t.Errorf("unexpected error %v", err)
					}
				}
				if accepted != 1 {
					t.Fatalf("assertion accepted %d times, want once",
						accepted)
				}
			},
		},
		{
			name: "OneServiceProviderKey",
			call: func(s *Store, i int) (string, error) {
				v, err := s.Secret(t.Context(), "sp-key",
					func() ([]byte, error) {
						return fmt.Appendf(nil, "key-%d", i), nil
					})
				return string(v), err
			},
			want: func(t *testing.T, keys []string, errs []error) {
				for i := range keys {
					if errs[i] != nil || keys[i] != keys[0] {
						t.Fatalf("caller %d got %q, %v; caller 0 got %q",
							i, keys[i], errs[i], keys[0])
					}
				}
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			const callers = 30
			results := make([]string, callers)
			errs := make([]error, callers)
			var wg sync.WaitGroup
			for i := range callers {
				wg.Go(func() {
					results[i], errs[i] = c.call(stores[i%3], i)
				})
			}
			wg.Wait()
			c.want(t, results, errs)
		})
	}
}

// listener runs Listen on s and hands what it hears to a channel. It
// returns once the listener is known to hear notifications.
func listener(t *testing.T, s *Store,
	dsn string) <-chan provisioner.Invalidation {
	t.Helper()
	heard := make(chan provisioner.Invalidation, 64)
	ctx, cancel := context.WithCancel(t.Context())
	ended := make(chan error, 1)
	go func() {
		ended <- s.Listen(ctx, func(inv provisioner.Invalidation) {
			heard <- inv
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ended:
			if err != nil {
				t.Errorf("Listen returned %v after its context ended",
					err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Listen still running 5s after its context ended")
		}
	})
	awaitListening(t, s, dsn, heard)
	return heard
}

// awaitListening sends probes on the store's channel until one is
// heard, so that a test knows LISTEN is in place.
func awaitListening(t *testing.T, s *Store, dsn string,
	heard <-chan provisioner.Invalidation) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		exec(t, dsn, "SELECT pg_notify($1, $2)", s.channel,
			`{"m":"probe"}`)
		select {
		case inv := <-heard:
			if inv.MemberID == "probe" {
				drain(t, heard)
				return
			}
			t.Fatalf("heard %+v before anything happened", inv)
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatal("the listener heard no probe in 15s")
}

// drain empties heard of the extra probes.
func drain(t *testing.T, heard <-chan provisioner.Invalidation) {
	t.Helper()
	for {
		select {
		case inv := <-heard:
			if inv.MemberID != "probe" {
				t.Fatalf("heard %+v before anything happened", inv)
			}
		case <-time.After(100 * time.Millisecond):
			return
		}
	}
}

// await returns the next invalidation heard, failing after 1s.
func await(t *testing.T, heard <-chan provisioner.Invalidation,
	what string) (provisioner.Invalidation, time.Duration) {
	t.Helper()
	start := time.Now()
	select {
	case inv := <-heard:
		return inv, time.Since(start)
	case <-time.After(time.Second):
		t.Fatalf("%s: nothing heard within 1s", what)
	}
	return provisioner.Invalidation{}, 0
}

// memberWithSession adds a member and a session of theirs through s.
func memberWithSession(t *testing.T, s *Store, email,
	hash string) provisioner.Member {
	t.Helper()
	ctx := t.Context()
	m, err := s.AddMember(ctx, provisioner.Member{OrgID: "acme",
		Email: email, Source: "jit"}, 100)
	if err != nil {
		t.Fatalf("AddMember: %v", err)
	}
	now := time.Now()
	err = s.CreateSession(ctx, provisioner.Session{IDHash: hash,
		MemberID: m.ID, OrgID: m.OrgID, Email: m.Email, CreatedAt: now,
		LastSeenAt: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return m
}

func TestListenAcrossInstances(t *testing.T) {
	dsn := testDSN(t)
	schema := freshSchema(t, dsn)
	here := openStore(t, dsn, schema, Options{})
	there := openStore(t, dsn, schema, Options{})
	heard := listener(t, here, dsn)
	ctx := t.Context()

	// another deployment's schema on the same database stays silent
	other := openStore(t, dsn, freshSchema(t, dsn), Options{})
	bob := memberWithSession(t, other, "bob@acme.example", "bob-laptop")
	if err := other.RemoveMember(ctx, bob.ID); err != nil {
		t.Fatalf("RemoveMember in another schema: %v", err)
	}

	ann := memberWithSession(t, there, "ann@acme.example", "ann-laptop")
	start := time.Now()
	if err := there.RemoveMember(ctx, ann.ID); err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	inv, _ := await(t, heard, "member removed on another instance")
	latency := time.Since(start)
	if inv != (provisioner.Invalidation{MemberID: ann.ID}) {
		t.Fatalf("first heard %+v, want the member %s", inv, ann.ID)
	}
	t.Logf("a removal reached the other instance in %v", latency)
	inv, _ = await(t, heard, "session ended with its member")
	if inv.SessionHash != "ann-laptop" {
		t.Fatalf("then heard %+v, want session ann-laptop", inv)
	}

	// a removal that fails tells nobody; an ended session does
	if err := there.RemoveMember(ctx, ann.ID); !errors.Is(err,
		provisioner.ErrNotFound) {
		t.Fatalf("removing twice: %v", err)
	}
	cy := memberWithSession(t, there, "cy@acme.example", "cy-phone")
	start = time.Now()
	if err := there.DeleteSession(ctx, "cy-phone"); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	inv, _ = await(t, heard, "session ended on another instance")
	latency = time.Since(start)
	if inv != (provisioner.Invalidation{SessionHash: "cy-phone"}) {
		t.Fatalf("heard %+v, want only session cy-phone", inv)
	}
	t.Logf("an ended session reached the other instance in %v", latency)
	if err := there.DeleteSession(ctx, "cy-phone"); err != nil {
		t.Fatalf("DeleteSession twice: %v", err)
	}
	if _, err := here.MemberByID(ctx, cy.ID); err != nil {
		t.Fatalf("member after ending their session: %v", err)
	}
	select {
	case inv := <-heard:
		t.Fatalf("heard %+v for nothing", inv)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestListenReconnects(t *testing.T) {
	dsn := testDSN(t)
	schema := freshSchema(t, dsn)
	here := openStore(t, dsn, schema, Options{})
	there := openStore(t, dsn, schema, Options{})
	heard := listener(t, here, dsn)

	// the server ends the listener's connection, as in a restart
	listen := "LISTEN " + pgx.Identifier{here.channel}.Sanitize()
	killed := queryInt(t, dsn, `
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE query = $1`, listen)
	if killed != 1 {
		t.Fatalf("terminated %d listener connections, want 1", killed)
	}
	// what happened while it was away is unknown: caches must go whole
	if inv, _ := await(t, heard, "reconnection"); !inv.All {
		t.Fatalf("after reconnecting heard %+v, want All", inv)
	}
	awaitListening(t, here, dsn, heard)

	ann := memberWithSession(t, there, "ann@acme.example", "ann-laptop")
	if err := there.RemoveMember(t.Context(), ann.ID); err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	inv, _ := await(t, heard, "removal after reconnecting")
	if inv.MemberID != ann.ID {
		t.Fatalf("heard %+v, want member %s", inv, ann.ID)
	}
}

func TestConnectionCutMidAddMember(t *testing.T) {
	dsn := testDSN(t)
	schema := freshSchema(t, dsn)
	p := faultproxy.New(t, target(t, dsn), true)
	s := openStore(t, viaProxy(t, dsn, p.Addr()), schema, Options{})
	direct := openStore(t, dsn, schema, Options{})
	ctx := t.Context()
	ann := provisioner.Member{OrgID: "acme", Email: "ann@acme.example",
		Source: "jit"}

	// the org row is locked and the seat counted when the member's
	// INSERT is about to go: the connection dies there
	cut := p.CutOn("INSERT INTO members")
	_, err := s.AddMember(ctx, ann, 1)
	select {
	case <-cut:
	default:
		t.Fatalf("the connection was not cut; AddMember gave %v", err)
	}
	if !errors.Is(err, provisioner.ErrUnavailable) {
		t.Fatalf("AddMember cut short: got %v, want ErrUnavailable", err)
	}

	_, err = direct.Member(ctx, "acme", ann.Email)
	if !errors.Is(err, provisioner.ErrNotFound) {
		t.Fatalf("member after the cut: got %v, want ErrNotFound", err)
	}
	used, err := direct.SeatsUsed(ctx, "acme")
	if err != nil || used != 0 {
		t.Fatalf("seats used after the cut = %d, %v; want 0", used, err)
	}

	// the person tries again and gets the one seat
	start := time.Now()
	m, err := s.AddMember(ctx, ann, 1)
	if err != nil {
		t.Fatalf("AddMember again: %v", err)
	}
	t.Logf("the retry took %v", time.Since(start))
	got, err := direct.Member(ctx, "acme", ann.Email)
	if err != nil || got.ID != m.ID {
		t.Fatalf("member after retry = %+v, %v; want %s", got, err, m.ID)
	}
}

func TestUnreachableAtStart(t *testing.T) {
	dsn := testDSN(t)
	schema := freshSchema(t, dsn)
	p := faultproxy.New(t, target(t, dsn), false)

	start := time.Now()
	s := openStore(t, viaProxy(t, dsn, p.Addr()), schema, Options{})
	t.Logf("Open with the database out of reach took %v",
		time.Since(start))
	wantUnavailable(t, s, time.Second)

	p.Up(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start = time.Now()
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("Ready after the database came: %v", err)
	}
	t.Logf("the background retry migrated %v after the database came",
		time.Since(start))
	addAnn(t, s)
}

func TestSilentDatabase(t *testing.T) {
	dsn := testDSN(t)
	addr := silentServer(t)
	start := time.Now()
	s := openStore(t, viaProxy(t, dsn, addr), freshSchema(t, dsn),
		Options{ConnectTimeout: 300 * time.Millisecond})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Open waited %v for a silent database", took)
	}
	wantUnavailable(t, s, 2*time.Second)
}

func TestDatabaseLostAndBack(t *testing.T) {
	dsn := testDSN(t)
	p := faultproxy.New(t, target(t, dsn), true)
	s := openStore(t, viaProxy(t, dsn, p.Addr()), freshSchema(t, dsn),
		Options{})
	addAnn(t, s)

	p.Down()
	wantUnavailable(t, s, time.Second)

	p.Up(t)
	if _, err := s.Member(t.Context(), "acme",
		"ann@acme.example"); err != nil {
		t.Fatalf("Member after the database came back: %v", err)
	}
	m := provisioner.Member{OrgID: "acme", Email: "bob@acme.example",
		Source: "jit"}
	if _, err := s.AddMember(t.Context(), m, 2); err != nil {
		t.Fatalf("AddMember after the database came back: %v", err)
	}
}

// wantUnavailable checks that a read and a seat both fail with
// ErrUnavailable, each within limit.
func wantUnavailable(t *testing.T, s *Store, limit time.Duration) {
	t.Helper()
	ctx := t.Context()
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"Member", func() error {
			_, err := s.Member(ctx, "acme", "ann@acme.example")
			return err
		}},
		{"AddMember", func() error {
			_, err := s.AddMember(ctx, provisioner.Member{OrgID: "acme",
				Email: "ann@acme.example", Source: "jit"}, 1)
			return err
		}},
	} {
		start := time.Now()
		err := c.call()
		took := time.Since(start)
		if !errors.Is(err, provisioner.ErrUnavailable) {
			t.Fatalf("%s: got %v, want ErrUnavailable", c.name, err)
		}
		if took > limit {
			t.Errorf("%s took %v to fail, want under %v", c.name, took,
				limit)
		}
		t.Logf("%s failed in %v: %v", c.name, took, err)
	}
}

func addAnn(t *testing.T, s *Store) {
	t.Helper()
	m, err := s.AddMember(t.Context(), provisioner.Member{OrgID: "acme",
		Email: "ann@acme.example", Source: "jit"}, 1)
	if err != nil {
		t.Fatalf("AddMember: %v", err)
	}
	got, err := s.MemberByID(t.Context(), m.ID)
	if err != nil || got.Email != m.Email {
		t.Fatalf("MemberByID = %+v, %v; want %s", got, err, m.Email)
	}
}

// BenchmarkAddMember adds new members to one organization from 8
// goroutines per CPU, through one store or three sharing the schema,
// and reports additions per second. Every addition holds the
// organization's lock until its commit is on disk, so one
// organization's rate is bound by the commit latency.
func BenchmarkAddMember(b *testing.B) {
	dsn := testDSN(b)
	for _, instances := range []int{1, 3} {
		b.Run(fmt.Sprintf("instances=%d", instances), func(b *testing.B) {
			schema := freshSchema(b, dsn)
			var stores []*Store
			for range instances {
				stores = append(stores, openStore(b, dsn, schema, Options{}))
			}
			var next atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := next.Add(1)
					s := stores[int(n)%instances]
					m := provisioner.Member{OrgID: "acme", Source: "jit",
						Email: fmt.Sprintf("p%d@acme.example", n)}
					if _, err := s.AddMember(b.Context(), m,
						1<<30); err != nil {
						b.Errorf("AddMember: %v", err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(),
				"adds/s")
		})
	}
}
