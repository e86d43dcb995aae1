package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/arrowgate/arrowgate/internal/gatewaytest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestCaddyfileGolden adapts every Caddyfile the project ships and
// compares the JSON with testdata/golden.
func TestCaddyfileGolden(t *testing.T) {
	files := map[string]string{
		"demo": "../Caddyfile",
	}
	matches, _ := filepath.Glob("../examples/*/Caddyfile")
	for _, m := range matches {
		files[filepath.Base(filepath.Dir(m))] = m
	}
	for name, path := range files {
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading %s: %v", path, err)
			}
			got, err := gatewaytest.Adapt(string(text))
			if err != nil {
				t.Fatalf("adapting %s: %v", path, err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, got, "", "\t"); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := filepath.Join("testdata", "golden", name+".json")
			if *update {
				_ = os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run with -update): %v", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("%s adapts differently from %s; run go test "+
					"-run TestCaddyfileGolden -update and review the diff",
					path, golden)
			}
		})
	}
}

// TestCaddyfileErrors checks that each configuration mistake fails with
// a message naming the org, the field and the line.
func TestCaddyfileErrors(t *testing.T) {
	org := func(body string) string {
		return "example.com {\n\tarrow_sso {\n\t\torg acme {\n" + body +
			"\t\t}\n\t}\n}\n"
	}
	const ok = "\t\t\tplan business\n\t\t\tseats 5\n" +
		"\t\t\tdomains acme.com\n" +
		"\t\t\tidp_metadata_url https://idp.acme.com/metadata\n"
	cases := []struct {
		name, caddyfile string
		want            []string
	}{
		{"unknown plan", org(strings.Replace(ok, "business", "gold", 1)),
			[]string{"org acme", `unknown plan "gold"`, "Caddyfile:"}},
		{"jit on a team plan",
			org(strings.Replace(ok, "business", "team", 1) + "\t\t\tjit on\n"),
			[]string{"org acme: just-in-time provisioning needs a " +
				"business or omnix plan, not team", "Caddyfile:"}},
		{"negative seats", org(strings.Replace(ok, "seats 5", "seats -1", 1)),
			[]string{"org acme: seats must not be negative", "Caddyfile:5"}},
		{"seats not a number",
			org(strings.Replace(ok, "seats 5", "seats many", 1)),
			[]string{"org acme: seats", `"many" is not a whole number`}},
		{"no identity provider",
			org("\t\t\tplan business\n\t\t\tseats 5\n\t\t\tdomains acme.com\n"),
			[]string{"org acme: no identity provider"}},
		{"jit neither on nor off", org(ok + "\t\t\tjit yes\n"),
			[]string{"org acme: jit takes on or off"}},
		{"unknown field", org(ok + "\t\t\tcolour blue\n"),
			[]string{`org acme: unknown field "colour"`, "Caddyfile:8"}},
		{"domain claimed twice", "example.com {\n\tarrow_sso {\n" +
			"\t\torg acme {\n" + ok + "\t\t}\n" +
			"\t\torg globex {\n" + strings.Replace(ok, "acme.com/", "globex.com/",
			1) + "\t\t}\n\t}\n}\n",
			[]string{"org globex: domain acme.com is already claimed by " +
				"org acme"}},
		{"bad session lifetime",
			"example.com {\n\tarrow_sso {\n\t\tsession_lifetime soon\n\t}\n}\n",
			[]string{"session_lifetime", `"soon" is not a positive duration`,
				"Caddyfile:3"}},
		{"unknown store", "example.com {\n\tarrow_sso {\n" +
			"\t\tstore redis localhost\n\t}\n}\n",
			[]string{`store: unknown type "redis"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := gatewaytest.Adapt(c.caddyfile)
			if err == nil {
				t.Fatalf("adapted without error:\n%s", c.caddyfile)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestProvisionErrors checks the rules Caddy applies to JSON configs,
// which skip the Caddyfile: run and validate fail with a clear message.
func TestProvisionErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		cfg  string
		want string
	}{
		{"unreadable metadata file", `{"orgs":[{"id":"acme",
			"plan":"business","seats":1,"domains":["acme.com"],
			"idp_metadata_file":"/nonexistent/idp.xml"}]}`,
			"org acme: idp_metadata_file"},
		{"only one of the key pair", `{"sp_cert":"/x.crt","orgs":[]}`,
			"sp_cert and sp_key go together"},
		{"unreadable sp_cert", `{"sp_cert":"/nonexistent.crt",
			"sp_key":"/nonexistent.key","orgs":[]}`, "sp_cert"},
		{"negative seats", `{"orgs":[{"id":"acme","plan":"business",
			"seats":-2,"domains":["acme.com"],
			"idp_metadata_url":"http://idp/metadata"}]}`,
			"org acme: seats must not be negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h map[string]any
			if err := json.Unmarshal([]byte(c.cfg), &h); err != nil {
				t.Fatal(err)
			}
			h["handler"] = "arrow_sso"
			h["store"] = map[string]any{"type": "sqlite",
				"path": filepath.Join(dir, c.name+".db")}
			cfg := map[string]any{
				"admin": map[string]any{"disabled": true},
				"apps": map[string]any{"http": map[string]any{
					"servers": map[string]any{"s": map[string]any{
						"listen": []string{"127.0.0.1:0"},
						"routes": []any{map[string]any{
							"handle": []any{h}}},
					}},
				}},
			}
			data, _ := json.Marshal(cfg)
			err := caddy.Load(data, true)
			if err == nil {
				_ = caddy.Stop()
				t.Fatalf("loaded without error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q lacks %q", err, c.want)
			}
		})
	}
}
