package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// stopRecorder is a testing.TB that notes how a test was stopped.
type stopRecorder struct {
	testing.TB
	failed, skipped string
}

func (r *stopRecorder) Helper() {}

func (r *stopRecorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

func (r *stopRecorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
}

func TestMissingToolFailsOnlyUnderCI(t *testing.T) {
	tests := []struct {
		ci       string
		wantFail bool
	}{
		{"true", true},
		{"", false},
		{"false", false},
	}
	for _, tc := range tests {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			rec := &stopRecorder{TB: t}
			missingTool(rec, "php", "Debian package php-cli")

			msg, other := rec.skipped, rec.failed
			if tc.wantFail {
				msg, other = rec.failed, rec.skipped
			}
			if other != "" {
				t.Errorf("stopped the wrong way: %q", other)
			}
			for _, want := range []string{"php", "php-cli",
				".ci/install-e2e.sh"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not mention %q", msg, want)
				}
			}
			if !tc.wantFail && !strings.HasPrefix(msg, "SKIPPING") {
				t.Errorf("skip message %q is not loud", msg)
			}
		})
	}
}
