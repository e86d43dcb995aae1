package caddymodule

import (
	"context"
	"errors"

	"github.com/arrowgate/arrowgate/provisioner"
)

// openPostgres opens the PostgreSQL store.
func openPostgres(ctx context.Context, cfg StoreConfig) (provisioner.Store,
	error) {
	return nil, errors.New("TODO: postgres store lands with issue 3")
}
