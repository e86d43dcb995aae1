// Package demoidp is a SAML identity provider for demonstrations and
// tests of Arrowgate. It knows a handful of fake people whose passwords it
// prints on its own login page, so never put real accounts in it.
//
// The flow of a sign-in:
//
//  1. The gateway sends the browser to <BaseURL>/sso with an AuthnRequest
//     (HTTP-Redirect or HTTP-POST binding).
//  2. The first time a service provider's entity ID shows up, its metadata
//     is fetched from the URLs in Options.ServiceProviders; an entity ID
//     that none of them declares is refused.
//  3. Without a session for the requested person, the login page lists the
//     demo accounts and asks for an email and a password. When the
//     AuthnRequest names a subject, its email is filled in, and only that
//     person may sign in.
//  4. The response goes back to the service provider by an auto-posting
//     form: the Response and the Assertion are both signed with RSA-SHA256,
//     the NameID is the email (format emailAddress), and the attributes
//     email and displayName are set.
//
// The sessions live in memory and end when the process does.
package demoidp

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlidp"
	"github.com/crewjam/saml/xmlenc"
	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"
	"go.uber.org/zap"
)

// Options configure an identity provider made by New.
type Options struct {
	// BaseURL is where the identity provider is reached, for example
	// http://localhost:8081. Its metadata, which is also its entity ID,
	// is at <BaseURL>/metadata and its single sign-on service at
	// <BaseURL>/sso. A path in it is stripped from the requests before
	// they are routed. Required.
	BaseURL string

	// Key signs the responses and assertions. Nil means a new RSA 2048
	// key and a self-signed Certificate are made, so service providers
	// must fetch the metadata again after every New.
	Key *rsa.PrivateKey

	// Certificate is published in the metadata for Key. It must be set
	// when Key is, and is ignored when Key is nil.
	Certificate *x509.Certificate

	// Users are the accounts people may sign in with. Empty means
	// DefaultUsers.
	Users []User

	// ServiceProviders are the metadata URLs of the service providers
	// this identity provider answers. They are fetched the first time
	// one is needed, again when an unknown entity ID shows up, and when
	// they are ten seconds old; a URL that cannot be fetched keeps its
	// last metadata. An empty list answers nobody.
	ServiceProviders []string

	// HTTPClient fetches the metadata of the service providers. Nil
	// means a client that gives up after five seconds.
	HTTPClient *http.Client

	// Clock is the time source for sessions, assertions and metadata
	// freshness. Nil means the real clock.
	Clock func() time.Time

	// Logger receives sign-ins (info) and failures (warn). Nil discards
	// them.
	Logger *zap.Logger
}

// IDP is a running demo identity provider; it is an http.Handler. Make it
// with New.
type IDP struct {
	base      *url.URL
	server    *samlidp.Server
	users     []User
	providers *serviceProviders
	handler   http.Handler
	logger    *zap.Logger
	now       func() time.Time
}

