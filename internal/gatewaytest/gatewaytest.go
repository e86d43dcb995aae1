// Package gatewaytest runs a real Arrowgate (Caddy with arrow_sso) in the
// test process, with a demo identity provider, an upstream that echoes
// who called it, and a cookie-keeping client that signs in as a browser
// would. Tests of several packages share it.
package gatewaytest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	// the Caddy modules the gateways under test use
	_ "github.com/arrowgate/arrowgate/caddymodule"
	_ "github.com/arrowgate/arrowgate/examples/demoapp"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/arrowgate/arrowgate/examples/demoidp"
	"github.com/arrowgate/arrowgate/internal/testport"
)

// Password is the password of every test user.
const Password = "demo"

// FreePort returns a port nobody listens on right now, for a gateway the
// test configures by port. See testport.Free.
func FreePort(t testing.TB) int {
	t.Helper()
	return testport.Free(t)
}

// IDP is a demo identity provider served by an httptest server.
type IDP struct {
	*httptest.Server
	IDP *demoidp.IDP
}

// MetadataURL is where the gateway fetches the identity provider's
// metadata.
func (p *IDP) MetadataURL() string { return p.URL + "/metadata" }

// StartIDP starts an identity provider for the given emails (password
// Password), answering the service providers whose metadata URLs are
// given.
func StartIDP(t testing.TB, emails []string, spMetadata ...string) *IDP {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)

	users := make([]demoidp.User, 0, len(emails))
	for _, e := range emails {
		name := strings.ToUpper(e[:1]) + strings.Split(e, "@")[0][1:]
		users = append(users, demoidp.User{
			Username: e, Password: Password, Email: e, Name: name + " Test",
		})
	}
	idp, err := demoidp.New(demoidp.Options{
		BaseURL:          srv.URL,
		Users:            users,
		ServiceProviders: spMetadata,
		Logger:           zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("starting identity provider: %v", err)
	}
	srv.Config.Handler = idp
	return &IDP{Server: srv, IDP: idp}
}

// Upstream is the stand-in for Arrow: it answers every request with a
// JSON document of the request's path and its X-Arrow- headers.
type Upstream struct {
	*httptest.Server
}

// Seen is what the upstream saw of one request.
type Seen struct {
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
}

// StartUpstream starts the echoing upstream.
func StartUpstream(t testing.TB) *Upstream {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter,
		r *http.Request) {
		seen := Seen{Path: r.URL.RequestURI(), Headers: map[string]string{}}
		for k, v := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-arrow-") {
				seen.Headers[k] = strings.Join(v, ",")
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(seen)
	}))
	t.Cleanup(srv.Close)
	return &Upstream{Server: srv}
}

// Gateway is a running Caddy configuration.
type Gateway struct {
	// URL is the origin of the gateway's site, like
	// http://127.0.0.1:PORT.
	URL string
}

// Load adapts a Caddyfile and runs it in this process, replacing any
// configuration running before. Caddy stops when the test ends.
func Load(t testing.TB, caddyfileText string) {
	t.Helper()
	cfg, err := Adapt(caddyfileText)
	if err != nil {
		t.Fatalf("adapting Caddyfile: %v\n%s", err, caddyfileText)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("loading configuration: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
}

// Adapt turns Caddyfile text into Caddy's JSON.
func Adapt(text string) ([]byte, error) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	cfg, warnings, err := adapter.Adapt([]byte(text), map[string]any{
		"filename": "Caddyfile",
	})
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		if strings.Contains(w.Message, "not formatted") {
			continue
		}
		return nil, fmt.Errorf("warning: %s:%d: %s", w.File, w.Line,
			w.Message)
	}
	return cfg, nil
}

// Format returns the Caddyfile text formatted as caddy fmt would.
func Format(text string) string {
	return string(caddyfile.Format([]byte(text)))
}

// GlobalOptions are the global options for a test gateway: no admin
// endpoint, no HTTPS automation, storage in a temporary folder.
func GlobalOptions(t testing.TB) string {
	dir := t.TempDir()
	return fmt.Sprintf("{\n\tadmin off\n\tauto_https off\n\t"+
		"storage file_system %s\n\tpersist_config off\n}\n",
		filepath.Join(dir, "caddy"))
}

// WaitFor polls fn until it returns nil or the timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Browser is an HTTP client with a cookie jar that does not follow
// redirects by itself, so tests see each step.
type Browser struct {
	Client *http.Client
	// Accept is sent with every request; default is a browser's.
	Accept string
}

