package sqlite

import (
	"context"
	"time"
)

// ActiveSessions counts the live sessions of each organization: those
// whose absolute end is after now and that were last seen after
// idleCutoff, the sessions DeleteExpired would keep. Organizations
// without a live session are absent from the map.
func (s *Store) ActiveSessions(ctx context.Context, now,
	idleCutoff time.Time) (map[string]int, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT org_id, count(*)
		FROM sessions WHERE expires_at > ? AND last_seen_at > ?
		GROUP BY org_id`, nanos(now), nanos(idleCutoff))
	if err != nil {
		return nil, fail("counting active sessions", err)
	}
	defer rows.Close()

	counts := make(map[string]int)
	for rows.Next() {
		var org string
		var n int
		if err := rows.Scan(&org, &n); err != nil {
			return nil, fail("counting active sessions", err)
		}
		counts[org] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fail("counting active sessions", err)
	}
	return counts, nil
}
