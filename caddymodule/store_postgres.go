package caddymodule

import (
	"context"

	"github.com/arrowgate/arrowgate/provisioner"
	"github.com/arrowgate/arrowgate/provisioner/postgres"
)

// openPostgres opens the PostgreSQL store. It succeeds while the database
// is down: calls then fail with provisioner.ErrUnavailable until it is
// back.
func openPostgres(ctx context.Context, cfg StoreConfig) (provisioner.Store,
	error) {
	return postgres.Open(ctx, cfg.DSN, postgres.Options{
		MaxConns: int32(cfg.MaxConns),
		Schema:   cfg.Schema,
	})
}
