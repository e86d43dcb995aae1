package demoidp

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestUnmarshalCaddyfile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		input   string
		want    Handler
		wantErr string
	}{{
		name:  "defaults",
		input: `arrow_demo_idp`,
	}, {
		name:  "base URL as argument",
		input: `arrow_demo_idp http://localhost:9000`,
		want:  Handler{BaseURL: "http://localhost:9000"},
	}, {
		name: "full block",
		input: `arrow_demo_idp {
			base_url http://localhost:8081
			user alice@acme.test demo "Alice Example"
			user bob@acme.test s3cret
			service_provider http://localhost:8080/.arrow/saml/acme/metadata
			service_provider http://a.test/m http://b.test/m
		}`,
		want: Handler{
			BaseURL: "http://localhost:8081",
			Users: []User{
				{Email: "alice@acme.test", Password: "demo",
					Name: "Alice Example"},
				{Email: "bob@acme.test", Password: "s3cret"},
			},
			ServiceProviders: []string{
				"http://localhost:8080/.arrow/saml/acme/metadata",
				"http://a.test/m", "http://b.test/m",
			},
		},
	}, {
		name:    "two base URLs",
		input:   "arrow_demo_idp http://a.test {\n base_url http://b.test\n}",
		wantErr: "base URL given twice, at Testfile:2",
	}, {
		name:    "extra argument",
		input:   `arrow_demo_idp http://a.test http://b.test`,
		wantErr: "Testfile:1",
	}, {
		name:    "relative base URL",
		input:   "arrow_demo_idp {\n\n base_url localhost:8081\n}",
		wantErr: "not an absolute http(s) URL, at Testfile:3",
	}, {
		name:    "user without password",
		input:   "arrow_demo_idp {\n user alice@acme.test\n}",
		wantErr: "got 1 arguments, at Testfile:2",
	}, {
		name:    "user with too many arguments",
		input:   "arrow_demo_idp {\n user a@b.test pw Name extra\n}",
		wantErr: "got 4 arguments, at Testfile:2",
	}, {
		name:    "user that is not an email",
		input:   "arrow_demo_idp {\n user alice demo\n}",
		wantErr: `email "alice" is not an email address, at Testfile:2`,
	}, {
		name: "same user twice",
		input: "arrow_demo_idp {\n user a@b.test x\n" +
			" user A@B.test y\n}",
		wantErr: "user a@b.test is given twice, at Testfile:3",
	}, {
		name:    "service provider without URL",
		input:   "arrow_demo_idp {\n service_provider\n}",
		wantErr: "Testfile:2",
	}, {
		name:    "service provider URL not absolute",
		input:   "arrow_demo_idp {\n service_provider /metadata\n}",
		wantErr: "not an absolute http(s) URL, at Testfile:2",
	}, {
		name:    "unknown subdirective",
		input:   "arrow_demo_idp {\n\n\n password demo\n}",
		wantErr: `unknown subdirective "password", at Testfile:4`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got Handler
			err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err,
						tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
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
	adapter := caddyconfig.GetAdapter("caddyfile")
	out, warnings, err := adapter.Adapt(input, nil)
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
