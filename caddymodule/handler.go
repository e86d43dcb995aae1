// Package caddymodule is Arrowgate's Caddy module: the arrow_sso HTTP
// handler, which puts SAML single sign-on with just-in-time provisioning
// in front of Arrow.
//
// The flow of a request, with the default base path /.arrow:
//
//  1. Headers that begin with X-Arrow- are removed from every request,
//     so only the gateway can set them.
//  2. Requests under the base path are the gateway's own: the login page,
//     each organization's SAML metadata and assertion consumer service,
//     logout, and the static files of the pages.
//  3. A request with a live session goes on to the next handler with
//     X-Arrow-Email, X-Arrow-Org, X-Arrow-Member-Id and X-Arrow-Name set.
//     Sessions and members are checked from an expiring in-memory cache.
//  4. A navigation without a session is redirected to the login page,
//     any other request gets a 401 problem document.
//  5. The login page asks for a work email. Its domain picks the
//     organization, whose identity provider gets a SAML AuthnRequest. A
//     short-lived signed cookie ties the answer to this browser.
//  6. The assertion consumer service validates the identity provider's
//     response, checks the email is in the organization's domains, and
//     signs the person in: as a member, as an invited person, or
//     provisioned just in time when the plan allows and a seat is free.
//     A full plan shows the out-of-seats page.
package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/arrowgate/arrowgate/provisioner"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is the arrow_sso HTTP handler. Its zero value is not usable;
// Caddy provisions it from the configuration.
type Handler struct {
	// Store is where members, seats, sessions and the replay cache
	// live. Default: SQLite at arrowgate/arrow.db in Caddy's data
	// directory.
	Store StoreConfig `json:"store,omitempty"`

	// BasePath is the path prefix of the gateway's own pages. Default:
	// /.arrow. Nothing under it reaches the upstream.
	BasePath string `json:"base_path,omitempty"`

	// SessionLifetime is the absolute lifetime of a session. Default:
	// 12h.
	SessionLifetime caddy.Duration `json:"session_lifetime,omitempty"`

	// SessionIdle ends a session unused for this long. Default: 2h.
	SessionIdle caddy.Duration `json:"session_idle,omitempty"`

	// MemberCacheTTL is how long a session and its member are trusted
	// from memory: the longest a removed member keeps access on an
	// instance that was not told. Default: 5s.
	MemberCacheTTL caddy.Duration `json:"member_cache_ttl,omitempty"`

	// SPCert and SPKey are PEM files with the service provider's
	// certificate and RSA private key, published in the metadata and
	// used to decrypt encrypted assertions. Both or neither. Default: a pair generated
	// once and kept in the store, so every instance on the same store
	// publishes the same metadata.
	SPCert string `json:"sp_cert,omitempty"`
	SPKey  string `json:"sp_key,omitempty"`

	// IdentityJWT adds X-Arrow-Assertion to every request that reaches
	// the upstream: a JWT (ES256, valid 60s) of the email, org and
	// member ID, whose public key is at <base_path>/jwks.json, for
	// upstreams that verify who calls rather than trust the network.
	// Default: off.
	IdentityJWT bool `json:"identity_jwt,omitempty"`

	// RateLimit bounds login form posts and ACS posts per client
	// address. Default: 300 a minute.
	RateLimit *RateLimitConfig `json:"rate_limit,omitempty"`

	// Orgs are the organizations that sign in through this gateway.
	Orgs []OrgConfig `json:"orgs,omitempty"`

	logger   *zap.Logger
	auditLog *zap.Logger
	store    provisioner.Store
	storeKey string
	// sessionsKey names the shared session manager in sessionManagers
	sessionsKey string
	dir         *provisioner.Directory
	orgs        map[string]*orgState
	prov        *provisioner.Provisioner
	sessions    *provisioner.Sessions
	metrics     *handlerMetrics // nil records nothing
	keys        *keyLoad
	jwt         *jwtKeys
	limiter     *signInLimiter // nil when rate limiting is off
	sp          spIdentity
	cookies     cookieSigner
	now         func() time.Time
	cancel      context.CancelFunc
}

