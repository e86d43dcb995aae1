package caddymodule

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// trackingLifetime is how long a person has to sign in at the identity
// provider after typing their email.
const trackingLifetime = 10 * time.Minute

// cookieSigner protects the integrity of the gateway's cookies and
// tokens with an HMAC key kept in the store, shared by every instance.
type cookieSigner struct{ key []byte }

func (c cookieSigner) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, c.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// seal returns v as JSON with its MAC, for a cookie named name.
func (c cookieSigner) seal(name string, v any) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encoding cookie: %w", err)
	}
	payload := base64.RawURLEncoding.EncodeToString(data)
	sig := base64.RawURLEncoding.EncodeToString(c.mac(name, payload))
	return payload + "." + sig, nil
}

var errBadCookie = errors.New("cookie is missing, altered or expired")

// open checks a value made by seal for the cookie name and decodes it.
func (c cookieSigner) open(name, value string, v any) error {
	payload, sig, ok := strings.Cut(value, ".")
	if !ok || len(value) > 4096 {
		return errBadCookie
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, c.mac(name, payload)) {
		return errBadCookie
	}
	data, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return errBadCookie
	}
	if err := json.Unmarshal(data, v); err != nil {
		return errBadCookie
	}
	return nil
}

// csrfToken is the logout token of a session, derived from its hash so
// that nothing more need be stored.
func (c cookieSigner) csrfToken(sessionHash string) string {
	return base64.RawURLEncoding.EncodeToString(
		c.mac("logout", sessionHash)[:18])
}

// tracked is what the tracking cookie holds between the AuthnRequest and
// the identity provider's answer.
type tracked struct {
	Org       string `json:"o"`
	RequestID string `json:"r"`
	ReturnTo  string `json:"t"`
	Expires   int64  `json:"e"`
}

// randomToken returns n random bytes, base64url-encoded.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// isHTTPS reports whether the browser reached the gateway over https:
// on this connection, or through a proxy the operator trusts
// (trusted_proxies) that says so in X-Forwarded-Proto.
func isHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	trusted, _ := caddyhttp.GetVar(r.Context(),
		caddyhttp.TrustedProxyVarKey).(bool)
	return trusted && r.Header.Get("X-Forwarded-Proto") == "https"
}

// sessionCookieName is __Host-arrow_session over https, where the prefix
// pins the cookie to this host and path /.
func sessionCookieName(r *http.Request) string {
	if isHTTPS(r) {
		return "__Host-arrow_session"
	}
	return "arrow_session"
}

func trackingCookieName(relayState string) string {
	return "arrow_login_" + relayState
}

// setCookie writes a cookie with the flags every gateway cookie has.
func setCookie(w http.ResponseWriter, r *http.Request, c *http.Cookie) {
	c.HttpOnly = true
	c.Secure = isHTTPS(r)
	if c.Path == "" {
		c.Path = "/"
	}
	http.SetCookie(w, c)
}

func (h *Handler) setSessionCookie(w http.ResponseWriter, r *http.Request,
	id string) {
	setCookie(w, r, &http.Cookie{
		Name:     sessionCookieName(r),
		Value:    id,
		SameSite: http.SameSiteLaxMode,
		MaxAge:   int(time.Duration(h.SessionLifetime).Seconds()),
	})
}

func (h *Handler) clearSessionCookie(w http.ResponseWriter,
	r *http.Request) {
	setCookie(w, r, &http.Cookie{
		Name:     sessionCookieName(r),
		SameSite: http.SameSiteLaxMode,
		MaxAge:   -1,
	})
}

// setTrackingCookie ties the login started here to this browser. Over
// https it is SameSite=None so that the identity provider's cross-site
// POST carries it. Plain http cannot have None (it needs Secure) and an
// explicit Lax would be withheld from that POST, so there the attribute
// is left out: browsers then send a fresh cookie with a top-level POST.
func (h *Handler) setTrackingCookie(w http.ResponseWriter, r *http.Request,
	relayState string, t tracked) error {
	name := trackingCookieName(relayState)
	value, err := h.cookies.seal(name, t)
	if err != nil {
		return err
	}
	same := http.SameSiteDefaultMode
	if isHTTPS(r) {
		same = http.SameSiteNoneMode
	}
	setCookie(w, r, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     h.BasePath + "/saml/",
		SameSite: same,
		MaxAge:   int(trackingLifetime.Seconds()),
	})
	return nil
}

// readTrackingCookie returns the login this browser started with the
// given RelayState, or errBadCookie.
func (h *Handler) readTrackingCookie(r *http.Request, relayState string,
	now time.Time) (tracked, error) {
	var t tracked
	if relayState == "" || len(relayState) > 80 {
		return t, errBadCookie
	}
	name := trackingCookieName(relayState)
	c, err := r.Cookie(name)
	if err != nil {
		return t, errBadCookie
	}
	if err := h.cookies.open(name, c.Value, &t); err != nil {
		return t, err
	}
	if now.Unix() > t.Expires {
		return t, errBadCookie
	}
	return t, nil
}

func (h *Handler) clearTrackingCookie(w http.ResponseWriter,
	r *http.Request, relayState string) {
	setCookie(w, r, &http.Cookie{
		Name:   trackingCookieName(relayState),
		Path:   h.BasePath + "/saml/",
		MaxAge: -1,
	})
}
