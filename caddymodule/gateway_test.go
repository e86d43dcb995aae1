package caddymodule_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/arrowgate/arrowgate/internal/gatewaytest"
	"github.com/arrowgate/arrowgate/provisioner"
	"github.com/arrowgate/arrowgate/provisioner/sqlite"
)

// env is one gateway in front of the echoing upstream, with acme's and
// globex's identity providers.
type env struct {
	gw       string
	db       string
	acmeIDP  *gatewaytest.IDP
	upstream *gatewaytest.Upstream
}

type envOptions struct {
	admin  string // the admin endpoint's address; empty means off
	seats  int
	jit    string
	acmeMD string // overrides acme's idp_metadata_url

	// trustLoopback trusts 127.0.0.1 as a proxy (trusted_proxies), as
	// behind a load balancer that ends TLS
	trustLoopback bool
}

var acmeUsers = []string{"alice@acme.test", "bob@acme.test",
	"carol@acme.test", "dave@acme.test"}

func startEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	port := gatewaytest.FreePort(t)
	gw := fmt.Sprintf("http://127.0.0.1:%d", port)
	acme := gatewaytest.StartIDP(t, acmeUsers,
		gw+"/.arrow/saml/acme/metadata")
	globex := gatewaytest.StartIDP(t, []string{"erin@globex.test"},
		gw+"/.arrow/saml/globex/metadata")
	up := gatewaytest.StartUpstream(t)
	db := filepath.Join(t.TempDir(), "arrow.db")
	if o.jit == "" {
		o.jit = "on"
	}
	if o.acmeMD == "" {
		o.acmeMD = acme.MetadataURL()
	}

	global := gatewaytest.GlobalOptions(t)
	if o.admin != "" {
		global = strings.Replace(global, "admin off", "admin "+o.admin, 1)
	}
	if o.trustLoopback {
		global = strings.Replace(global, "persist_config off",
			"persist_config off\n\tservers {\n\t\ttrusted_proxies "+
				"static 127.0.0.1/32\n\t}", 1)
	}
	gatewaytest.Load(t, global+fmt.Sprintf(`
%s {
	arrow_sso {
		store sqlite %s
		member_cache_ttl 100ms
		org acme {
			name "Acme Corp"
			plan business
			seats %d
			domains acme.test
			idp_metadata_url %s
			jit %s
			buy_seats_url https://billing.example/acme
			admin_contact it@acme.test
		}
		org globex {
			name "Globex"
			plan omnix
			seats 5
			domains globex.test
			idp_metadata_url %s
			jit on
		}
	}
	reverse_proxy %s
}
`, gw, db, o.seats, o.acmeMD, o.jit, globex.MetadataURL(), up.URL))
	return &env{gw: gw, db: db, acmeIDP: acme, upstream: up}
}

// seen decodes what the upstream saw.
func seen(t *testing.T, r gatewaytest.Response) gatewaytest.Seen {
	t.Helper()
	var s gatewaytest.Seen
	if err := json.Unmarshal([]byte(r.Body), &s); err != nil {
		t.Fatalf("upstream answer is not JSON (status %d): %v\n%s",
			r.StatusCode, err, r.Body)
	}
	return s
}

// members lists acme's members as the store has them.
func (e *env) members(t *testing.T, org string) []string {
	t.Helper()
	st, err := sqlite.Open(context.Background(), e.db)
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	defer st.Close()
	ms, err := st.Members(context.Background(), org)
	if err != nil {
		t.Fatalf("listing members: %v", err)
	}
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Email)
	}
	return out
}

