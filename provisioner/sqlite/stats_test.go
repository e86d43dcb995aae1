package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/arrowgate/arrowgate/provisioner/storetest"
)

func TestActiveSessionsCountsLiveSessionsByOrg(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "arrow.db"))
	defer s.Close()
	storetest.RunActiveSessions(t, s)
}
