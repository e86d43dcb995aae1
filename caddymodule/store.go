package caddymodule

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/arrowgate/arrowgate/provisioner"
	"github.com/arrowgate/arrowgate/provisioner/sqlite"
)

// StoreConfig says which database keeps the gateway's state.
type StoreConfig struct {
	// Type is "sqlite" (the default, for one gateway instance) or
	// "postgres" (for several instances sharing one database).
	Type string `json:"type,omitempty"`

	// Path is the SQLite database file. Default: arrowgate/arrow.db in
	// Caddy's data directory.
	Path string `json:"path,omitempty"`

	// DSN is the PostgreSQL connection string. Caddy placeholders such
	// as {env.ARROW_DB} are replaced.
	DSN string `json:"dsn,omitempty"`

	// MaxConns bounds the PostgreSQL connection pool. Default: 10.
	MaxConns int `json:"max_conns,omitempty"`

	// Schema is the PostgreSQL schema of the gateway's tables, created
	// when missing. Default: the DSN's search_path, normally public.
	Schema string `json:"schema,omitempty"`
}

// stores shares one open store among the handlers that name the same
// database, across sites and configuration reloads.
var stores = caddy.NewUsagePool()

// storeCloser lets a store live in the usage pool.
type storeCloser struct{ provisioner.Store }

func (s storeCloser) Destruct() error { return s.Close() }

func (h *Handler) openStore(ctx caddy.Context) error {
	repl := caddy.NewReplacer()
	cfg := h.Store
	switch cfg.Type {
	case "", "sqlite":
		cfg.Type = "sqlite"
		if cfg.Path == "" {
			cfg.Path = filepath.Join(caddy.AppDataDir(), "arrowgate",
				"arrow.db")
		}
		cfg.Path = repl.ReplaceAll(cfg.Path, "")
	case "postgres":
		cfg.DSN = repl.ReplaceAll(cfg.DSN, "")
		if cfg.DSN == "" {
			return fmt.Errorf("store postgres: the connection string " +
				"is empty")
		}
	default:
		return fmt.Errorf("store: unknown type %q (want sqlite or "+
			"postgres)", cfg.Type)
	}

	key := cfg.Type + ":" + cfg.Path + cfg.DSN + "#" + cfg.Schema
	val, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		s, err := openStore(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return storeCloser{s}, nil
	})
	if err != nil {
		return fmt.Errorf("opening %s store: %w", cfg.Type, err)
	}
	h.store = val.(storeCloser).Store
	h.storeKey = key
	return nil
}

// openStore opens the database cfg names.
func openStore(ctx caddy.Context, cfg StoreConfig) (provisioner.Store,
	error) {
	switch cfg.Type {
	case "postgres":
		return openPostgres(ctx, cfg)
	default:
		return sqlite.Open(ctx, cfg.Path)
	}
}

// sessionManagers shares one session manager, and so its caches, among
// the handlers on the same store with the same lifetimes. A reload keeps
// the caches warm and does not start their cleanup goroutines again.
//
// TODO: golang-lru v2.0.7's expirable LRU cannot stop its cleanup
// goroutine, so each manager leaves two behind when its last handler
// goes; sharing bounds that to one set per distinct configuration.
var sessionManagers = caddy.NewUsagePool()

type sessionsHolder struct{ *provisioner.Sessions }

func (sessionsHolder) Destruct() error { return nil }

// loadSessions takes the shared session manager for this handler's store
// and lifetimes, making it on first use.
func (h *Handler) loadSessions() {
	cfg := provisioner.SessionConfig{
		Lifetime: time.Duration(h.SessionLifetime),
		Idle:     time.Duration(h.SessionIdle),
		CacheTTL: time.Duration(h.MemberCacheTTL),
		Now:      h.now,
	}
	key := fmt.Sprintf("%s|%s|%s|%s", h.storeKey, cfg.Lifetime, cfg.Idle,
		cfg.CacheTTL)
	val, _, _ := sessionManagers.LoadOrNew(key, func() (caddy.Destructor,
		error) {
		return sessionsHolder{provisioner.NewSessions(h.store, cfg)}, nil
	})
	h.sessions = val.(sessionsHolder).Sessions
	h.sessionsKey = key
}
