// Package postgres is the shared store of Arrowgate: several gateway
// instances behind a load balancer keep their members, invitations,
// seats, sessions, SAML replay cache and generated secrets in one
// PostgreSQL database, and behave as one gateway.
//
// A seat is checked and taken in one transaction that first locks the
// organization's row in the orgs table, so sign-ins racing on different
// instances queue on that lock and can never both take the last seat.
// Removing a member or ending a session sends a notification in the same
// transaction; Listen relays those to every instance, which drops the
// member or session from its caches within a second.
//
// The store starts even while PostgreSQL is out of reach: Open returns
// at once, and the schema is migrated on the first call that finds the
// database, or by a background retry. Until then, and whenever the
// database goes away later, calls fail quickly with an error wrapping
// provisioner.ErrUnavailable; the pool reconnects by itself.
package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/arrowgate/arrowgate/provisioner"
)

// Options tune the store. The zero value is usable.
type Options struct {
	// MaxConns bounds the pool of connections to PostgreSQL. Zero
	// means 10. Listen uses one more connection of its own.
	MaxConns int32

	// Schema is the PostgreSQL schema holding the store's tables,
	// created when missing and put first on every connection's
	// search_path. Empty means the DSN's own search_path (normally
	// "public"). Several gateway deployments can share one database
	// with a schema each.
	Schema string

	// ConnectTimeout bounds how long opening one connection may take,
	// TLS and authentication included. Zero means the DSN's
	// connect_timeout, or 5s when it sets none.
	ConnectTimeout time.Duration

	// Timeout bounds each call to the store, waiting for a pooled
	// connection included, so that a stalled database turns into
	// ErrUnavailable rather than a hung request. Zero means 10s.
	Timeout time.Duration

	// Logger receives the store's lifecycle events: the schema
	// migrated, the database lost and found again. Nil means no logs.
	Logger *zap.Logger

	// Now is the clock, used for one-time key expiry and for the
	// CreatedAt of members added without one. Nil means time.Now.
	Now func() time.Time

	// Rand is the source of member IDs. Nil means crypto/rand.
	Rand io.Reader
}

// Store is a provisioner.Store and provisioner.Notifier kept in
// PostgreSQL. It is safe for concurrent use, also by several processes
// on one database. Close it when done.
type Store struct {
	pool    *pgxpool.Pool
	opts    Options
	log     *zap.Logger
	channel string // the LISTEN/NOTIFY channel of this schema
	lockKey int64  // the advisory lock serializing migrations

	// listenCheck is how long Listen waits for a notification before
	// it pings its connection, to find one that died without a word.
	listenCheck time.Duration

	// migrated is set once the schema is known to be up to date.
	migrated atomic.Bool

	mu       sync.Mutex
	trying   chan struct{} // closed when the running attempt ends
	lastErr  error         // why the last migration attempt failed
	fatal    error         // a schema this code must not touch
	prepared chan struct{} // closed when migrated or fatal is set

	stop    context.CancelFunc // ends the background retry
	retrier sync.WaitGroup
}

// Open returns a store on the PostgreSQL database at dsn, a URL or a
// keyword/value string as libpq reads them, and brings the schema up to
// date. A database whose schema was written by a newer Arrowgate is
// refused with a *NewerSchemaError. When the database cannot be reached,
// Open still returns a working store: its calls fail with
// provisioner.ErrUnavailable until the database answers, and the
// migration is retried in the background; Ready waits for it.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := poolConfig(dsn, &opts)
	if err != nil {
		return nil, fmt.Errorf("reading postgres dsn: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening postgres pool: %w", err)
	}
	s := newStore(pool, opts)

	// try once now, so that a schema problem stops start-up
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	err = s.prepare(pctx)
	cancel()
	switch {
	case err == nil:
		s.log.Info("postgres store ready",
			zap.String("schema", opts.Schema),
			zap.Int("schema_version", len(migrations)),
			zap.Duration("took", time.Since(start)))
	case errors.Is(err, provisioner.ErrUnavailable) && s.fatalErr() == nil:
		s.log.Warn("postgres unreachable; the store will keep trying",
			zap.Error(err))
		s.startRetry()
	default:
		pool.Close()
		return nil, fmt.Errorf("opening postgres store: %w", err)
	}
	return s, nil
}

// poolConfig reads dsn and applies opts to it, filling opts' defaults.
func poolConfig(dsn string, opts *Options) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 10
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = cfg.ConnConfig.ConnectTimeout
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	cfg.MaxConns = opts.MaxConns
	cfg.MinConns = 0 // connect on first use, not in Open
	cfg.PingTimeout = opts.ConnectTimeout

	cc := cfg.ConnConfig
	cc.ConnectTimeout = opts.ConnectTimeout
	dialer := &net.Dialer{
		Timeout:   opts.ConnectTimeout,
		KeepAlive: time.Minute,
	}
	cc.DialFunc = dialer.DialContext
	if opts.Schema != "" {
		cc.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.
			Sanitize()
	}
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = "arrowgate"
	}
	return cfg, nil
}