func cookieNamed(r gatewaytest.Response, name string) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestSignInProvisionsAndReachesUpstream(t *testing.T) {
	e := startEnv(t, envOptions{seats: 3})
	b := gatewaytest.NewBrowser(t)

	first := b.Get(t, e.gw+"/docs?a=1&b=2")
	if first.StatusCode != http.StatusFound {
		t.Fatalf("no session: want 302, got %d", first.StatusCode)
	}
	want := "/.arrow/login?return_to=" + url.QueryEscape("/docs?a=1&b=2")
	if loc := first.Header.Get("Location"); loc != want {
		t.Fatalf("redirect to %q, want %q", loc, want)
	}

	acs := b.SignIn(t, e.gw, "/docs?a=1&b=2", "alice@acme.test")
	if acs.StatusCode != http.StatusSeeOther {
		t.Fatalf("ACS: want 303, got %d:\n%s", acs.StatusCode, acs.Body)
	}
	if loc := acs.Header.Get("Location"); loc != "/docs?a=1&b=2" {
		t.Fatalf("back to %q, want the page asked for", loc)
	}
	c := cookieNamed(acs, "arrow_session")
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode ||
		len(c.Value) != 43 {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, 256 bits",
			c)
	}

	got := seen(t, b.Follow(t, acs))
	h := got.Headers
	if h["X-Arrow-Email"] != "alice@acme.test" || h["X-Arrow-Org"] != "acme" ||
		h["X-Arrow-Member-Id"] == "" || h["X-Arrow-Name"] != "Alice Test" {
		t.Fatalf("upstream saw %+v", h)
	}
	if got.Path != "/docs?a=1&b=2" {
		t.Fatalf("upstream saw path %q", got.Path)
	}
	if ms := e.members(t, "acme"); len(ms) != 1 || ms[0] != "alice@acme.test" {
		t.Fatalf("members after first sign-in: %v", ms)
	}

	// a second visit needs no sign-in
	again := seen(t, b.Get(t, e.gw+"/other"))
	if again.Headers["X-Arrow-Email"] != "alice@acme.test" {
		t.Fatalf("second visit: upstream saw %+v", again.Headers)
	}
}

func TestClientIdentityHeadersNeverReachUpstream(t *testing.T) {
	e := startEnv(t, envOptions{seats: 3})
	b := gatewaytest.NewBrowser(t)
	spoof := func(path string) gatewaytest.Response {
		req, _ := http.NewRequest(http.MethodGet, e.gw+path, nil)
		req.Header.Set("X-Arrow-Email", "ceo@acme.test")
		req.Header.Set("x-arrow-org", "globex")
		req.Header.Set("X-ARROW-MEMBER-ID", "1")
		req.Header.Set("X-Arrow-Anything", "x")
		return b.Do(t, req)
	}

	if r := spoof("/"); r.StatusCode != http.StatusFound {
		t.Fatalf("spoofed headers without a session: want the login "+
			"redirect, got %d %s", r.StatusCode, r.Body)
	}

	b.SignIn(t, e.gw, "/", "bob@acme.test")
	h := seen(t, spoof("/x")).Headers
	if h["X-Arrow-Email"] != "bob@acme.test" || h["X-Arrow-Org"] != "acme" ||
		h["X-Arrow-Member-Id"] == "1" {
		t.Fatalf("upstream saw spoofed identity: %+v", h)
	}
	if _, ok := h["X-Arrow-Anything"]; ok {
		t.Fatalf("upstream saw a client-sent X-Arrow- header: %+v", h)
	}
}

func TestAPIRequestWithoutSessionGetsProblem(t *testing.T) {
	e := startEnv(t, envOptions{seats: 3})
	b := gatewaytest.NewBrowser(t)
	b.Accept = "application/json"
	r := b.Get(t, e.gw+"/api/items")
	if r.StatusCode != http.StatusUnauthorized ||
		r.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("want 401 problem+json, got %d %s", r.StatusCode,
			r.Header.Get("Content-Type"))
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(r.Body), &p); err != nil {
		t.Fatal(err)
	}
	if p["code"] != "login_required" || p["login_url"] != "/.arrow/login" ||
		p["status"] != float64(401) {
		t.Fatalf("problem document: %v", p)
	}
}

var refRe = regexp.MustCompile(`ARW-[A-Z2-9]{10}`)

func TestOutOfSeatsPage(t *testing.T) {
	e := startEnv(t, envOptions{seats: 2})
	for _, who := range acmeUsers[:2] {
		r := gatewaytest.NewBrowser(t).SignIn(t, e.gw, "/", who)
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: want 303, got %d", who, r.StatusCode)
		}
	}

	r := gatewaytest.NewBrowser(t).SignIn(t, e.gw, "/", "carol@acme.test")
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("third person on 2 seats: want 403, got %d", r.StatusCode)
	}
	for _, want := range []string{"Acme Corp", "no free seat",
		"it@acme.test", `href="https://billing.example/acme"`,
		"Buy more seats"} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("out-of-seats page lacks %q:\n%s", want, r.Body)
		}
	}
	if !refRe.MatchString(r.Body) {
		t.Errorf("out-of-seats page shows no reference ID")
	}
	if cookieNamed(r, "arrow_session") != nil {
		t.Errorf("out of seats, yet a session cookie was set")
	}
	if ms := e.members(t, "acme"); len(ms) != 2 {
		t.Fatalf("members: %v, want the first two only", ms)
	}

	// the same answer as JSON for API clients
	b := gatewaytest.NewBrowser(t)
	idp := b.ToIdentityProvider(t, e.gw, "/", "dave@acme.test")
	acs, form := b.AssertionFor(t, idp, "dave@acme.test")
	req, _ := http.NewRequest(http.MethodPost, acs,
		strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	j := b.Do(t, req)
	var p map[string]any
	if err := json.Unmarshal([]byte(j.Body), &p); err != nil {
		t.Fatalf("out-of-seats JSON: %v\n%s", err, j.Body)
	}
	if j.StatusCode != 403 || p["code"] != "out_of_seats" ||
		p["buy_seats_url"] != "https://billing.example/acme" ||
		!refRe.MatchString(fmt.Sprint(p["reference"])) {
		t.Fatalf("out-of-seats JSON: %d %v", j.StatusCode, p)
	}
}

