package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/arrowgate/arrowgate/provisioner"
)

// benchIDPMetadata is the smallest metadata an identity provider could
// publish; the session check never uses it.
const benchIDPMetadata = `<EntityDescriptor
 xmlns="urn:oasis:names:tc:SAML:2.0:metadata"
 entityID="https://idp.acme.test/">
 <IDPSSODescriptor
  protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
  <SingleSignOnService
   Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
   Location="https://idp.acme.test/sso"/>
 </IDPSSODescriptor>
</EntityDescriptor>`

// benchHandler provisions an arrow_sso handler through Caddy, on a
// SQLite store of its own, and returns it with the session cookie of a
// signed-in member. Without metrics, the handler has no label handles
// and its session manager uses the store unwrapped, as before metrics.
func benchHandler(b *testing.B, metrics bool) (*Handler, *http.Cookie) {
	b.Helper()
	dir := b.TempDir()
	md := filepath.Join(dir, "idp.xml")
	if err := os.WriteFile(md, []byte(benchIDPMetadata), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]any{
		"store": map[string]any{"type": "sqlite",
			"path": filepath.Join(dir, "arrow.db")},
		"orgs": []map[string]any{{"id": "acme", "plan": "business",
			"seats": 10, "domains": []string{"acme.test"},
			"idp_metadata_file": md, "jit": true}},
	})
	ctx, cancel := caddy.NewContext(caddy.Context{
		Context: context.Background()})
	b.Cleanup(cancel)
	mod, err := ctx.LoadModuleByID("http.handlers.arrow_sso", cfg)
	if err != nil {
		b.Fatalf("provisioning: %v", err)
	}
	h := mod.(*Handler)
	if !metrics {
		h.metrics = nil
		h.store = h.store.(*instrumentedStore).inner
		h.sessions = provisioner.NewSessions(h.store,
			provisioner.SessionConfig{CacheTTL: 5 * time.Second})
	}

	m, err := h.store.AddMember(ctx, provisioner.Member{OrgID: "acme",
		Email: "ann@acme.test", Source: provisioner.SourceJIT}, 10)
	if err != nil {
		b.Fatal(err)
	}
	id, _, err := h.sessions.Start(ctx, m)
	if err != nil {
		b.Fatal(err)
	}
	return h, &http.Cookie{Name: "arrow_session", Value: id}
}

// nopWriter is a ResponseWriter that keeps nothing, so that the
// benchmark measures the handler rather than a recorder.
type nopWriter http.Header

func (w nopWriter) Header() http.Header       { return http.Header(w) }
func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (nopWriter) WriteHeader(int)             {}

// BenchmarkSessionCheck measures ServeHTTP for a request with a live,
// cached session on its way to the upstream (a no-op next handler),
// with and without the metrics: the difference is what the session
// check histogram and the instrumented store cost on the request path.
func BenchmarkSessionCheck(b *testing.B) {
	for _, c := range []struct {
		name    string
		metrics bool
	}{{"metrics=off", false}, {"metrics=on", true}} {
		b.Run(c.name, func(b *testing.B) {
			h, cookie := benchHandler(b, c.metrics)
			req := httptest.NewRequest(http.MethodGet, "/inbox", nil)
			req.AddCookie(cookie)
			reached := 0
			next := caddyhttp.HandlerFunc(func(http.ResponseWriter,
				*http.Request) error {
				reached++
				return nil
			})
			w := nopWriter(http.Header{})

			b.ReportAllocs()
			for b.Loop() {
				if err := h.ServeHTTP(w, req, next); err != nil {
					b.Fatal(err)
				}
			}
			if reached == 0 {
				b.Fatal("the request never reached the upstream")
			}
		})
	}
}
