package demoidp

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	dsig "github.com/russellhaering/goxmldsig"
	"golang.org/x/net/html"
)

// testKeys are made once: RSA key generation is slow under -race.
var testKeys = sync.OnceValue(func() [2]keyAndCert {
	var pairs [2]keyAndCert
	for i := range pairs {
		key, cert, err := NewKeyPair(time.Now())
		if err != nil {
			panic(err)
		}
		pairs[i] = keyAndCert{key, cert}
	}
	return pairs
})

type keyAndCert struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// testClock is a clock the tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// demo is an identity provider and a crewjam service provider, each on
// its own test server, and a browser with cookies.
type demo struct {
	idp       *IDP
	idpServer *httptest.Server
	sp        *saml.ServiceProvider
	spServer  *httptest.Server
	browser   *http.Client
	clock     *testClock

	// spMetadataStatus, if not 0, is what the SP's metadata URL answers
	// instead of the metadata.
	mu               sync.Mutex
	spMetadataStatus int
}

// newDemo starts a service provider and an identity provider that knows
// it, unless the service provider is left out of opts by edit.
func newDemo(t *testing.T, edit func(*Options)) *demo {
	t.Helper()
	d := &demo{clock: &testClock{now: time.Now()}}
	d.spServer = httptest.NewServer(http.HandlerFunc(d.serveSPMetadata))
	t.Cleanup(d.spServer.Close)
	d.idpServer = httptest.NewServer(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			d.idp.ServeHTTP(w, r)
		}))
	t.Cleanup(d.idpServer.Close)

	keys := testKeys()
	opts := Options{
		BaseURL:          d.idpServer.URL,
		Key:              keys[0].key,
		Certificate:      keys[0].cert,
		ServiceProviders: []string{d.spServer.URL + "/saml/metadata"},
		Clock:            d.clock.Now,
	}
	if edit != nil {
		edit(&opts)
	}
	var err error
	if d.idp, err = New(opts); err != nil {
		t.Fatalf("New: %v", err)
	}
	sp := d.newSP(t, keys[1])
	d.mu.Lock()
	d.sp = sp
	d.mu.Unlock()

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	d.browser = &http.Client{Jar: jar}
	return d
}

// newSP returns a service provider with the hardening on that trusts
// the identity provider's metadata.
func (d *demo) newSP(t *testing.T, kc keyAndCert) *saml.ServiceProvider {
	t.Helper()
	idpMetadata, err := samlsp.FetchMetadata(t.Context(), nil,
		*mustURL(t, d.idp.MetadataURL()))
	if err != nil {
		t.Fatalf("fetching IdP metadata: %v", err)
	}
	base := d.spServer.URL + "/saml"
	return &saml.ServiceProvider{
		EntityID:                    base + "/metadata",
		Key:                         kc.key,
		Certificate:                 kc.cert,
		MetadataURL:                 *mustURL(t, base+"/metadata"),
		AcsURL:                      *mustURL(t, base+"/acs"),
		IDPMetadata:                 idpMetadata,
		AuthnNameIDFormat:           saml.EmailAddressNameIDFormat,
		RejectSHA1Signatures:        true,
		RejectUnknownConditions:     true,
		RequireSignedResponseForCBC: true,
		Clock:                       dsig.NewFakeClock(newFuncClock(d.clock.Now)),
	}
}

func (d *demo) serveSPMetadata(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	status := d.spMetadataStatus
	d.mu.Unlock()
	if status != 0 {
		http.Error(w, "down", status)
		return
	}
	d.mu.Lock()
	sp := d.sp
	d.mu.Unlock()
	if r.URL.Path != "/saml/metadata" || sp == nil {
		http.NotFound(w, r)
		return
	}
	buf, err := xml.Marshal(sp.Metadata())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	_, _ = w.Write(buf)
}