func TestJITOffNeedsInvitation(t *testing.T) {
	e := startEnv(t, envOptions{seats: 3, jit: "off"})
	r := gatewaytest.NewBrowser(t).SignIn(t, e.gw, "/", "alice@acme.test")
	if r.StatusCode != http.StatusForbidden ||
		!strings.Contains(r.Body, "invitation") ||
		!strings.Contains(r.Body, "it@acme.test") {
		t.Fatalf("jit off, not invited: want 403 asking for an "+
			"invitation, got %d:\n%s", r.StatusCode, r.Body)
	}
	if ms := e.members(t, "acme"); len(ms) != 0 {
		t.Fatalf("not invited, yet members: %v", ms)
	}

	st, err := sqlite.Open(context.Background(), e.db)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Invite(context.Background(), provisioner.Invitation{
		OrgID: "acme", Email: "bob@acme.test"}, 3)
	st.Close()
	if err != nil {
		t.Fatalf("inviting: %v", err)
	}
	r = gatewaytest.NewBrowser(t).SignIn(t, e.gw, "/", "bob@acme.test")
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("invited person: want 303, got %d:\n%s", r.StatusCode,
			r.Body)
	}
}

func TestReplayedResponseIsRejected(t *testing.T) {
	e := startEnv(t, envOptions{seats: 3})
	b := gatewaytest.NewBrowser(t)
	idp := b.ToIdentityProvider(t, e.gw, "/", "alice@acme.test")
	acs, form := b.AssertionFor(t, idp, "alice@acme.test")
	gwURL, _ := url.Parse(e.gw + "/.arrow/saml/")
	stolen := b.Client.Jar.Cookies(gwURL)

	if r := b.PostForm(t, acs, form); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("first post: want 303, got %d", r.StatusCode)
	}

	// the same browser posting again, and an attacker holding a copy of
	// both the response and the tracking cookie
	if r := b.PostForm(t, acs, form); r.StatusCode != http.StatusForbidden {
		t.Fatalf("repost: want 403, got %d", r.StatusCode)
	}
	thief := gatewaytest.NewBrowser(t)
	thief.Client.Jar.SetCookies(gwURL, stolen)
	r := thief.PostForm(t, acs, form)
	if r.StatusCode != http.StatusForbidden ||
		cookieNamed(r, "arrow_session") != nil {
		t.Fatalf("replay: want 403 without a session, got %d", r.StatusCode)
	}
	if strings.Contains(r.Body, "replay") || !refRe.MatchString(r.Body) {
		t.Fatalf("replay page must show a reference and no detail:\n%s",
			r.Body)
	}
}

func TestLoginCSRFWithoutTrackingCookie(t *testing.T) {
	e := startEnv(t, envOptions{seats: 3})
	b := gatewaytest.NewBrowser(t)
	idp := b.ToIdentityProvider(t, e.gw, "/", "alice@acme.test")
	acs, form := b.AssertionFor(t, idp, "alice@acme.test")

	// a victim's browser that never started this login
	victim := gatewaytest.NewBrowser(t)
	r := victim.PostForm(t, acs, form)
	if r.StatusCode != http.StatusForbidden ||
		cookieNamed(r, "arrow_session") != nil {
		t.Fatalf("ACS post without tracking cookie: want 403 and no "+
			"session, got %d", r.StatusCode)
	}
	if ms := e.members(t, "acme"); len(ms) != 0 {
		t.Fatalf("a refused post added members: %v", ms)
	}
}

