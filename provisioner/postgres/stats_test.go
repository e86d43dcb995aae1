package postgres

import (
	"testing"

	"github.com/arrowgate/arrowgate/provisioner/storetest"
)

func TestActiveSessionsCountsLiveSessionsByOrg(t *testing.T) {
	dsn := testDSN(t)
	storetest.RunActiveSessions(t, openStore(t, dsn, freshSchema(t, dsn),
		Options{}))
}