// startLogin makes an AuthnRequest for subject ("" for none) and opens
// its redirect URL in the browser. It returns the request ID and the
// page the identity provider answered.
func (d *demo) startLogin(t *testing.T, subject string) (string, *page) {
	t.Helper()
	req, err := d.sp.MakeAuthenticationRequest(
		d.sp.GetSSOBindingLocation(saml.HTTPRedirectBinding),
		saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		t.Fatal(err)
	}
	if subject != "" {
		req.Subject = &saml.Subject{NameID: &saml.NameID{
			Format: string(saml.EmailAddressNameIDFormat),
			Value:  subject,
		}}
	}
	u, err := req.Redirect("/inbox?folder=1", d.sp)
	if err != nil {
		t.Fatal(err)
	}
	return req.ID, d.get(t, u.String())
}

// page is an HTML page the browser got.
type page struct {
	status int
	body   string
	doc    *html.Node
}

func (d *demo) get(t *testing.T, u string) *page {
	t.Helper()
	resp, err := d.browser.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return readPage(t, resp)
}

func (d *demo) post(t *testing.T, u string, form url.Values) *page {
	t.Helper()
	resp, err := d.browser.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	return readPage(t, resp)
}

func readPage(t *testing.T, resp *http.Response) *page {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parsing page: %v", err)
	}
	return &page{status: resp.StatusCode, body: string(body), doc: doc}
}

// form returns the action and fields of the first form of the page.
func (p *page) form(t *testing.T) (string, url.Values) {
	t.Helper()
	f := findElement(p.doc, "form")
	if f == nil {
		t.Fatalf("no form on the page (status %d):\n%s", p.status, p.body)
	}
	fields := url.Values{}
	for n := range f.Descendants() {
		if n.Type == html.ElementNode && n.Data == "input" {
			fields.Set(attr(n, "name"), attr(n, "value"))
		}
	}
	return attr(f, "action"), fields
}

// findElement returns the first element named tag under n.
func findElement(n *html.Node, tag string) *html.Node {
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && d.Data == tag {
			return d
		}
	}
	return nil
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// signIn fills in the login form of p and posts it.
func (d *demo) signIn(t *testing.T, p *page, user, password string) *page {
	t.Helper()
	action, fields := p.form(t)
	if fields.Get("SAMLRequest") == "" {
		t.Fatalf("the login form has no SAMLRequest:\n%s", p.body)
	}
	fields.Set("user", user)
	fields.Set("password", password)
	return d.post(t, action, fields)
}

// acceptResponse posts the SAMLResponse form of p to the service
// provider and returns the assertion it validated.
func (d *demo) acceptResponse(t *testing.T, p *page,
	requestID string) *saml.Assertion {
	t.Helper()
	action, fields := p.form(t)
	if fields.Get("SAMLResponse") == "" {
		t.Fatalf("no SAMLResponse on the page (status %d):\n%s",
			p.status, p.body)
	}
	if action != d.sp.AcsURL.String() {
		t.Errorf("response posted to %q, want %q", action, d.sp.AcsURL.String())
	}
	if got := fields.Get("RelayState"); got != "/inbox?folder=1" {
		t.Errorf("RelayState = %q, want /inbox?folder=1", got)
	}
	req := httptest.NewRequest(http.MethodPost, action,
		strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if err := req.ParseForm(); err != nil {
		t.Fatal(err)
	}
	assertion, err := d.sp.ParseResponse(req, []string{requestID})
	if err != nil {
		var invalid *saml.InvalidResponseError
		if errors.As(err, &invalid) {
			t.Fatalf("ParseResponse: %v", invalid.PrivateErr)
		}
		t.Fatalf("ParseResponse: %v", err)
	}
	return assertion
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// attribute returns the values of the attribute name in a.
func attribute(a *saml.Assertion, name string) []string {
	var values []string
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			if at.Name != name {
				continue
			}
			for _, v := range at.Values {
				values = append(values, v.Value)
			}
		}
	}
	return values
}

