package caddymodule_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arrowgate/arrowgate/internal/gatewaytest"
)

// TestDemoWalkThrough runs the top-level Caddyfile, the one
// `go run ./cmd/arrowgate run` reads, on free ports and walks the demo
// as the README tells it: alice, bob and carol fill Acme's three seats
// on their first sign-in, and dave finds the plan full.
func TestDemoWalkThrough(t *testing.T) {
	gw, idp := loadDemo(t)

	for _, who := range []string{"alice", "bob", "carol"} {
		email := who + "@acme.test"
		b := gatewaytest.NewBrowser(t)
		r := b.SignIn(t, gw, "/vault?item=42", email)
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: want 303 back to the vault, got %d:\n%s",
				who, r.StatusCode, r.Body)
		}
		if loc := r.Header.Get("Location"); loc != "/vault?item=42" {
			t.Fatalf("%s lands on %q, want /vault?item=42", who, loc)
		}
		page := b.Follow(t, r)
		if page.StatusCode != http.StatusOK ||
			!strings.Contains(page.Body, email) {
			t.Fatalf("%s: the app does not show who is signed in "+
				"(%d):\n%s", who, page.StatusCode, page.Body)
		}
	}

	r := gatewaytest.NewBrowser(t).SignIn(t, gw, "/vault?item=42",
		"dave@acme.test")
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("dave on a full plan: want 403, got %d:\n%s",
			r.StatusCode, r.Body)
	}
	for _, want := range []string{"Acme Corp", "it@acme.test",
		"Buy more seats", `href="http://localhost:`} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("dave's out-of-seats page lacks %q:\n%s", want,
				r.Body)
		}
	}
	if !refRe.MatchString(r.Body) {
		t.Errorf("dave's out-of-seats page shows no reference ID")
	}

	// the identity provider's login page tells the demo password
	login := gatewaytest.NewBrowser(t).ToIdentityProvider(t, gw, "/",
		"alice@acme.test")
	if !strings.HasPrefix(login.Request.URL.String(), idp) ||
		!strings.Contains(login.Body, gatewaytest.Password) {
		t.Errorf("the demo identity provider's login page at %s does "+
			"not show the password:\n%s", login.Request.URL, login.Body)
	}
}

// loadDemo runs the top-level Caddyfile with its ports moved to free ones
// and Caddy's storage and data directory, where the demo's SQLite store
// lives, in a temporary folder. It returns the gateway's and the identity
// provider's origins.
func loadDemo(t *testing.T) (gw, idp string) {
	t.Helper()
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	text, err := os.ReadFile("../Caddyfile")
	if err != nil {
		t.Fatalf("reading the demo Caddyfile: %v", err)
	}
	for _, moved := range []string{"localhost:8080", "localhost:8081",
		"auto_https off"} {
		if !strings.Contains(string(text), moved) {
			t.Fatalf("the demo Caddyfile no longer has %q, which this "+
				"test moves:\n%s", moved, text)
		}
	}
	gwPort, idpPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	demo := strings.NewReplacer(
		"localhost:8080", fmt.Sprintf("localhost:%d", gwPort),
		"localhost:8081", fmt.Sprintf("localhost:%d", idpPort),
		"auto_https off", "auto_https off\n\tadmin off\n\t"+
			"persist_config off\n\tstorage file_system "+
			filepath.Join(t.TempDir(), "caddy"),
	).Replace(string(text))
	gatewaytest.Load(t, demo)
	return fmt.Sprintf("http://localhost:%d", gwPort),
		fmt.Sprintf("http://localhost:%d", idpPort)
}
