package demoidp

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// DefaultBaseURL is the base URL of the identity provider when the
// configuration gives none.
const DefaultBaseURL = "http://localhost:8081"

// DefaultServiceProviders returns the gateway's metadata URLs for the
// demo organizations acme and globex, on the default gateway address.
func DefaultServiceProviders() []string {
	return []string{
		"http://localhost:8080/.arrow/saml/acme/metadata",
		"http://localhost:8080/.arrow/saml/globex/metadata",
	}
}

// Handler is the arrow_demo_idp HTTP handler: the demo SAML identity
// provider of package demoidp, for trying Arrowgate out on one machine.
// It answers the paths under its base URL's path (/, /metadata, /sso,
// /slo, /logout) and passes every other request to the next handler.
//
// Its signing key is made on first start and kept under Caddy's data
// directory, in arrowgate-demo-idp/, so that service providers keep
// trusting it across restarts. Never give it real accounts: it prints
// the passwords on its login page.
type Handler struct {
	// BaseURL is the address the identity provider is reached at; its
	// entity ID is BaseURL + "/metadata". Default: DefaultBaseURL.
	BaseURL string `json:"base_url,omitempty"`

	// Users are the demo accounts. Default: DefaultUsers (alice, bob,
	// carol and dave at acme.test, erin at globex.test, password demo).
	Users []User `json:"users,omitempty"`

	// ServiceProviders are the metadata URLs of the service providers it
	// answers; each is fetched when first needed. Default:
	// DefaultServiceProviders. A service provider not listed gets an
	// error page.
	ServiceProviders []string `json:"service_providers,omitempty"`

	idp *IDP
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.arrow_demo_idp",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision fills in the defaults, loads or makes the signing key, and
// builds the identity provider.
func (h *Handler) Provision(ctx caddy.Context) error {
	if h.BaseURL == "" {
		h.BaseURL = DefaultBaseURL
	}
	if len(h.Users) == 0 {
		h.Users = DefaultUsers()
	}
	if len(h.ServiceProviders) == 0 {
		h.ServiceProviders = DefaultServiceProviders()
	}
	base, err := parseBaseURL(h.BaseURL)
	if err != nil {
		return err
	}

	// one key pair per base URL, so that two demo identity providers
	// in one Caddy are two different identity providers
	path := keyPairPath(caddy.AppDataDir(), base)
	key, cert, err := LoadOrCreateKeyPair(path, time.Now())
	if err != nil {
		return fmt.Errorf("loading signing key: %w", err)
	}

	logger := ctx.Logger()
	h.idp, err = New(Options{
		BaseURL:          h.BaseURL,
		Key:              key,
		Certificate:      cert,
		Users:            h.Users,
		ServiceProviders: h.ServiceProviders,
		Logger:           logger,
	})
	if err != nil {
		return fmt.Errorf("building demo identity provider: %w", err)
	}
	logger.Warn("demo identity provider: for demonstrations only, "+
		"its passwords are shown on its login page",
		zap.String("metadata", h.idp.MetadataURL()),
		zap.Int("users", len(h.Users)))
	return nil
}

// keyPairPath returns the key pair file of the identity provider at base,
// under dataDir.
func keyPairPath(dataDir string, base *url.URL) string {
	name := strings.NewReplacer(":", "_", "/", "_", "\\", "_").
		Replace(base.Host + base.Path)
	return filepath.Join(dataDir, "arrowgate-demo-idp", name+".pem")
}

// ServeHTTP answers the identity provider's paths and passes the others
// to next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request,
	next caddyhttp.Handler) error {
	if !h.idp.Handles(r.URL.Path) {
		return next.ServeHTTP(w, r)
	}
	h.idp.ServeHTTP(w, r)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