// NewBrowser returns a browser with an empty cookie jar.
func NewBrowser(t testing.TB) *Browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatalf("making cookie jar: %v", err)
	}
	return &Browser{
		Client: &http.Client{
			Jar:     jar,
			Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		Accept: "text/html,application/xhtml+xml,*/*;q=0.8",
	}
}

// Response is an answer with its body read.
type Response struct {
	*http.Response
	Body string
}

// Do sends a request and reads the whole answer.
func (b *Browser) Do(t testing.TB, req *http.Request) Response {
	t.Helper()
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", b.Accept)
	}
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", req.URL, err)
	}
	return Response{Response: resp, Body: string(body)}
}

// Get fetches a URL.
func (b *Browser) Get(t testing.TB, u string) Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatalf("making request: %v", err)
	}
	return b.Do(t, req)
}

// PostForm posts a form.
func (b *Browser) PostForm(t testing.TB, u string, form url.Values) Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u,
		strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("making request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.Do(t, req)
}

// Follow resolves the Location of a redirect against its request URL and
// fetches it.
func (b *Browser) Follow(t testing.TB, r Response) Response {
	t.Helper()
	loc, err := r.Location()
	if err != nil {
		t.Fatalf("%s %s answered %d without a Location: %s",
			r.Request.Method, r.Request.URL, r.StatusCode, r.Body)
	}
	return b.Get(t, loc.String())
}

var inputRe = regexp.MustCompile(`<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"`)
var actionRe = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)

// FormOf returns the action and the named input values of the first form
// of an HTML page.
func FormOf(t testing.TB, page string) (string, url.Values) {
	t.Helper()
	m := actionRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form on the page:\n%s", page)
	}
	vals := url.Values{}
	for _, in := range inputRe.FindAllStringSubmatch(page, -1) {
		vals.Set(in[1], htmlUnescape(in[2]))
	}
	return htmlUnescape(m[1]), vals
}

func htmlUnescape(s string) string {
	r := strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#61;", "=",
		"&quot;", `"`, "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">")
	return r.Replace(s)
}

// ToIdentityProvider opens path on the gateway, types email on the login
// page and returns the identity provider's login page.
func (b *Browser) ToIdentityProvider(t testing.TB, gw, path,
	email string) Response {
	t.Helper()
	r := b.Get(t, gw+path)
	if r.StatusCode != http.StatusFound {
		t.Fatalf("GET %s: want a redirect to the login page, got %d",
			path, r.StatusCode)
	}
	login := b.Follow(t, r)
	action, form := FormOf(t, login.Body)
	form.Set("email", email)
	r = b.PostForm(t, resolve(t, gw, action), form)
	if r.StatusCode != http.StatusFound {
		t.Fatalf("posting %s on the login page: want a redirect to the "+
			"identity provider, got %d:\n%s", email, r.StatusCode, r.Body)
	}
	return b.Follow(t, r)
}

// AssertionFor signs in at the identity provider whose login page is
// idpPage and returns the ACS URL and the form the identity provider
// asks the browser to post there (SAMLResponse and RelayState).
func (b *Browser) AssertionFor(t testing.TB, idpPage Response,
	user string) (string, url.Values) {
	t.Helper()
	action, form := FormOf(t, idpPage.Body)
	form.Set("user", user)
	form.Set("password", Password)
	r := b.PostForm(t, resolve(t, idpPage.Request.URL.String(), action),
		form)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("identity provider login: got %d:\n%s", r.StatusCode,
			r.Body)
	}
	acs, post := FormOf(t, r.Body)
	if post.Get("SAMLResponse") == "" {
		t.Fatalf("identity provider gave no SAMLResponse:\n%s", r.Body)
	}
	return acs, post
}

// SignIn goes the whole way: the protected path, the login page, the
// identity provider, and the post to the ACS. It returns the ACS's answer.
func (b *Browser) SignIn(t testing.TB, gw, path, email string) Response {
	t.Helper()
	idpPage := b.ToIdentityProvider(t, gw, path, email)
	acs, post := b.AssertionFor(t, idpPage, email)
	return b.PostForm(t, acs, post)
}

func resolve(t testing.TB, base, ref string) string {
	t.Helper()
	bu, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parsing %q: %v", base, err)
	}
	ru, err := url.Parse(ref)
	if err != nil {
		t.Fatalf("parsing %q: %v", ref, err)
	}
	return bu.ResolveReference(ru).String()
}

// RequireCI fails under CI=true and skips, loudly, elsewhere.
func RequireCI(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: this must be available)", msg)
	}
	t.Skipf("SKIPPED, NOT TESTED: %s", msg)
}
