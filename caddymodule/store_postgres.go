package caddymodule

import (
	"github.com/caddyserver/caddy/v2"

	"github.com/arrowgate/arrowgate/provisioner"
	"github.com/arrowgate/arrowgate/provisioner/postgres"
)

// openPostgres opens the PostgreSQL store. It succeeds while the database
// is down: calls then fail with provisioner.ErrUnavailable until it is
// back. The store logs under the handler's logger, named "store": the
// schema migrated, the database lost and found again. Being shared, the
// store keeps the logger of the configuration that opened it across
// reloads.
func openPostgres(ctx caddy.Context, cfg StoreConfig) (provisioner.Store,
	error) {
	return postgres.Open(ctx, cfg.DSN, postgres.Options{
		MaxConns: int32(cfg.MaxConns),
		Schema:   cfg.Schema,
		Logger:   ctx.Logger().Named("store"),
	})
}