func newStore(pool *pgxpool.Pool, opts Options) *Store {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	return &Store{
		pool:     pool,
		opts:     opts,
		log:      opts.Logger,
		channel:  channelName(opts.Schema),
		lockKey:  migrationLockKey(opts.Schema),
		prepared: make(chan struct{}),

		listenCheck: 30 * time.Second,
	}
}

// Close stops the background retry and releases the pool's
// connections. Listen calls end with their own contexts, not with
// Close.
func (s *Store) Close() error {
	if s.stop != nil {
		s.stop()
	}
	s.retrier.Wait()
	s.pool.Close()
	return nil
}

// Ready waits until the schema is migrated and returns nil, or returns
// why the store is not usable yet when ctx ends first. A schema newer
// than this code is reported at once.
func (s *Store) Ready(ctx context.Context) error {
	select {
	case <-s.prepared:
		return s.fatalErr()
	case <-ctx.Done():
	}
	s.mu.Lock()
	last := s.lastErr
	s.mu.Unlock()
	if last == nil {
		last = ctx.Err()
	}
	return fmt.Errorf("waiting for postgres store: %w", unavailable(last))
}

func (s *Store) fatalErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatal
}

// enter bounds a call by the store's timeout and makes sure the schema
// is migrated before the call touches it.
func (s *Store) enter(ctx context.Context) (context.Context,
	context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	if s.migrated.Load() {
		return ctx, cancel, nil
	}
	if err := s.prepare(ctx); err != nil {
		cancel()
		return nil, nil, unavailable(err)
	}
	return ctx, cancel, nil
}

// prepare migrates the schema unless that is done. Callers arriving
// while another attempt runs wait for its outcome instead of starting
// their own.
func (s *Store) prepare(ctx context.Context) error {
	if s.migrated.Load() {
		return nil
	}
	s.mu.Lock()
	if s.fatal != nil {
		s.mu.Unlock()
		return s.fatal
	}
	if ch := s.trying; ch != nil {
		s.mu.Unlock()
		return s.await(ctx, ch)
	}
	ch := make(chan struct{})
	s.trying = ch
	s.mu.Unlock()

	err := s.migrate(ctx)
	s.settle(err)
	close(ch)
	return err
}

// await waits for the attempt that closes ch and returns its outcome.
func (s *Store) await(ctx context.Context, ch chan struct{}) error {
	select {
	case <-ch:
	case <-ctx.Done():
		return unavailable(ctx.Err())
	}
	if s.migrated.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fatal != nil {
		return s.fatal
	}
	return s.lastErr
}

// settle records the outcome of a migration attempt.
func (s *Store) settle(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trying = nil
	s.lastErr = err

	var newer *NewerSchemaError
	switch {
	case err == nil:
		s.migrated.Store(true)
		close(s.prepared)
	case errors.As(err, &newer):
		s.fatal = err
		close(s.prepared)
	}
}

// startRetry migrates in the background, backing off from 100ms up to
// 5s between attempts, until it succeeds, meets a newer schema or the
// store is closed.
func (s *Store) startRetry() {
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.retrier.Go(func() {
		wait := 100 * time.Millisecond
		for attempt := 1; ; attempt++ {
			select {
			case <-ctx.Done():
				return
			case <-s.prepared:
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 5*time.Second)
			if s.retryOnce(ctx, attempt) {
				return
			}
		}
	})
}

// retryOnce makes one migration attempt and reports whether retrying is
// over. Failures are logged as warnings about once a minute, and at
// debug level in between.
func (s *Store) retryOnce(ctx context.Context, attempt int) bool {
	actx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	start := time.Now()
	err := s.prepare(actx)
	switch {
	case err == nil:
		s.log.Info("postgres reachable again; store ready",
			zap.Int("attempts", attempt),
			zap.Duration("migration_took", time.Since(start)))
		return true
	case s.fatalErr() != nil:
		s.log.Error("postgres store unusable", zap.Error(err))
		return true
	case ctx.Err() != nil:
		return true // closed
	}
	level := zap.DebugLevel
	if attempt%12 == 0 {
		level = zap.WarnLevel
	}
	s.log.Log(level, "postgres still unreachable",
		zap.Int("attempts", attempt), zap.Error(err))
	return false
}

// newID returns a random member ID: 16 bytes, hex-encoded.
func (s *Store) newID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.opts.Rand, b[:]); err != nil {
		return "", fmt.Errorf("making member id: %w", err)
	}
	return fmt.Sprintf("%x", b[:]), nil
}

// Interface guards
var (
	_ provisioner.Store    = (*Store)(nil)
	_ provisioner.Notifier = (*Store)(nil)
)
