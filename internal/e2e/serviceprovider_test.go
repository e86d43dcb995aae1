package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
)

// laxCookie is set by the service provider when it sends the browser to
// the identity provider. SameSite=Lax keeps it off a cross-site POST.
const laxCookie = "sp_lax"

// testServiceProvider is the smallest real SAML service provider: /login
// sends the browser to the identity provider with an AuthnRequest and a
// RelayState, /acs checks the posted response with crewjam/saml, refusing
// SHA-1 signatures and replays, and shows who signed in.
type testServiceProvider struct {
	srv *httptest.Server

	mu      sync.Mutex
	sp      *saml.ServiceProvider
	pending map[string]string // RelayState to AuthnRequest ID
	results []acsResult
}

// acsResult is what the service provider saw at its ACS.
type acsResult struct {
	NameID          string
	NameIDFormat    string
	DisplayName     string
	RelayStateKnown bool
	LaxCookieSent   bool
	ResponseSigAlg  string
	AssertionSigAlg string
	Err             error
}

// signedPage shows a successful sign-in; refusedPage a refused response.
var (
	signedPage = template.Must(template.New("signed").Parse(
		`<!doctype html><title>Signed in</title>` +
			`<h1>Signed in</h1><p>as <span id="nameid">{{.NameID}}</span>` +
			` (<span id="name">{{.DisplayName}}</span>)</p>`))
	refusedPage = template.Must(template.New("refused").Parse(
		`<!doctype html><title>Refused</title>` +
			`<h1>Sign-in refused</h1><p id="reason">{{.}}</p>`))
)

// startTestServiceProvider listens on 127.0.0.1. It answers /login only
// once trust has given it the identity provider's metadata.
func startTestServiceProvider(t testing.TB) *testServiceProvider {
	t.Helper()
	s := &testServiceProvider{pending: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", s.login)
	mux.HandleFunc("POST /acs", s.acs)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

// entry is how the identity provider knows this service provider.
func (s *testServiceProvider) entry() SSPServiceProvider {
	return SSPServiceProvider{
		EntityID: s.srv.URL + "/metadata",
		ACSURL:   s.srv.URL + "/acs",
	}
}

// loginURL starts a sign-in.
func (s *testServiceProvider) loginURL() string {
	return s.srv.URL + "/login"
}

// trust configures the service provider with the metadata of ssp.
func (s *testServiceProvider) trust(t testing.TB, ssp *SSP) {
	t.Helper()
	idp, err := samlsp.ParseMetadata(ssp.MetadataXML())
	if err != nil {
		t.Fatalf("parsing SimpleSAMLphp metadata: %v", err)
	}
	e := s.entry()
	sp := &saml.ServiceProvider{
		EntityID:                         e.EntityID,
		AcsURL:                           mustURL(t, e.ACSURL),
		MetadataURL:                      mustURL(t, e.EntityID),
		IDPMetadata:                      idp,
		AuthnNameIDFormat:                saml.EmailAddressNameIDFormat,
		AssertionConsumerServiceBindings: []string{saml.HTTPPostBinding},
		RejectSHA1Signatures:             true,
		RejectUnknownConditions:          true,
		RejectExpiredIDPMetadata:         true,
		LimitRelayStateLength:            true,
		ReplayCache:                      samlsp.NewMemoryReplayCache(100),
	}
	s.mu.Lock()
	s.sp = sp
	s.mu.Unlock()
}

// login sends the browser to the identity provider.
func (s *testServiceProvider) login(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	sp := s.sp
	s.mu.Unlock()
	if sp == nil {
		http.Error(w, "no identity provider yet", http.StatusServiceUnavailable)
		return
	}
	req, err := sp.MakeAuthenticationRequest(
		sp.GetSSOBindingLocation(saml.HTTPRedirectBinding),
		saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	relayState := rand.Text()
	to, err := req.Redirect(relayState, sp)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	s.pending[relayState] = req.ID
	s.mu.Unlock()

	http.SetCookie(w, &http.Cookie{Name: laxCookie, Value: "1", Path: "/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, to.String(), http.StatusFound)
}

// acs checks the posted SAML response and records what it saw.
func (s *testServiceProvider) acs(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	sp := s.sp
	requestID, known := s.pending[r.PostForm.Get("RelayState")]
	delete(s.pending, r.PostForm.Get("RelayState"))
	s.mu.Unlock()

	res := acsResult{RelayStateKnown: known}
	_, err := r.Cookie(laxCookie)
	res.LaxCookieSent = err == nil
	res.ResponseSigAlg, res.AssertionSigAlg =
		signatureAlgorithms(r.PostForm.Get("SAMLResponse"))

	assertion, err := sp.ParseResponse(r, []string{requestID})
	if err == nil {
		res.readAssertion(assertion)
		err = signedPage.Execute(w, res)
	} else {
		res.Err = privateError(err)
		w.WriteHeader(http.StatusForbidden)
		err = refusedPage.Execute(w, res.Err.Error())
	}
	s.mu.Lock()
	s.results = append(s.results, res)
	s.mu.Unlock()
}

// readAssertion copies the subject and the display name.
func (res *acsResult) readAssertion(a *saml.Assertion) {
	if a.Subject != nil && a.Subject.NameID != nil {
		res.NameID = a.Subject.NameID.Value
		res.NameIDFormat = a.Subject.NameID.Format
	}
	for _, st := range a.AttributeStatements {
		for _, attr := range st.Attributes {
			if attr.Name == "displayName" && len(attr.Values) > 0 {
				res.DisplayName = attr.Values[0].Value
			}
		}
	}
}

// received returns what the ACS has seen so far.
func (s *testServiceProvider) received() []acsResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]acsResult(nil), s.results...)
}

// privateError unwraps crewjam's deliberately vague error, for the test.
func privateError(err error) error {
	var invalid *saml.InvalidResponseError
	if errors.As(err, &invalid) && invalid.PrivateErr != nil {
		return invalid.PrivateErr
	}
	return err
}

// signedElement is a SAML Response or Assertion, seen only for its
// enveloped signature.
type signedElement struct {
	SignatureMethod struct {
		Algorithm string `xml:"Algorithm,attr"`
	} `xml:"Signature>SignedInfo>SignatureMethod"`
	Assertion *signedElement `xml:"Assertion"`
}

// signatureAlgorithms returns the signature methods of a base64 SAML
// Response and of its Assertion; empty where one is not signed.
func signatureAlgorithms(samlResponse string) (response, assertion string) {
	raw, err := base64.StdEncoding.DecodeString(samlResponse)
	if err != nil {
		return "", ""
	}
	var doc signedElement
	if err := xml.Unmarshal(raw, &doc); err != nil {
		return "", ""
	}
	response = doc.SignatureMethod.Algorithm
	if doc.Assertion != nil {
		assertion = doc.Assertion.SignatureMethod.Algorithm
	}
	return response, assertion
}

// mustURL parses a URL the test built itself.
func mustURL(t testing.TB, s string) url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("parsing %q: %v", s, err)
	}
	return *u
}