func TestLoginIssuesSignedAssertionForEmail(t *testing.T) {
	t.Parallel()
	d := newDemo(t, nil)

	id, login := d.startLogin(t, "")
	if login.status != http.StatusOK {
		t.Fatalf("login page status %d:\n%s", login.status, login.body)
	}
	for _, want := range []string{"alice@acme.test", "erin@globex.test",
		"<code>demo</code>", "Dave O&#39;Brien", "Carol Díaz",
		d.sp.EntityID} {
		if !strings.Contains(login.body, want) {
			t.Errorf("login page lacks %q", want)
		}
	}

	done := d.signIn(t, login, "carol@acme.test", "demo")
	assertion := d.acceptResponse(t, done, id)

	nameID := assertion.Subject.NameID
	if nameID.Value != "carol@acme.test" ||
		nameID.Format != string(saml.EmailAddressNameIDFormat) {
		t.Errorf("NameID = %q (%s), want carol@acme.test (emailAddress)",
			nameID.Value, nameID.Format)
	}
	if got := attribute(assertion, "email"); len(got) != 1 ||
		got[0] != "carol@acme.test" {
		t.Errorf("email attribute = %q", got)
	}
	if got := attribute(assertion, "displayName"); len(got) != 1 ||
		got[0] != "Carol Díaz" {
		t.Errorf("displayName attribute = %q", got)
	}
	if assertion.Signature == nil {
		t.Error("the assertion is not signed")
	} else {
		checkSignatureMethod(t, "assertion", assertion.Signature)
	}
	checkResponseSigned(t, done)
}

// checkResponseSigned checks that the Response element itself carries an
// RSA-SHA256 signature.
func checkResponseSigned(t *testing.T, p *page) {
	t.Helper()
	_, fields := p.form(t)
	raw, err := base64.StdEncoding.DecodeString(fields.Get("SAMLResponse"))
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	sig := doc.Root().SelectElement("Signature")
	if sig == nil {
		t.Fatal("the Response is not signed")
	}
	checkSignatureMethod(t, "response", sig)
	if doc.Root().SelectElement("EncryptedAssertion") == nil {
		t.Error("the assertion is not encrypted for the service provider")
	}
}

func checkSignatureMethod(t *testing.T, what string, sig *etree.Element) {
	t.Helper()
	m := sig.FindElement(".//SignatureMethod")
	if m == nil {
		t.Fatalf("%s signature has no SignatureMethod", what)
	}
	if got := m.SelectAttrValue("Algorithm", ""); got !=
		dsig.RSASHA256SignatureMethod {
		t.Errorf("%s signature method = %s, want RSA-SHA256", what, got)
	}
}

func TestWrongPasswordShowsLoginAgain(t *testing.T) {
	t.Parallel()
	d := newDemo(t, nil)
	_, login := d.startLogin(t, "")

	tests := []struct{ user, password string }{
		{"alice@acme.test", "wrong"},
		{"nobody@acme.test", "demo"},
	}
	for _, tt := range tests {
		again := d.signIn(t, login, tt.user, tt.password)
		if !strings.Contains(again.body, "Invalid username or password") {
			t.Errorf("%s/%s: no error message:\n%s", tt.user, tt.password,
				again.body)
		}
		if _, fields := again.form(t); fields.Get("SAMLResponse") != "" ||
			fields.Get("SAMLRequest") == "" {
			t.Errorf("%s/%s: want the login form again", tt.user,
				tt.password)
		}
	}
}

func TestUsernameIsCaseInsensitive(t *testing.T) {
	t.Parallel()
	d := newDemo(t, nil)
	id, login := d.startLogin(t, "")
	done := d.signIn(t, login, "  Bob@ACME.test ", "demo")
	if got := d.acceptResponse(t, done, id).Subject.NameID.Value; got !=
		"bob@acme.test" {
		t.Errorf("NameID = %q, want bob@acme.test", got)
	}
}

