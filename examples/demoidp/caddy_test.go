package demoidp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// provision provisions h as Caddy would.
func provision(t *testing.T, h *Handler) {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{
		Context: context.Background(),
	})
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
}

// TestProvisionKeepsTheKeyAcrossRestarts checks that a second Caddy
// start signs with the key of the first, so that service providers that
// trust the metadata keep trusting it.
func TestProvisionKeepsTheKeyAcrossRestarts(t *testing.T) {
	dataDir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", dataDir)

	first, second := new(Handler), new(Handler)
	provision(t, first)
	provision(t, second)
	if !first.idp.server.IDP.Certificate.Equal(
		second.idp.server.IDP.Certificate) {
		t.Error("the second start has another certificate")
	}

	path := filepath.Join(dataDir, "caddy", "arrowgate-demo-idp",
		"localhost_8081.pem")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("key pair file: %v", err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("key pair file mode %o, want 600", mode)
	}

	other := &Handler{BaseURL: "http://localhost:9091"}
	provision(t, other)
	if other.idp.server.IDP.Certificate.Equal(
		first.idp.server.IDP.Certificate) {
		t.Error("an identity provider at another address shares the key")
	}
}

func TestProvisionDefaults(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	h := new(Handler)
	provision(t, h)

	if h.BaseURL != DefaultBaseURL {
		t.Errorf("BaseURL = %q", h.BaseURL)
	}
	var emails []string
	for _, u := range h.Users {
		emails = append(emails, u.Email)
	}
	want := "alice@acme.test bob@acme.test carol@acme.test " +
		"dave@acme.test erin@globex.test"
	if got := strings.Join(emails, " "); got != want {
		t.Errorf("default users %q, want %q", got, want)
	}
	if len(h.ServiceProviders) != 2 {
		t.Errorf("default service providers %q", h.ServiceProviders)
	}
}

// nextHandler records whether the request was passed on.
type nextHandler struct{ called bool }

func (n *nextHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) error {
	n.called = true
	w.WriteHeader(http.StatusTeapot)
	return nil
}

func TestServeHTTPPassesOtherPathsOn(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	h := &Handler{BaseURL: "http://localhost:8081/idp"}
	provision(t, h)

	tests := []struct {
		path     string
		wantNext bool
		wantBody string
	}{
		{"/idp/metadata", false, `Location="http://localhost:8081/idp/sso"`},
		{"/idp/", false, "alice@acme.test"},
		{"/metadata", true, ""},
		{"/idp/users/", true, ""},
		{"/app", true, ""},
	}
	for _, tt := range tests {
		next := new(nextHandler)
		rec := httptest.NewRecorder()
		err := h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet,
			tt.path, nil), next)
		if err != nil {
			t.Errorf("%s: %v", tt.path, err)
		}
		if next.called != tt.wantNext {
			t.Errorf("%s: passed on = %v, want %v", tt.path, next.called,
				tt.wantNext)
		}
		if !strings.Contains(rec.Body.String(), tt.wantBody) {
			t.Errorf("%s: body lacks %q:\n%s", tt.path, tt.wantBody,
				rec.Body.String())
		}
	}
}

var _ caddyhttp.Handler = (*nextHandler)(nil)

func TestLoadOrCreateKeyPairAgreesUnderRace(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "idp.pem")
	now := time.Now()

	const starts = 3
	certs := make([][]byte, starts)
	var wg sync.WaitGroup
	for i := range starts {
		wg.Go(func() {
			_, cert, err := LoadOrCreateKeyPair(path, now)
			if err != nil {
				t.Errorf("start %d: %v", i, err)
				return
			}
			certs[i] = cert.Raw
		})
	}
	wg.Wait()
	for i := 1; i < starts; i++ {
		if string(certs[i]) != string(certs[0]) {
			t.Errorf("start %d got another certificate than start 0", i)
		}
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("the key directory holds %d files, want only the pair",
			len(entries))
	}
}

func TestLoadOrCreateKeyPairRejectsBadFiles(t *testing.T) {
	t.Parallel()
	keys := testKeys()
	mixed, err := encodeKeyPair(keys[0].key, keys[1].cert)
	if err != nil {
		t.Fatal(err)
	}
	good, err := encodeKeyPair(keys[0].key, keys[0].cert)
	if err != nil {
		t.Fatal(err)
	}
	keyOnly, _, _ := strings.Cut(string(good), "-----BEGIN CERTIFICATE")

	tests := []struct {
		name string
		data string
		now  time.Time
		want string
	}{
		{"not PEM", "hello", time.Now(), "no PRIVATE KEY block"},
		{"key only", keyOnly, time.Now(), "no CERTIFICATE block"},
		{"key and cert of two pairs", string(mixed), time.Now(),
			"not for the key"},
		{"expired", string(good), time.Now().Add(11 * 365 * 24 * time.Hour),
			"valid from"},
		{"corrupt key", "-----BEGIN PRIVATE KEY-----\nAAAA\n" +
			"-----END PRIVATE KEY-----\n", time.Now(), "parsing PRIVATE KEY"},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "idp.pem")
		if err := os.WriteFile(path, []byte(tt.data), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadOrCreateKeyPair(path, tt.now)
		if err == nil || !strings.Contains(err.Error(), tt.want) ||
			!strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming the file and %q",
				tt.name, err, tt.want)
		}
	}
}
