package storetest

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/arrowgate/arrowgate/provisioner"
)

// SessionCounter is a store that also counts live sessions by
// organization, for the gateway's active-sessions gauge.
type SessionCounter interface {
	provisioner.Store
	ActiveSessions(ctx context.Context, now,
		idleCutoff time.Time) (map[string]int, error)
}

// RunActiveSessions checks that s counts exactly the sessions that are
// neither past their end nor idle, by organization, and that the count
// agrees with what DeleteExpired keeps. s must be empty.
func RunActiveSessions(t *testing.T, s SessionCounter) {
	now := t0.Add(3 * time.Hour)
	idle := now.Add(-2 * time.Hour)
	sessions := []struct {
		org, hash     string
		seen, expires time.Time
	}{
		{"acme", "live", now.Add(-time.Minute), now.Add(time.Hour)},
		{"acme", "ended", now.Add(-time.Minute), now},
		{"acme", "idle", idle, now.Add(time.Hour)},
		{"globex", "one", now, now.Add(time.Hour)},
		{"globex", "two", idle.Add(time.Second), now.Add(time.Second)},
		{"initech", "gone", now.Add(-time.Minute), now.Add(-time.Second)},
	}
	for _, c := range sessions {
		m, err := s.AddMember(t.Context(),
			member(c.org, c.hash+"@"+c.org+".example", 0), 10)
		if err != nil {
			t.Fatalf("AddMember: %v", err)
		}
		err = s.CreateSession(t.Context(), provisioner.Session{
			IDHash: c.hash, MemberID: m.ID, OrgID: c.org, Email: m.Email,
			CreatedAt: c.seen, LastSeenAt: c.seen, ExpiresAt: c.expires,
		})
		if err != nil {
			t.Fatalf("CreateSession %s: %v", c.hash, err)
		}
	}

	want := map[string]int{"acme": 1, "globex": 2}
	got, err := s.ActiveSessions(t.Context(), now, idle)
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("ActiveSessions = %v, %v; want %v", got, err, want)
	}
	if _, err := s.DeleteExpired(t.Context(), now, idle); err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	got, err = s.ActiveSessions(t.Context(), now, idle)
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("after DeleteExpired: ActiveSessions = %v, %v; want %v",
			got, err, want)
	}
}
