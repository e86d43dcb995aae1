package demoapp

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		input   string
		wantErr string
	}{
		{"bare", "arrow_demo_app", ""},
		{"argument", "\narrow_demo_app verbose", `no arguments, got ` +
			`"verbose", at Testfile:2`},
		{"block", "arrow_demo_app {\n\ttitle Arrow\n}",
			"takes no block, at Testfile:2"},
	}
	for _, tt := range tests {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantErr != "" && (err == nil ||
			!strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: error %v, want one containing %q", tt.name, err,
				tt.wantErr)
		}
	}
}

// TestCaddyfileAdapts checks the JSON a whole Caddyfile turns into, and
// that the directive needs no global order option.
func TestCaddyfileAdapts(t *testing.T) {
	t.Parallel()
	input, err := os.ReadFile(filepath.Join("testdata", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").
		Adapt(input, nil)
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %+v", warnings)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, out, "", "\t"); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')

	golden := filepath.Join("testdata", "Caddyfile.json")
	if *update {
		if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("adapted JSON differs from %s (run with -update to "+
			"accept):\n%s", golden, pretty.String())
	}
}