// OrgConfig configures one organization.
type OrgConfig struct {
	// ID is the organization's short name, used in URLs: lower-case
	// letters, digits and dashes.
	ID string `json:"id"`

	// Name is shown to people. Default: the ID.
	Name string `json:"name,omitempty"`

	// Plan is starter, team, business or omnix.
	Plan string `json:"plan"`

	// Seats is the number of seats bought. Members and pending
	// invitations take seats; lowering it never removes anyone.
	Seats int `json:"seats"`

	// Domains are the organization's verified email domains.
	Domains []string `json:"domains"`

	// IDPMetadataURL is where the identity provider's SAML metadata is
	// fetched from, at start-up and then hourly. While it cannot be
	// had, this organization's sign-in answers 503.
	IDPMetadataURL string `json:"idp_metadata_url,omitempty"`

	// IDPMetadataFile is a file with the identity provider's metadata,
	// instead of IDPMetadataURL.
	IDPMetadataFile string `json:"idp_metadata_file,omitempty"`

	// EmailAttribute is the assertion attribute that holds the email.
	// Default: the NameID.
	EmailAttribute string `json:"email_attribute,omitempty"`

	// JIT turns on just-in-time provisioning (business and omnix plans
	// only). Default: off, so only members and invited people get in.
	JIT bool `json:"jit,omitempty"`

	// BuySeatsURL is linked on the out-of-seats page for admins.
	BuySeatsURL string `json:"buy_seats_url,omitempty"`

	// AdminContact is whom people are told to ask for a seat.
	AdminContact string `json:"admin_contact,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.arrow_sso",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults, opens the store, loads the service provider's
// key and starts fetching each identity provider's metadata.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.auditLog = h.logger.Named("audit")
	h.now = time.Now
	h.keys = new(keyLoad)
	h.jwt = new(jwtKeys)
	if err := h.provisionRateLimit(); err != nil {
		return err
	}
	h.setDefaults()
	if (h.SPCert == "") != (h.SPKey == "") {
		return errors.New("sp_cert and sp_key go together: set both " +
			"or neither")
	}

	dir, err := h.directory()
	if err != nil {
		return err
	}
	h.dir = dir

	// the store is shared by every handler on the same database
	if err := h.openStore(ctx); err != nil {
		return err
	}
	if err := h.provisionMetrics(ctx); err != nil {
		return err
	}

	// keys come from the store; a store that is down now is retried
	// on the first request that needs them
	if err := h.loadKeys(ctx); err != nil {
		if !errors.Is(err, provisioner.ErrUnavailable) {
			return err
		}
		h.logger.Warn("store unavailable at start-up; sign-in answers "+
			"503 until it is back", zap.Error(err))
	}

	bg, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	if err := h.loadOrgs(bg); err != nil {
		cancel()
		return err
	}

	h.prov = &provisioner.Provisioner{Store: h.store, Now: h.now}
	h.loadSessions()
	h.startBackground(bg)
	h.register()
	h.exportGauges()
	return nil
}

func (h *Handler) setDefaults() {
	if h.BasePath == "" {
		h.BasePath = "/.arrow"
	}
	h.BasePath = "/" + strings.Trim(h.BasePath, "/")
	if h.SessionLifetime == 0 {
		h.SessionLifetime = caddy.Duration(12 * time.Hour)
	}
	if h.SessionIdle == 0 {
		h.SessionIdle = caddy.Duration(2 * time.Hour)
	}
	if h.MemberCacheTTL == 0 {
		h.MemberCacheTTL = caddy.Duration(5 * time.Second)
	}
}

// directory checks the organizations and builds the domain lookup.
func (h *Handler) directory() (*provisioner.Directory, error) {
	orgs := make([]provisioner.Org, 0, len(h.Orgs))
	for _, oc := range h.Orgs {
		o, err := oc.org()
		if err != nil {
			return nil, err
		}
		orgs = append(orgs, o)
	}
	return provisioner.NewDirectory(orgs)
}

func (oc OrgConfig) org() (provisioner.Org, error) {
	plan, err := provisioner.ParsePlan(oc.Plan)
	if err != nil {
		return provisioner.Org{}, fmt.Errorf("org %s: %w", oc.ID, err)
	}
	domains := make([]string, 0, len(oc.Domains))
	for _, d := range oc.Domains {
		n, err := provisioner.NormalizeDomain(d)
		if err != nil {
			return provisioner.Org{}, fmt.Errorf("org %s: domain %q is "+
				"not a valid domain", oc.ID, d)
		}
		domains = append(domains, n)
	}
	o := provisioner.Org{
		ID:           oc.ID,
		Name:         oc.Name,
		Plan:         plan,
		Seats:        oc.Seats,
		Domains:      domains,
		JIT:          oc.JIT,
		AdminContact: oc.AdminContact,
		BuySeatsURL:  oc.BuySeatsURL,
	}
	if err := o.Validate(); err != nil {
		return provisioner.Org{}, err
	}
	switch {
	case oc.IDPMetadataURL == "" && oc.IDPMetadataFile == "":
		return provisioner.Org{}, fmt.Errorf("org %s: no identity "+
			"provider: set idp_metadata_url or idp_metadata_file", oc.ID)
	case oc.IDPMetadataURL != "" && oc.IDPMetadataFile != "":
		return provisioner.Org{}, fmt.Errorf("org %s: set only one of "+
			"idp_metadata_url and idp_metadata_file", oc.ID)
	}
	return o, nil
}

// Validate warns of risky settings; Provision has checked the rest.
func (h *Handler) Validate() error {
	if time.Duration(h.SessionIdle) > time.Duration(h.SessionLifetime) {
		h.logger.Warn("session_idle is longer than session_lifetime; " +
			"sessions end at session_lifetime")
	}
	return nil
}

// Cleanup stops the background work and releases the store.
func (h *Handler) Cleanup() error {
	h.unregister()
	h.metrics.release()
	if h.cancel != nil {
		h.cancel()
	}
	if h.sessionsKey != "" {
		_, _ = sessionManagers.Delete(h.sessionsKey)
	}
	if h.storeKey != "" {
		if _, err := stores.Delete(h.storeKey); err != nil {
			return fmt.Errorf("releasing store: %w", err)
		}
	}
	return nil
}

// ServeHTTP strips client-sent identity headers, serves the gateway's own
// pages, and lets requests with a live session through.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request,
	next caddyhttp.Handler) error {
	stripIdentityHeaders(r.Header)

	if err := h.loadKeys(r.Context()); err != nil {
		h.unavailable(w, r, "", err)
		return nil
	}
	if p, ok := h.ownPath(r.URL.Path); ok {
		h.serveOwn(w, r, p)
		return nil
	}

	sess, err := h.checkSession(r)
	switch {
	case err == nil:
		h.setIdentity(r, sess)
		if err := h.setIdentityJWT(r, sess); err != nil {
			h.unavailable(w, r, "", err)
			return nil
		}
		return next.ServeHTTP(w, r)
	case errors.Is(err, provisioner.ErrNotFound):
		h.challenge(w, r)
		return nil
	default:
		h.unavailable(w, r, "", err)
		return nil
	}
}

// audit is the logger of audit events: sign-ins, provisioning, seat
// denials, rejections. Its name ends in ".audit" so operators can route
// it to a file of its own.
func (h *Handler) audit() *zap.Logger { return h.auditLog }

// ownPath returns the part of path below the base path, if it is below.
func (h *Handler) ownPath(path string) (string, bool) {
	if path == h.BasePath {
		return "/", true
	}
	rest, ok := strings.CutPrefix(path, h.BasePath+"/")
	if !ok {
		return "", false
	}
	return "/" + rest, true
}

// stripIdentityHeaders removes every header a client might send to pass
// itself off as signed in: X-Arrow- in any case, and with _ or . for
// the dashes, which CGI-style upstreams read as the same name.
func stripIdentityHeaders(hdr http.Header) {
	for name := range hdr {
		if len(name) >= 8 && strings.EqualFold(
			identityDashes.Replace(name[:8]), "X-Arrow-") {
			delete(hdr, name)
		}
	}
}

var identityDashes = strings.NewReplacer("_", "-", ".", "-")

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
