package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/arrowgate/arrowgate/provisioner"
)

// notice is the JSON payload of an invalidation: small, well under
// PostgreSQL's 8000-byte limit.
type notice struct {
	MemberID    string `json:"m,omitempty"`
	SessionHash string `json:"s,omitempty"`
}

func encodeInvalidation(inv provisioner.Invalidation) (string, error) {
	b, err := json.Marshal(notice{inv.MemberID, inv.SessionHash})
	if err != nil {
		return "", fmt.Errorf("encoding invalidation: %w", err)
	}
	return string(b), nil
}

func decodeInvalidation(payload string) (provisioner.Invalidation,
	error) {
	var n notice
	if err := json.Unmarshal([]byte(payload), &n); err != nil {
		return provisioner.Invalidation{},
			fmt.Errorf("decoding invalidation: %w", err)
	}
	return provisioner.Invalidation{
		MemberID:    n.MemberID,
		SessionHash: n.SessionHash,
	}, nil
}

// removal lists what removing a member invalidates: the member, and
// each of the sessions that went with them.
func removal(memberID string,
	sessions []string) []provisioner.Invalidation {
	invs := []provisioner.Invalidation{{MemberID: memberID}}
	for _, h := range sessions {
		invs = append(invs, provisioner.Invalidation{
			MemberID:    memberID,
			SessionHash: h,
		})
	}
	return invs
}

// notify queues invalidations in tx; PostgreSQL delivers them to the
// listeners when, and only if, tx commits.
func (s *Store) notify(ctx context.Context, tx pgx.Tx,
	invs ...provisioner.Invalidation) error {
	b := &pgx.Batch{}
	for _, inv := range invs {
		payload, err := encodeInvalidation(inv)
		if err != nil {
			return err
		}
		b.Queue("SELECT pg_notify($1, $2)", s.channel, payload)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("notifying: %w", err)
	}
	return nil
}

// Listen calls fn for every member removed and every session ended by
// any store on this database and schema, this one included, until ctx
// ends; then it returns nil. It holds a connection of its own, outside
// the pool, and reconnects with a growing pause (100ms up to 5s) when
// the connection is lost. Invalidations sent while it was disconnected
// are missed: caches forget those entries after their own TTL.
func (s *Store) Listen(ctx context.Context,
	fn func(provisioner.Invalidation)) error {
	const first = 100 * time.Millisecond
	wait, failures := first, 0
	listening := func() {
		if failures > 0 {
			s.log.Info("invalidation listener reconnected",
				zap.Int("attempts", failures))
			// what was removed meanwhile was not heard of
			fn(provisioner.Invalidation{All: true})
		}
		wait, failures = first, 0
	}
	for {
		err := s.listen(ctx, fn, listening)
		if ctx.Err() != nil {
			return nil
		}
		failures++
		level := zap.DebugLevel
		if failures == 1 {
			level = zap.WarnLevel
			// the pool's connections were most likely lost too: make
			// new ones rather than fail once on each
			s.pool.Reset()
		}
		s.log.Log(level, "invalidation listener lost postgres; "+
			"reconnecting", zap.Duration("after", wait), zap.Error(err))
		pause(ctx, wait)
		wait = min(2*wait, 5*time.Second)
	}
}

// listen connects, listens and relays notifications to fn until the
// connection fails or ctx ends. It calls listening once notifications
// flow.
func (s *Store) listen(ctx context.Context,
	fn func(provisioner.Invalidation), listening func()) error {
	cfg := s.pool.Config().ConnConfig
	cctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return classify(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	listen := "LISTEN " + pgx.Identifier{s.channel}.Sanitize()
	if _, err := conn.Exec(ctx, listen); err != nil {
		return classify(err)
	}
	listening()
	s.log.Debug("listening for invalidations",
		zap.String("channel", s.channel))

	for {
		n, err := s.next(ctx, conn)
		if err != nil {
			return err
		}
		if n == nil {
			continue
		}
		inv, err := decodeInvalidation(n.Payload)
		if err != nil {
			s.log.Warn("ignoring a malformed invalidation",
				zap.Error(err))
			continue
		}
		fn(inv)
	}
}

// next waits for the next notification. After s.listenCheck of silence
// it pings the connection and, if it still answers, returns no
// notification and no error.
func (s *Store) next(ctx context.Context, conn *pgx.Conn) (
	*pgconn.Notification, error) {
	wctx, cancel := context.WithTimeout(ctx, s.listenCheck)
	n, err := conn.WaitForNotification(wctx)
	cancel()
	if err == nil {
		return n, nil
	}
	if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
		return nil, classify(err)
	}
	pctx, cancel := context.WithTimeout(ctx, s.opts.ConnectTimeout)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		return nil, classify(err)
	}
	return nil, nil
}