func TestLogout(t *testing.T) {
	e := startEnv(t, envOptions{seats: 3})
	b := gatewaytest.NewBrowser(t)
	b.SignIn(t, e.gw, "/", "alice@acme.test")

	page := b.Get(t, e.gw+"/.arrow/logout")
	action, form := gatewaytest.FormOf(t, page.Body)
	if form.Get("csrf") == "" {
		t.Fatalf("logout page has no CSRF token:\n%s", page.Body)
	}

	forged := b.PostForm(t, e.gw+action, url.Values{})
	if forged.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without token: want 403, got %d",
			forged.StatusCode)
	}
	if s := seen(t, b.Get(t, e.gw+"/")); s.Headers["X-Arrow-Email"] == "" {
		t.Fatalf("a forged logout ended the session")
	}

	out := b.PostForm(t, e.gw+action, form)
	if out.StatusCode != http.StatusOK ||
		!strings.Contains(out.Body, "signed out") {
		t.Fatalf("logout: got %d:\n%s", out.StatusCode, out.Body)
	}
	if r := b.Get(t, e.gw+"/"); r.StatusCode != http.StatusFound {
		t.Fatalf("after logout: want the login redirect, got %d",
			r.StatusCode)
	}
}

func TestLoginPageMessages(t *testing.T) {
	e := startEnv(t, envOptions{seats: 3})
	b := gatewaytest.NewBrowser(t)
	cases := []struct {
		email  string
		status int
		want   string
	}{
		{"not an address", 400, "does not look like an email address"},
		{"a@b@acme.test", 400, "does not look like an email address"},
		{"someone@example.org", 404,
			"No Arrow plan here signs in with SSO for example.org"},
		{"someone@ACME.TEST.", 400, "does not look like an email address"},
	}
	for _, c := range cases {
		r := b.PostForm(t, e.gw+"/.arrow/login", url.Values{
			"email": {c.email}, "return_to": {"/x"}})
		if r.StatusCode != c.status || !strings.Contains(r.Body, c.want) {
			t.Errorf("%q: want %d with %q, got %d:\n%s", c.email,
				c.status, c.want, r.StatusCode, r.Body)
		}
	}

	// a mixed-case, padded address of a known domain goes to its IdP
	r := b.PostForm(t, e.gw+"/.arrow/login", url.Values{
		"email": {"  Alice@ACME.Test "}})
	loc := r.Header.Get("Location")
	if r.StatusCode != http.StatusFound ||
		!strings.HasPrefix(loc, e.acmeIDP.URL) ||
		!strings.Contains(loc, "login_hint=alice%40acme.test") {
		t.Fatalf("known domain: want a redirect to acme's IdP, got %d %s",
			r.StatusCode, loc)
	}
}

func TestOpenRedirectsFallBackToRoot(t *testing.T) {
	e := startEnv(t, envOptions{seats: 3})
	for _, bad := range []string{"//evil.example", "/\\evil.example",
		"/%5Cevil.example", "/\t/evil.example", "https://evil.example",
		"javascript:alert(1)", "/%2F%2Fevil.example"} {
		b := gatewaytest.NewBrowser(t)
		login := b.Get(t, e.gw+"/.arrow/login?return_to="+
			url.QueryEscape(bad))
		_, form := gatewaytest.FormOf(t, login.Body)
		if form.Get("return_to") != "/" {
			t.Errorf("return_to %q kept as %q", bad, form.Get("return_to"))
		}
		idp := b.ToIdentityProvider(t, e.gw, "/", "alice@acme.test")
		_ = idp
	}
	// the whole way: the post carries a bad return_to
	b := gatewaytest.NewBrowser(t)
	r := b.PostForm(t, e.gw+"/.arrow/login", url.Values{
		"email": {"bob@acme.test"}, "return_to": {"//evil.example/x"}})
	idpPage := b.Follow(t, r)
	acs, form := b.AssertionFor(t, idpPage, "bob@acme.test")
	done := b.PostForm(t, acs, form)
	if loc := done.Header.Get("Location"); loc != "/" {
		t.Fatalf("after sign-in with return_to //evil: sent to %q", loc)
	}
}

func TestMetadataPublished(t *testing.T) {
	e := startEnv(t, envOptions{seats: 3})
	r := gatewaytest.NewBrowser(t).Get(t, e.gw+"/.arrow/saml/acme/metadata")
	if r.StatusCode != 200 {
		t.Fatalf("metadata: %d", r.StatusCode)
	}
	for _, want := range []string{
		`entityID="` + e.gw + `/.arrow/saml/acme/metadata"`,
		`Location="` + e.gw + `/.arrow/saml/acme/acs"`,
		"X509Certificate",
	} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("metadata lacks %s:\n%s", want, r.Body)
		}
	}
}

