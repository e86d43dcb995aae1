package e2e

import (
	"os"
	"testing"
)

// installHint tells the reader how to get every tool this package uses.
const installHint = "run `sudo bash .ci/install-e2e.sh`"

// missingTool stops a test that needs a tool this machine lacks. Under
// CI=true the test fails, because CI must run it; elsewhere it is skipped,
// loudly, so that a developer sees what was not tested.
func missingTool(t testing.TB, tool, detail string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("e2e: %s is missing (%s); %s", tool, detail, installHint)
		return
	}
	t.Skipf("SKIPPING END-TO-END TEST: %s is missing (%s); %s",
		tool, detail, installHint)
}
