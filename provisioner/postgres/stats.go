package postgres

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
	ctx, cancel, err := s.enter(ctx)
	if err != nil {
		return nil, fail("counting active sessions", err)
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, `
SELECT org_id, count(*) FROM sessions
WHERE expires_at > $1 AND last_seen_at > $2
GROUP BY org_id`, now, idleCutoff)
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
