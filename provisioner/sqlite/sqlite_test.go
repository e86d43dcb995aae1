package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/arrowgate/arrowgate/provisioner"
	"github.com/arrowgate/arrowgate/provisioner/storetest"
)

func openTemp(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) provisioner.Store {
		return openTemp(t, filepath.Join(t.TempDir(), "arrow.db"))
	})
}

// rawVersion reads PRAGMA user_version and journal_mode of a closed
// database file directly.
func rawVersion(t *testing.T, path string) (int, string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	var mode string
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	return v, mode
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "nested", "arrow.db")
	at := time.Date(2026, 3, 2, 9, 30, 0, 123456789, time.UTC)

	s := openTemp(t, path)
	ann, err := s.AddMember(t.Context(), provisioner.Member{
		OrgID: "acme", Email: "ann@acme.example", Name: "Ann",
		Source: provisioner.SourceJIT, CreatedAt: at,
	}, 1)
	if err != nil {
		t.Fatalf("AddMember: %v", err)
	}
	key, err := s.Secret(t.Context(), "cookie-key",
		func() ([]byte, error) { return []byte("k1"), nil })
	if err != nil {
		t.Fatalf("Secret: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// opening again neither re-runs nor repeats a migration
	for range 2 {
		s = openTemp(t, path)
		got, err := s.Member(t.Context(), "acme", "ann@acme.example")
		if err != nil {
			t.Fatalf("Member after reopening: %v", err)
		}
		if got.ID != ann.ID || !got.CreatedAt.Equal(at) {
			t.Fatalf("after reopening: %+v, want %+v", got, ann)
		}
		again, err := s.Secret(t.Context(), "cookie-key",
			func() ([]byte, error) { return []byte("k2"), nil })
		if err != nil || string(again) != string(key) {
			t.Fatalf("secret after reopening = %q, %v; want %q",
				again, err, key)
		}
		s.Close()
	}

	v, mode := rawVersion(t, path)
	if v != len(migrations) || mode != "wal" {
		t.Fatalf("schema version %d, journal %s; want %d, wal",
			v, mode, len(migrations))
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "arrow.db")
	openTemp(t, path).Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	newer := len(migrations) + 1
	_, err = db.Exec(fmt.Sprintf("PRAGMA user_version = %d", newer))
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	_, err = Open(t.Context(), path)
	var nse *NewerSchemaError
	if !errors.As(err, &nse) {
		t.Fatalf("Open of a newer database: got %v, want "+
			"NewerSchemaError", err)
	}
	want := fmt.Sprintf("opening %s: database schema version %d is "+
		"newer than this arrowgate knows (%d); upgrade arrowgate",
		path, newer, len(migrations))
	if err.Error() != want {
		t.Fatalf("error:\n got %s\nwant %s", err, want)
	}
	if v, _ := rawVersion(t, path); v != newer {
		t.Fatalf("refused database changed to version %d", v)
	}
}

func TestNotADatabaseIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "arrow.db")
	junk := []byte("this is a text file, not a database, " +
		"and it is long enough to fill a header page")
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(t.Context(), path); err == nil {
		s.Close()
		t.Fatal("Open accepted a file that is not a database")
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != string(junk) {
		t.Fatalf("Open changed the file it refused: %q, %v", got, err)
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "arrow.db"))
	s.Close()
	_, err := s.Member(t.Context(), "acme", "ann@acme.example")
	if !errors.Is(err, provisioner.ErrUnavailable) {
		t.Fatalf("Member on a closed store: got %v, want ErrUnavailable",
			err)
	}
}

// TestTwoProcessesShareSeats opens the file twice, as two gateway
// processes would, and races them for the last seats.
func TestTwoProcessesShareSeats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "arrow.db")
	stores := []*Store{openTemp(t, path), openTemp(t, path)}
	defer stores[0].Close()
	defer stores[1].Close()

	const people, seats = 100, 10
	errs := make([]error, people)
	var wg sync.WaitGroup
	for i := range people {
		wg.Go(func() {
			_, errs[i] = stores[i%2].AddMember(t.Context(),
				provisioner.Member{OrgID: "acme",
					Email:  fmt.Sprintf("p%d@acme.example", i),
					Source: provisioner.SourceJIT}, seats)
		})
	}
	wg.Wait()

	added := 0
	for i, err := range errs {
		switch {
		case err == nil:
			added++
		case !errors.Is(err, provisioner.ErrOutOfSeats):
			t.Errorf("person %d: %v", i, err)
		}
	}
	used, err := stores[1].SeatsUsed(t.Context(), "acme")
	if added != seats || err != nil || used != seats {
		t.Fatalf("added %d, seats used %d (%v); want %d",
			added, used, err, seats)
	}
}