func TestLoginHintPrefillsAndBindsTheUser(t *testing.T) {
	t.Parallel()
	d := newDemo(t, nil)

	id, login := d.startLogin(t, "Bob@acme.test")
	_, fields := login.form(t)
	if got := fields.Get("user"); got != "bob@acme.test" {
		t.Errorf("username field = %q, want bob@acme.test", got)
	}
	if !strings.Contains(login.body, `<tr class="requested">`) {
		t.Error("the requested account is not highlighted")
	}

	other := d.signIn(t, login, "alice@acme.test", "demo")
	if !strings.Contains(other.body, "requested for bob@acme.test") {
		t.Fatalf("signing in as someone else: want the login page "+
			"explaining it, got:\n%s", other.body)
	}

	done := d.signIn(t, other, "bob@acme.test", "demo")
	assertion := d.acceptResponse(t, done, id)
	if got := assertion.Subject.NameID.Value; got != "Bob@acme.test" {
		t.Errorf("NameID = %q, want Bob@acme.test as requested", got)
	}
	if got := attribute(assertion, "email"); len(got) != 1 ||
		got[0] != "bob@acme.test" {
		t.Errorf("email attribute = %q, want bob@acme.test", got)
	}
}

func TestSessionIsReusedOnlyForTheRequestedPerson(t *testing.T) {
	t.Parallel()
	d := newDemo(t, nil)
	id, login := d.startLogin(t, "")
	d.acceptResponse(t, d.signIn(t, login, "alice@acme.test", "demo"), id)

	tests := []struct {
		subject   string
		wantLogin bool
	}{
		{"", false},
		{"alice@acme.test", false},
		{"dave@acme.test", true},
	}
	for _, tt := range tests {
		id, p := d.startLogin(t, tt.subject)
		_, fields := p.form(t)
		if tt.wantLogin {
			if fields.Get("SAMLResponse") != "" ||
				fields.Get("user") != tt.subject {
				t.Errorf("subject %q: want the login page for it, got:\n%s",
					tt.subject, p.body)
			}
			continue
		}
		if got := d.acceptResponse(t, p, id).Subject.NameID.Value; got !=
			"alice@acme.test" {
			t.Errorf("subject %q: NameID = %q, want alice's session",
				tt.subject, got)
		}
	}
}

func TestUnknownServiceProviderGetsErrorPage(t *testing.T) {
	t.Parallel()
	d := newDemo(t, func(o *Options) {
		o.ServiceProviders = []string{"http://127.0.0.1:1/none/metadata"}
	})
	_, p := d.startLogin(t, "")
	if p.status != http.StatusBadRequest {
		t.Errorf("status %d, want 400", p.status)
	}
	if !strings.Contains(p.body, "listed with service_provider") ||
		!strings.Contains(p.body, "Reference:") {
		t.Errorf("the error page does not explain it:\n%s", p.body)
	}
}

func TestMetadataIsFetchedAgainAfterFailure(t *testing.T) {
	t.Parallel()
	d := newDemo(t, nil)
	d.mu.Lock()
	d.spMetadataStatus = http.StatusServiceUnavailable
	d.mu.Unlock()

	if _, p := d.startLogin(t, ""); p.status != http.StatusBadRequest {
		t.Fatalf("SP metadata down: status %d, want 400", p.status)
	}

	d.mu.Lock()
	d.spMetadataStatus = 0
	d.mu.Unlock()
	if _, p := d.startLogin(t, ""); p.status != http.StatusBadRequest {
		t.Errorf("right after a failed fetch: status %d, want 400 "+
			"until the refresh interval has passed", p.status)
	}

	d.clock.Advance(refreshInterval)
	if _, p := d.startLogin(t, ""); p.status != http.StatusOK ||
		!strings.Contains(p.body, "Sign in") {
		t.Errorf("SP metadata back: status %d:\n%s", p.status, p.body)
	}
}

