// Package demoapp is a stand-in for the Arrow application behind the
// Arrowgate gateway: the arrow_demo_app Caddy HTTP handler answers every
// request with a page saying who the gateway says is signed in.
//
// The gateway (arrow_sso) removes any X-Arrow- header a client sends and
// sets X-Arrow-Email, X-Arrow-Org, X-Arrow-Member-Id and X-Arrow-Name for
// a signed-in person, and X-Arrow-Csrf for the sign-out form. This page
// trusts them, so it must never be reachable without the gateway in
// front.
package demoapp

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// The request headers the gateway sets.
const (
	HeaderEmail    = "X-Arrow-Email"
	HeaderOrg      = "X-Arrow-Org"
	HeaderMemberID = "X-Arrow-Member-Id"
	HeaderName     = "X-Arrow-Name"
	HeaderCSRF     = "X-Arrow-Csrf"
)

// LogoutPath is where the sign-out form posts to: the gateway's logout.
const LogoutPath = "/.arrow/logout"

// NoIdentity is what the page says when the identity headers are absent.
const NoIdentity = "no identity headers: this app must sit behind arrow_sso"

// Handler is the arrow_demo_app HTTP handler. It answers every request
// itself, with HTML or, for Accept: application/json, with JSON; it never
// calls the next handler. It has no configuration.
type Handler struct{}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.arrow_demo_app",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Identity is who the gateway says is calling, and what was asked for.
type Identity struct {
	Email    string `json:"email"`     // X-Arrow-Email
	Org      string `json:"org"`       // X-Arrow-Org, the org's ID
	MemberID string `json:"member_id"` // X-Arrow-Member-Id
	Name     string `json:"name"`      // X-Arrow-Name, may be empty

	// Path is the request's path and query.
	Path string `json:"path"`

	// Error is NoIdentity when the gateway set no identity, else empty.
	Error string `json:"error,omitempty"`
}

// identityOf reads the identity headers of r.
func identityOf(r *http.Request) Identity {
	id := Identity{
		Email:    r.Header.Get(HeaderEmail),
		Org:      r.Header.Get(HeaderOrg),
		MemberID: r.Header.Get(HeaderMemberID),
		Name:     r.Header.Get(HeaderName),
		Path:     r.URL.RequestURI(),
	}
	if id.Email == "" {
		id.Error = NoIdentity
	}
	return id
}

// ServeHTTP answers r with the identity the gateway set on it.
func (Handler) ServeHTTP(w http.ResponseWriter, r *http.Request,
	_ caddyhttp.Handler) error {
	id := identityOf(r)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Add("Vary", "Accept")

	if wantsJSON(r) {
		body, err := json.Marshal(id)
		if err != nil {
			return caddyhttp.Error(http.StatusInternalServerError, err)
		}
		w.Header().Set("Content-Type", "application/json")
		_, err = w.Write(append(body, '\n'))
		return err
	}

	var body bytes.Buffer
	err := pageTemplate.Execute(&body, page{
		Identity: id,
		CSRF:     r.Header.Get(HeaderCSRF),
		Logout:   LogoutPath,
	})
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, err = body.WriteTo(w)
	return err
}

// wantsJSON reports whether the Accept header of r names
// application/json.
func wantsJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && mt == "application/json" {
			return true
		}
	}
	return false
}

// Interface guards
var (
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