// New returns an identity provider for opts. It does no network I/O: the
// service providers' metadata is fetched when it is first needed.
func New(opts Options) (*IDP, error) {
	base, err := parseBaseURL(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	opts = withDefaults(opts)
	users, err := checkUsers(opts.Users)
	if err != nil {
		return nil, err
	}
	if err := checkServiceProviders(opts.ServiceProviders); err != nil {
		return nil, err
	}
	key, cert, err := keyPair(opts)
	if err != nil {
		return nil, err
	}

	idp := &IDP{
		base:   base,
		users:  users,
		logger: opts.Logger,
		now:    opts.Clock,
		providers: &serviceProviders{
			urls:   slices.Clone(opts.ServiceProviders),
			client: opts.HTTPClient,
			now:    opts.Clock,
			logger: opts.Logger,
		},
	}
	idp.server, err = idp.newServer(base, key, cert)
	if err != nil {
		return nil, err
	}
	idp.handler = idp.routes(base.Path)
	return idp, nil
}

// ServeHTTP answers the identity provider's endpoints: / (a page about
// it), /metadata, /sso, /slo and /logout under the base URL's path. Any
// other path gets 404.
func (idp *IDP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	idp.handler.ServeHTTP(w, r)
}

// Handles reports whether path is one of the identity provider's
// endpoints, which ServeHTTP answers.
func (idp *IDP) Handles(path string) bool {
	rest, ok := strings.CutPrefix(path, idp.base.Path)
	if !ok {
		return false
	}
	switch rest {
	case "/", "/metadata", "/sso", "/slo", "/logout":
		return true
	}
	return false
}

// MetadataURL returns the URL of the metadata, which is also the entity
// ID of the identity provider.
func (idp *IDP) MetadataURL() string {
	return idp.endpoint("/metadata")
}

// endpoint returns the URL of the endpoint at path under the base URL.
func (idp *IDP) endpoint(path string) string {
	u := *idp.base
	u.Path += path
	return u.String()
}

// parseBaseURL checks that raw is an absolute http or https URL and
// returns it without a trailing slash.
func parseBaseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("base URL is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parsing base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("base URL %q is not an absolute http(s) URL",
			raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("base URL %q has a query or fragment", raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// withDefaults fills in the options whose zero value means a default.
func withDefaults(opts Options) Options {
	if len(opts.Users) == 0 {
		opts.Users = DefaultUsers()
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: fetchTimeout}
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	return opts
}

// keyPair returns the configured key and certificate, or new ones.
func keyPair(opts Options) (*rsa.PrivateKey, *x509.Certificate, error) {
	if opts.Key == nil {
		return NewKeyPair(opts.Clock())
	}
	if opts.Certificate == nil {
		return nil, nil, errors.New("a key needs its certificate")
	}
	pub, ok := opts.Certificate.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&opts.Key.PublicKey) {
		return nil, nil, errors.New("the certificate is not for the key")
	}
	return opts.Key, opts.Certificate, nil
}

// newServer builds the samlidp server that does the SAML work: it signs
// with key, keeps the users and sessions in memory, and asks idp for the
// service providers, the login page and the assertions.
func (idp *IDP) newServer(base *url.URL, key *rsa.PrivateKey,
	cert *x509.Certificate) (*samlidp.Server, error) {
	store := &samlidp.MemoryStore{}
	if err := putUsers(store, idp.users); err != nil {
		return nil, err
	}
	srv, err := samlidp.New(samlidp.Options{
		URL:               *base,
		Key:               key,
		Certificate:       cert,
		Logger:            newSAMLLogger(idp.logger),
		Store:             store,
		LoginFormTemplate: idp.loginTemplate(),
		AdminMiddleware:   refuseAdmin,
		Clock:             dsig.NewFakeClock(newFuncClock(idp.now)),
	})
	if err != nil {
		return nil, fmt.Errorf("starting SAML identity provider: %w", err)
	}

	srv.IDP.SignatureMethod = dsig.RSASHA256SignatureMethod
	srv.IDP.ServiceProviderProvider = idp.providers
	srv.IDP.SessionProvider = &sessionProvider{Server: srv, idp: idp}
	srv.IDP.AssertionMaker = assertionMaker{}
	srv.IDP.OnError = idp.serveError

	// AES-GCM rather than the default AES-CBC for service providers that
	// want encrypted assertions: crewjam/saml service providers read it.
	enc := xmlenc.OAEP_SHA256()
	enc.BlockCipher = xmlenc.AES256GCM
	srv.IDP.AssertionEncrypter = enc
	return srv, nil
}

// routes serves the endpoints browsers and service providers need, and
// nothing of samlidp's unauthenticated administration API.
func (idp *IDP) routes(basePath string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", idp.serveIndex)
	mux.Handle("GET /metadata", idp.server)
	mux.Handle("/sso", noStore(idp.server))
	mux.Handle("/slo", noStore(idp.server))
	mux.Handle("/logout", noStore(idp.server))
	if basePath == "" {
		return mux
	}
	return http.StripPrefix(basePath, mux)
}

// noStore keeps browsers and proxies from storing the pages of h, which
// carry SAML messages.
func noStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// refuseAdmin stands in front of samlidp's administration API, which has
// no authentication: anyone could list the sessions or add users.
func refuseAdmin(http.Handler) http.Handler {
	return http.NotFoundHandler()
}

// funcClock is a clockwork.Clock whose Now comes from a function, so that
// Options.Clock drives the SAML library too. Timers stay on the real
// clock.
type funcClock struct {
	clockwork.Clock
	now func() time.Time
}

// newFuncClock returns a clock whose time is now().
func newFuncClock(now func() time.Time) funcClock {
	return funcClock{Clock: clockwork.NewRealClock(), now: now}
}

// Now returns the time of the configured clock.
func (c funcClock) Now() time.Time { return c.now() }

// Since returns the time elapsed since t on the configured clock.
func (c funcClock) Since(t time.Time) time.Duration { return c.now().Sub(t) }

// Until returns the time left until t on the configured clock.
func (c funcClock) Until(t time.Time) time.Duration { return t.Sub(c.now()) }

// pageTemplate parses one of the identity provider's pages.
func pageTemplate(name, text string,
	funcs template.FuncMap) *template.Template {
	return template.Must(template.New(name).Funcs(funcs).Parse(text))
}

// Interface guards
var (
	_ http.Handler                 = (*IDP)(nil)
	_ saml.AssertionMaker          = assertionMaker{}
	_ saml.SessionProvider         = (*sessionProvider)(nil)
	_ saml.ServiceProviderProvider = (*serviceProviders)(nil)
	_ clockwork.Clock              = funcClock{}
)