// TestHTTPSFromTrustedProxy puts the gateway behind a load balancer that
// ends TLS: its X-Forwarded-Proto makes the metadata and cookies https,
// and the same header from a client that is not a trusted proxy changes
// nothing.
func TestHTTPSFromTrustedProxy(t *testing.T) {
	for _, c := range []struct {
		name    string
		trusted bool
		scheme  string
	}{
		{"trusted_proxy", true, "https"},
		{"untrusted_client", false, "http"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := startEnv(t, envOptions{seats: 3,
				trustLoopback: c.trusted})
			b := gatewaytest.NewBrowser(t)
			get := func(u string) gatewaytest.Response {
				req, _ := http.NewRequest(http.MethodGet, u, nil)
				req.Header.Set("X-Forwarded-Proto", "https")
				return b.Do(t, req)
			}
			site := c.scheme + "://" + strings.TrimPrefix(e.gw, "http://")
			md := get(e.gw + "/.arrow/saml/acme/metadata")
			for _, want := range []string{
				`entityID="` + site + `/.arrow/saml/acme/metadata"`,
				`Location="` + site + `/.arrow/saml/acme/acs"`,
			} {
				if !strings.Contains(md.Body, want) {
					t.Errorf("metadata lacks %s:\n%s", want, md.Body)
				}
			}

			req, _ := http.NewRequest(http.MethodPost, e.gw+"/.arrow/login",
				strings.NewReader("email=alice%40acme.test&return_to=%2F"))
			req.Header.Set("Content-Type",
				"application/x-www-form-urlencoded")
			req.Header.Set("X-Forwarded-Proto", "https")
			r := b.Do(t, req)
			if r.StatusCode != http.StatusFound {
				t.Fatalf("login post: want 302 to the identity "+
					"provider, got %d:\n%s", r.StatusCode, r.Body)
			}
			// over https the identity provider's cross-site post
			// must carry the tracking cookie: Secure, SameSite=None
			set := r.Header.Get("Set-Cookie")
			if !strings.HasPrefix(set, "arrow_login_") ||
				strings.Contains(set, "; Secure") != c.trusted ||
				strings.Contains(set, "SameSite=None") != c.trusted {
				t.Errorf("tracking cookie %q: want the %s form", set,
					c.scheme)
			}
		})
	}
}

func TestIdentityProviderDownShows503ForThatOrgOnly(t *testing.T) {
	dead := fmt.Sprintf("http://127.0.0.1:%d/metadata",
		gatewaytest.FreePort(t))
	e := startEnv(t, envOptions{seats: 3, acmeMD: dead})
	b := gatewaytest.NewBrowser(t)
	r := b.PostForm(t, e.gw+"/.arrow/login", url.Values{
		"email": {"alice@acme.test"}})
	if r.StatusCode != http.StatusServiceUnavailable ||
		!strings.Contains(r.Body,
			"Sign-in for Acme Corp is temporarily unavailable") {
		t.Fatalf("acme's IdP down: want 503 naming the org, got %d:\n%s",
			r.StatusCode, r.Body)
	}
	if strings.Contains(r.Body, "connection refused") {
		t.Fatalf("the 503 page shows internals:\n%s", r.Body)
	}
	// globex is not affected
	ok := b.SignIn(t, e.gw, "/", "erin@globex.test")
	if ok.StatusCode != http.StatusSeeOther {
		t.Fatalf("globex sign-in while acme's IdP is down: %d", ok.StatusCode)
	}
}

func TestIdentityProviderHangingShows503(t *testing.T) {
	// a metadata server that accepts connections and never answers
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter,
		*http.Request) {
		<-hang
	}))
	t.Cleanup(func() { close(hang); srv.Close() })

	e := startEnv(t, envOptions{seats: 3, acmeMD: srv.URL + "/metadata"})
	b := gatewaytest.NewBrowser(t)
	r := b.PostForm(t, e.gw+"/.arrow/login", url.Values{
		"email": {"alice@acme.test"}})
	if r.StatusCode != http.StatusServiceUnavailable ||
		!strings.Contains(r.Body, "Acme Corp is temporarily unavailable") {
		t.Fatalf("acme's IdP hangs: want the 503 page, got %d:\n%s",
			r.StatusCode, r.Body)
	}
}