// TestNewServiceProviderKeyIsPickedUp checks that a service provider
// restarted with another key is trusted again once its metadata is old.
func TestNewServiceProviderKeyIsPickedUp(t *testing.T) {
	t.Parallel()
	d := newDemo(t, nil)
	id, login := d.startLogin(t, "")
	d.acceptResponse(t, d.signIn(t, login, "erin@globex.test", "demo"), id)

	restarted := *d.sp
	restarted.Key = testKeys()[0].key
	restarted.Certificate = testKeys()[0].cert
	d.mu.Lock()
	d.sp = &restarted
	d.mu.Unlock()
	d.clock.Advance(metadataMaxAge)

	id, p := d.startLogin(t, "")
	if got := d.acceptResponse(t, p, id).Subject.NameID.Value; got !=
		"erin@globex.test" {
		t.Errorf("NameID = %q, want erin's session", got)
	}
}

func TestOnlyPublicEndpointsAreServed(t *testing.T) {
	t.Parallel()
	d := newDemo(t, nil)
	tests := []struct {
		path string
		want int
	}{
		{"/", http.StatusOK},
		{"/metadata", http.StatusOK},
		{"/users/", http.StatusNotFound},
		{"/sessions/", http.StatusNotFound},
		{"/services/", http.StatusNotFound},
		{"/login", http.StatusNotFound},
	}
	for _, tt := range tests {
		if got := d.get(t, d.idpServer.URL+tt.path).status; got != tt.want {
			t.Errorf("GET %s: status %d, want %d", tt.path, got, tt.want)
		}
		if got := d.idp.Handles(tt.path); got != (tt.want == http.StatusOK) {
			t.Errorf("Handles(%q) = %v", tt.path, got)
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	keys := testKeys()
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no base URL", Options{}, "base URL is required"},
		{"relative base URL", Options{BaseURL: "/idp"}, "not an absolute"},
		{"user without @", Options{BaseURL: "http://idp.test",
			Users: []User{{Email: "alice", Password: "x"}}},
			`email "alice"`},
		{"user without password", Options{BaseURL: "http://idp.test",
			Users: []User{{Email: "a@b.test"}}}, "has no password"},
		{"user twice", Options{BaseURL: "http://idp.test", Users: []User{
			{Email: "a@b.test", Password: "x"},
			{Email: "A@b.test", Password: "y"}}}, "configured twice"},
		{"bad SP URL", Options{BaseURL: "http://idp.test",
			ServiceProviders: []string{"sp.test/metadata"}},
			"not an absolute http(s) URL"},
		{"key without cert", Options{BaseURL: "http://idp.test",
			Key: keys[0].key}, "needs its certificate"},
		{"cert of another key", Options{BaseURL: "http://idp.test",
			Key: keys[0].key, Certificate: keys[1].cert}, "not for the key"},
	}
	for _, tt := range tests {
		_, err := New(tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err,
				tt.want)
		}
	}
}

func TestBaseURLWithPath(t *testing.T) {
	t.Parallel()
	idp, err := New(Options{
		BaseURL: "http://localhost:8080/idp/",
		Key:     testKeys()[0].key, Certificate: testKeys()[0].cert,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := idp.MetadataURL(); got != "http://localhost:8080/idp/metadata" {
		t.Errorf("MetadataURL() = %q", got)
	}
	rec := httptest.NewRecorder()
	idp.ServeHTTP(rec, httptest.NewRequest(http.MethodGet,
		"/idp/metadata", nil))
	if rec.Code != http.StatusOK ||
		!strings.Contains(rec.Body.String(),
			`Location="http://localhost:8080/idp/sso"`) {
		t.Errorf("metadata under /idp: status %d:\n%s", rec.Code,
			rec.Body.String())
	}
	if idp.Handles("/metadata") || !idp.Handles("/idp/sso") {
		t.Error("Handles does not account for the base path")
	}
}
