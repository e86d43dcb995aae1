package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestCookieFlagsOverHTTPS checks the cookies a browser gets over https,
// which the end-to-end tests (plain http) cannot see.
func TestCookieFlagsOverHTTPS(t *testing.T) {
	h := &Handler{
		BasePath:        "/.arrow",
		SessionLifetime: caddy.Duration(12 * time.Hour),
		cookies:         cookieSigner{key: []byte("test key")},
		now:             time.Now,
	}
	for _, c := range []struct {
		url               string
		session           string
		secure            bool
		trackingSameSite  http.SameSite
		trackingSameSiteS string
	}{
		{"https://gw.test/x", "__Host-arrow_session", true,
			http.SameSiteNoneMode, "None"},
		{"http://gw.test/x", "arrow_session", false,
			0, "unset"},
	} {
		r := httptest.NewRequest(http.MethodGet, c.url, nil)
		w := httptest.NewRecorder()
		h.setSessionCookie(w, r, "session-id")
		err := h.setTrackingCookie(w, r, "relay", tracked{Org: "acme",
			Expires: time.Now().Add(time.Minute).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		cookies := w.Result().Cookies()
		if len(cookies) != 2 {
			t.Fatalf("%s: want 2 cookies, got %v", c.url, cookies)
		}
		s, tr := cookies[0], cookies[1]
		if s.Name != c.session || s.Secure != c.secure || !s.HttpOnly ||
			s.Path != "/" || s.Domain != "" ||
			s.SameSite != http.SameSiteLaxMode {
			t.Errorf("%s: session cookie %+v: want %s, Secure=%v, "+
				"HttpOnly, Path=/, no Domain, SameSite=Lax", c.url, s,
				c.session, c.secure)
		}
		if tr.Name != "arrow_login_relay" || tr.Secure != c.secure ||
			!tr.HttpOnly || tr.Path != "/.arrow/saml/" ||
			tr.SameSite != c.trackingSameSite {
			t.Errorf("%s: tracking cookie %+v: want Secure=%v, HttpOnly, "+
				"Path=/.arrow/saml/, SameSite %s", c.url, tr, c.secure,
				c.trackingSameSiteS)
		}
	}
}

// TestHTTPSBehindTrustedProxy checks that X-Forwarded-Proto counts only
// from a proxy the operator trusts.
func TestHTTPSBehindTrustedProxy(t *testing.T) {
	for _, c := range []struct {
		trusted bool
		proto   string
		want    string
	}{
		{true, "https", "__Host-arrow_session"},
		{false, "https", "arrow_session"},
		{true, "http", "arrow_session"},
	} {
		r := httptest.NewRequest(http.MethodGet, "http://gw.test/", nil)
		r.Header.Set("X-Forwarded-Proto", c.proto)
		vars := map[string]any{caddyhttp.TrustedProxyVarKey: c.trusted}
		r = r.WithContext(context.WithValue(r.Context(),
			caddyhttp.VarsCtxKey, vars))
		if got := sessionCookieName(r); got != c.want {
			t.Errorf("trusted=%v X-Forwarded-Proto=%s: cookie %s, want %s",
				c.trusted, c.proto, got, c.want)
		}
	}
}
