package provisioner

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// SessionConfig sets how long sessions live and how long a checked
// session or member is trusted from memory.
type SessionConfig struct {
	// Lifetime is the absolute lifetime of a session. Zero means 12h.
	Lifetime time.Duration

	// Idle ends a session not used for this long. Zero means 2h.
	Idle time.Duration

	// CacheTTL is how long a session and its member are trusted from
	// memory before the store is asked again: the longest a removed
	// member keeps access on an instance that was not told. Zero
	// means 5s.
	CacheTTL time.Duration

	// CacheSize bounds each of the two caches. Zero means 100000.
	CacheSize int

	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// Rand is the source of session IDs; nil means crypto/rand.
	Rand io.Reader
}

// Sessions starts, checks and ends sessions. Checking a session is
// answered from an expiring LRU of sessions and members, so the hot path
// reaches the store at most once per CacheTTL for each, plus a touch
// of the idle clock at most once per touch interval.
type Sessions struct {
	store    Store
	cfg      SessionConfig
	touch    time.Duration
	sessions *expirable.LRU[string, Session]
	members  *expirable.LRU[string, Member]
}

// NewSessions returns a session manager over store.
func NewSessions(store Store, cfg SessionConfig) *Sessions {
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = 12 * time.Hour
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 2 * time.Hour
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 5 * time.Second
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 100000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	return &Sessions{
		store: store,
		cfg:   cfg,
		touch: min(cfg.Idle/8, time.Minute),
		sessions: expirable.NewLRU[string, Session](cfg.CacheSize, nil,
			cfg.CacheTTL),
		members: expirable.NewLRU[string, Member](cfg.CacheSize, nil,
			cfg.CacheTTL),
	}
}

// HashSessionID returns the hash under which a session ID is stored.
func HashSessionID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// Start creates a session for m and returns the ID to give the browser.
func (s *Sessions) Start(ctx context.Context, m Member) (string, Session,
	error) {
	var raw [32]byte
	if _, err := io.ReadFull(s.cfg.Rand, raw[:]); err != nil {
		return "", Session{}, fmt.Errorf("making session id: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.cfg.Now()
	sess := Session{
		IDHash:     HashSessionID(id),
		MemberID:   m.ID,
		OrgID:      m.OrgID,
		Email:      m.Email,
		Name:       m.Name,
		CreatedAt:  now,
		LastSeenAt: now,
		ExpiresAt:  now.Add(s.cfg.Lifetime),
	}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return "", Session{}, fmt.Errorf("creating session: %w", err)
	}
	s.sessions.Add(sess.IDHash, sess)
	s.members.Add(m.ID, m)
	return id, sess, nil
}

// Check returns the live session for the browser's session ID.
// ErrNotFound means there is none: unknown, expired, idle too long, or
// its member was removed.
func (s *Sessions) Check(ctx context.Context, id string) (Session, error) {
	if id == "" {
		return Session{}, ErrNotFound
	}
	hash := HashSessionID(id)
	sess, err := s.lookup(ctx, hash)
	if err != nil {
		return Session{}, err
	}

	now := s.cfg.Now()
	if !now.Before(sess.ExpiresAt) ||
		now.Sub(sess.LastSeenAt) >= s.cfg.Idle {
		s.sessions.Remove(hash)
		if err := s.store.DeleteSession(ctx, hash); err != nil {
			return Session{}, fmt.Errorf("ending expired session: %w", err)
		}
		return Session{}, ErrNotFound
	}

	if err := s.checkMember(ctx, sess); err != nil {
		return Session{}, err
	}

	if now.Sub(sess.LastSeenAt) >= s.touch {
		err := s.store.TouchSession(ctx, hash, now)
		if errors.Is(err, ErrNotFound) {
			s.sessions.Remove(hash)
			return Session{}, ErrNotFound
		}
		if err != nil {
			return Session{}, fmt.Errorf("touching session: %w", err)
		}
		sess.LastSeenAt = now
		s.sessions.Add(hash, sess)
	}
	return sess, nil
}

func (s *Sessions) lookup(ctx context.Context, hash string) (Session,
	error) {
	if sess, ok := s.sessions.Get(hash); ok {
		return sess, nil
	}
	sess, err := s.store.Session(ctx, hash)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Session{}, ErrNotFound
		}
		return Session{}, fmt.Errorf("loading session: %w", err)
	}
	s.sessions.Add(hash, sess)
	return sess, nil
}

func (s *Sessions) checkMember(ctx context.Context, sess Session) error {
	if _, ok := s.members.Get(sess.MemberID); ok {
		return nil
	}
	m, err := s.store.MemberByID(ctx, sess.MemberID)
	if errors.Is(err, ErrNotFound) {
		s.sessions.Remove(sess.IDHash)
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("loading member: %w", err)
	}
	s.members.Add(m.ID, m)
	return nil
}

// End ends the session with the browser's session ID.
func (s *Sessions) End(ctx context.Context, id string) error {
	hash := HashSessionID(id)
	s.sessions.Remove(hash)
	if err := s.store.DeleteSession(ctx, hash); err != nil {
		return fmt.Errorf("ending session: %w", err)
	}
	return nil
}

// RemoveMember removes a member and their sessions, and forgets them
// here at once.
func (s *Sessions) RemoveMember(ctx context.Context, memberID string) error {
	if err := s.store.RemoveMember(ctx, memberID); err != nil {
		return fmt.Errorf("removing member: %w", err)
	}
	s.members.Remove(memberID)
	return nil
}

// Invalidate drops what another instance removed from the caches.
func (s *Sessions) Invalidate(inv Invalidation) {
	if inv.All {
		s.members.Purge()
		s.sessions.Purge()
		return
	}
	if inv.MemberID != "" {
		s.members.Remove(inv.MemberID)
	}
	if inv.SessionHash != "" {
		s.sessions.Remove(inv.SessionHash)
	}
}

// Sweep deletes expired sessions and one-time keys from the store.
func (s *Sessions) Sweep(ctx context.Context) (int, error) {
	now := s.cfg.Now()
	n, err := s.store.DeleteExpired(ctx, now, now.Add(-s.cfg.Idle))
	if err != nil {
		return 0, fmt.Errorf("sweeping expired sessions: %w", err)
	}
	return n, nil
}
