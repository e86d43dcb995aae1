package caddymodule_test

// The SAML attack catalogue, run end to end through a real gateway: each
// attack is built by samlfixture as an attacker would build it, posted to
// the assertion consumer service after a real login started in the
// attacker's browser, and must be refused with 403, no session, nothing
// added to the store and a warn-level "assertion rejected" log entry with
// a reason from a small fixed set.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"

	"github.com/arrowgate/arrowgate/internal/gatewaytest"
	"github.com/arrowgate/arrowgate/internal/samlfixture"
	"github.com/arrowgate/arrowgate/provisioner/sqlite"
)

// rejectionReasons is the fixed set of reasons the gateway logs.
var rejectionReasons = []string{"replay", "unsolicited", "expired",
	"not_yet_valid", "audience", "destination", "issuer", "signature",
	"decryption", "unsupported", "malformed", "idp_status", "invalid",
	"unsupported_binding", "no_email", "bad_email", "domain_not_allowed",
	"wrapping"}

// Who the attacks are about: the attacker is a member-to-be of acme, the
// victim is the person they want to be.
const (
	attackerEmail = "eve@acme.test"
	victimEmail   = "ceo@acme.test"
)

// attackEnv is a gateway whose orgs trust fixture identity providers:
// acme trusts samlfixture.Acme, globex trusts samlfixture.Globex.
type attackEnv struct {
	gw       string
	db       string
	logPath  string
	idps     map[string]*samlfixture.IDP
	builders map[string]*samlfixture.Builder
	upstream *headerUpstream
}

type attackOptions struct {
	extra   string // more arrow_sso options
	globals string // more global options
	db      string // the SQLite file; default: a new one

	// defaultRateLimit keeps the default rate limit; otherwise it is
	// off, since the catalogue posts far more than a person would
	defaultRateLimit bool
}

func startAttackEnv(t *testing.T, o attackOptions) *attackEnv {
	t.Helper()
	dir := t.TempDir()
	e := &attackEnv{
		gw: fmt.Sprintf("http://127.0.0.1:%d",
			gatewaytest.FreePort(t)),
		db:       o.db,
		logPath:  filepath.Join(dir, "caddy.log"),
		idps:     map[string]*samlfixture.IDP{},
		builders: map[string]*samlfixture.Builder{},
		upstream: startHeaderUpstream(t),
	}
	if e.db == "" {
		e.db = filepath.Join(dir, "arrow.db")
	}
	if !o.defaultRateLimit && !strings.Contains(o.extra, "rate_limit") {
		o.extra += "\n\t\trate_limit off"
	}
	md := map[string]string{}
	for _, name := range []string{samlfixture.Acme, samlfixture.Globex,
		samlfixture.Attacker} {
		idp, err := samlfixture.LoadIDP(name)
		if err != nil {
			t.Fatal(err)
		}
		data, err := idp.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		md[name] = filepath.Join(dir, name+"-idp.xml")
		if err := os.WriteFile(md[name], data, 0o644); err != nil {
			t.Fatal(err)
		}
		e.idps[name] = idp
		e.builders[name] = &samlfixture.Builder{IDP: idp, Now: time.Now,
			Seed: t.Name() + "/" + name}
	}

	gatewaytest.Load(t, fmt.Sprintf(`{
	admin off
	auto_https off
	persist_config off
	storage file_system %s
	log {
		output file %s
		format json
	}
	%s
}
%s {
	arrow_sso {
		store sqlite %s
		member_cache_ttl 100ms
		%s
		org acme {
			plan business
			seats 100
			domains acme.test
			idp_metadata_file %s
			jit on
		}
		org globex {
			plan omnix
			seats 5
			domains globex.test
			idp_metadata_file %s
			jit on
		}
	}
	reverse_proxy %s
}
`, filepath.Join(dir, "caddy"), e.logPath, o.globals, e.gw, e.db, o.extra,
		md[samlfixture.Acme], md[samlfixture.Globex], e.upstream.URL))
	return e
}

// login types email on the login page, as the attacker does in their own
// browser, and returns the AuthnRequest the gateway sent to the identity
// provider. The browser now holds the tracking cookie.
func (e *attackEnv) login(t *testing.T, b *gatewaytest.Browser,
	email string) samlfixture.Request {
	t.Helper()
	r := b.PostForm(t, e.gw+"/.arrow/login", url.Values{
		"email": {email}, "return_to": {"/after-login"}})
	if r.StatusCode != http.StatusFound {
		t.Fatalf("login as %s: want a redirect to the identity "+
			"provider, got %d:\n%s", email, r.StatusCode, r.Body)
	}
	loc, err := r.Location()
	if err != nil {
		t.Fatal(err)
	}
	req, err := samlfixture.ParseRedirect(loc)
	if err != nil {
		t.Fatalf("reading the gateway's AuthnRequest: %v", err)
	}
	return req
}

// post sends doc to the ACS of req with its RelayState, as the identity
// provider's auto-posting form would.
func (e *attackEnv) post(t *testing.T, b *gatewaytest.Browser,
	req samlfixture.Request, doc []byte) gatewaytest.Response {
	t.Helper()
	return b.PostForm(t, req.ACSURL, url.Values{
		"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)},
		"RelayState":   {req.RelayState},
	})
}

// sign signs the elements with the given IDs in order, failing the test
// on error.
func sign(t *testing.T, s samlfixture.Signer, doc []byte,
	ids ...string) []byte {
	t.Helper()
	for _, id := range ids {
		var err error
		doc, err = s.Sign(context.Background(), doc, id)
		if err != nil {
			t.Fatalf("signing %s: %v", id, err)
		}
	}
	return doc
}

func render(t *testing.T, r samlfixture.Response) []byte {
	t.Helper()
	doc, err := r.XML()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// signers are the two independent ways fixtures are signed.
func (e *attackEnv) signers(t *testing.T, idp string) map[string]samlfixture.Signer {
	t.Helper()
	out := map[string]samlfixture.Signer{
		"dsig": samlfixture.DsigSigner{IDP: e.idps[idp]},
	}
	if err := samlfixture.XMLSecAvailable(); err != nil {
		gatewaytest.RequireCI(t, "xmlsec1 is missing (apt-get install "+
			"xmlsec1): %v", err)
		return out
	}
	out["xmlsec1"] = samlfixture.XMLSecSigner{IDP: e.idps[idp]}
	return out
}

// storeState is what an attack must not change: each org's members and
// seats used.
type storeState map[string][]string

func (e *attackEnv) state(t *testing.T) storeState {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, e.db)
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	defer st.Close()
	out := storeState{}
	for _, org := range []string{"acme", "globex"} {
		ms, err := st.Members(ctx, org)
		if err != nil {
			t.Fatalf("listing members: %v", err)
		}
		used, err := st.SeatsUsed(ctx, org)
		if err != nil {
			t.Fatalf("counting seats: %v", err)
		}
		list := []string{fmt.Sprintf("seats_used=%d", used)}
		for _, m := range ms {
			list = append(list, m.Email)
		}
		out[org] = list
	}
	return out
}

// logEntry is one JSON line of Caddy's log.
type logEntry map[string]any

func (l logEntry) str(k string) string { s, _ := l[k].(string); return s }

// logFor returns the log entry written under the reference ID the page
// showed, waiting for it to be written.
func (e *attackEnv) logFor(t *testing.T, ref string) logEntry {
	t.Helper()
	var found logEntry
	gatewaytest.WaitFor(t, 5*time.Second, func() error {
		f, err := os.Open(e.logPath)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l logEntry
			if json.Unmarshal(sc.Bytes(), &l) == nil &&
				l.str("reference") == ref {
				found = l
				return nil
			}
		}
		return fmt.Errorf("no log entry with reference %s", ref)
	})
	return found
}

// requireRejected checks what a refused attack must leave behind: a 403
// page with a reference, no session cookie, the store as it was, and a
// warn "assertion rejected" entry whose reason is one of want (or any
// known reason when want is empty). It returns the log entry.
func (e *attackEnv) requireRejected(t *testing.T, r gatewaytest.Response,
	before storeState, want ...string) logEntry {
	t.Helper()
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("want 403, got %d:\n%s", r.StatusCode, r.Body)
	}
	if c := cookieNamed(r, "arrow_session"); c != nil && c.MaxAge >= 0 {
		t.Fatalf("a refused answer set a session cookie")
	}
	if after := e.state(t); !equalState(before, after) {
		t.Fatalf("a refused answer changed the store: %v, was %v", after,
			before)
	}
	ref := refRe.FindString(r.Body)
	if ref == "" {
		t.Fatalf("the refusal shows no reference ID:\n%s", r.Body)
	}
	l := e.logFor(t, ref)
	if l.str("level") != "warn" || l.str("msg") != "assertion rejected" {
		t.Fatalf("log entry %v: want a warn \"assertion rejected\"", l)
	}
	reason := l.str("reason")
	if !slices.Contains(rejectionReasons, reason) {
		t.Fatalf("reason %q is not one of the fixed set", reason)
	}
	if len(want) > 0 && !slices.Contains(want, reason) {
		t.Fatalf("reason %q, want one of %v (detail: %s)", reason, want,
			l.str("detail"))
	}
	t.Logf("refused: reason %s (%s)", reason, l.str("detail"))
	// XML markup or a namespace declaration in the entry means a piece
	// of the document was logged; a namespaced element name such as
	// {urn:...:assertion}Condition in a detail is not one
	var raw bytes.Buffer
	enc := json.NewEncoder(&raw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(l); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw.Bytes(), []byte("<")) ||
		bytes.Contains(raw.Bytes(), []byte("xmlns")) {
		t.Fatalf("the log entry carries the assertion: %s", raw.Bytes())
	}
	return l
}

func equalState(a, b storeState) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// headerUpstream answers with every header it was sent, and counts the
// requests that reached it.
type headerUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	hits int
}

func startHeaderUpstream(t *testing.T) *headerUpstream {
	t.Helper()
	u := &headerUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			u.mu.Lock()
			u.hits++
			u.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(r.Header)
		}))
	t.Cleanup(u.Close)
	return u
}

func (u *headerUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits
}

// attack is one case: it builds the document to post for the request
// the attacker's login produced.
type attack struct {
	name    string
	reasons []string
	build   func(t *testing.T, req samlfixture.Request) []byte
}

// run posts each attack from a fresh attacker browser.
func (e *attackEnv) run(t *testing.T, attacks []attack) {
	t.Helper()
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			before := e.state(t)
			b := gatewaytest.NewBrowser(t)
			req := e.login(t, b, attackerEmail)
			r := e.post(t, b, req, a.build(t, req))
			e.requireRejected(t, r, before, a.reasons...)
		})
	}
}

// signedWhole renders resp with both its assertion and the response
// signed by s, as most identity providers send it.
func signedWhole(t *testing.T, s samlfixture.Signer,
	resp samlfixture.Response) []byte {
	t.Helper()
	return sign(t, s, render(t, resp), resp.Assertion.ID, resp.ID)
}

// valid returns a correct response of idp for req vouching for email.
func (e *attackEnv) valid(idp string, req samlfixture.Request,
	email string) samlfixture.Response {
	return e.builders[idp].Response(req, email)
}

// TestFixtureResponsesAreAccepted is the control for every attack below:
// the same fixtures, unaltered, sign people in. Each signer and each
// placement of the signature is tried.
func TestFixtureResponsesAreAccepted(t *testing.T) {
	e := startAttackEnv(t, attackOptions{})
	n := 0
	for sname, s := range e.signers(t, samlfixture.Acme) {
		for _, placement := range []string{"response", "assertion",
			"both"} {
			t.Run(sname+"/"+placement, func(t *testing.T) {
				n++
				email := fmt.Sprintf("person%d@acme.test", n)
				b := gatewaytest.NewBrowser(t)
				req := e.login(t, b, email)
				resp := e.valid(samlfixture.Acme, req, email)
				var ids []string
				switch placement {
				case "response":
					ids = []string{resp.ID}
				case "assertion":
					ids = []string{resp.Assertion.ID}
				default:
					ids = []string{resp.Assertion.ID, resp.ID}
				}
				r := e.post(t, b, req, sign(t, s, render(t, resp), ids...))
				if r.StatusCode != http.StatusSeeOther ||
					r.Header.Get("Location") != "/after-login" ||
					cookieNamed(r, "arrow_session") == nil {
					t.Fatalf("valid %s-signed response: want 303 to "+
						"/after-login with a session, got %d:\n%s", sname,
						r.StatusCode, r.Body)
				}
				var h http.Header
				got := b.Get(t, e.gw+"/x")
				if err := json.Unmarshal([]byte(got.Body), &h); err != nil {
					t.Fatalf("upstream: %v\n%s", err, got.Body)
				}
				if h.Get("X-Arrow-Email") != email {
					t.Fatalf("upstream saw %q, want %s",
						h.Get("X-Arrow-Email"), email)
				}
			})
		}
	}
}

// TestAttackSignatureMissingOrForeign covers assertions with no valid
// signature of the org's identity provider.
func TestAttackSignatureMissingOrForeign(t *testing.T) {
	e := startAttackEnv(t, attackOptions{})
	acme := e.signers(t, samlfixture.Acme)
	foreign := e.signers(t, samlfixture.Attacker)
	var attacks []attack
	attacks = append(attacks, attack{
		name:    "unsigned",
		reasons: []string{"signature", "invalid"},
		build: func(t *testing.T, req samlfixture.Request) []byte {
			return render(t, e.valid(samlfixture.Acme, req, victimEmail))
		},
	})
	for sname, s := range acme {
		attacks = append(attacks, attack{
			name:    "signature_removed/" + sname,
			reasons: []string{"signature", "invalid"},
			build: func(t *testing.T, req samlfixture.Request) []byte {
				resp := e.valid(samlfixture.Acme, req, attackerEmail)
				doc := signedWhole(t, s, resp)
				return swapIdentity(t, stripSignatures(t, doc))
			},
		}, attack{
			name:    "altered_after_signing/" + sname,
			reasons: []string{"signature"},
			build: func(t *testing.T, req samlfixture.Request) []byte {
				resp := e.valid(samlfixture.Acme, req, attackerEmail)
				doc := signedWhole(t, s, resp)
				return swapIdentity(t, doc)
			},
		}, attack{
			name:    "sha1/" + sname,
			reasons: []string{"signature"},
			build: func(t *testing.T, req samlfixture.Request) []byte {
				resp := e.valid(samlfixture.Acme, req, victimEmail)
				sha1 := withSHA1(t, s)
				return sign(t, sha1, render(t, resp), resp.Assertion.ID,
					resp.ID)
			},
		})
	}
	for sname, s := range foreign {
		attacks = append(attacks, attack{
			name:    "key_not_in_metadata/" + sname,
			reasons: []string{"signature"},
			build: func(t *testing.T, req samlfixture.Request) []byte {
				resp := e.valid(samlfixture.Acme, req, victimEmail)
				return signedWhole(t, s, resp)
			},
		}, attack{
			// the attacker's signature, presenting acme's certificate
			name:    "key_not_in_metadata_with_trusted_cert/" + sname,
			reasons: []string{"signature"},
			build: func(t *testing.T, req samlfixture.Request) []byte {
				resp := e.valid(samlfixture.Acme, req, victimEmail)
				doc := signedWhole(t, s, resp)
				return replaceCert(t, doc, e.idps[samlfixture.Attacker],
					e.idps[samlfixture.Acme])
			},
		})
	}
	e.run(t, attacks)
}

// TestAttackSignatureWrapping covers XSW1 to XSW8, each built from a
// correctly signed response for the attacker, rewritten for the victim,
// and a signed Response hidden in an unsigned one. Each holds a second
// Response or Assertion, so the shape check refuses it as wrapping
// before any signature is read: without that check the library refuses
// most for other reasons, and signs the victim in with XSW7.
func TestAttackSignatureWrapping(t *testing.T) {
	e := startAttackEnv(t, attackOptions{})
	var attacks []attack
	for sname, s := range e.signers(t, samlfixture.Acme) {
		for _, w := range samlfixture.Wrappings {
			attacks = append(attacks, attack{
				name:    w.Name + "/" + sname,
				reasons: []string{"wrapping"},
				build: func(t *testing.T, req samlfixture.Request) []byte {
					resp := e.valid(samlfixture.Acme, req, attackerEmail)
					id := resp.Assertion.ID
					if w.ResponseSigned {
						id = resp.ID
					}
					doc := sign(t, s, render(t, resp), id)
					wrapped, err := w.Apply(doc, victimEmail)
					if err != nil {
						t.Fatal(err)
					}
					return wrapped
				},
			})
		}
		attacks = append(attacks, attack{
			// one Assertion in all, inside the attacker's correctly
			// signed Response, carried in the Extensions of an
			// unsigned Response for the victim
			name:    "response_in_extensions/" + sname,
			reasons: []string{"wrapping"},
			build: func(t *testing.T, req samlfixture.Request) []byte {
				own := e.valid(samlfixture.Acme, req, attackerEmail)
				inner := withoutDeclaration(sign(t, s, render(t, own),
					own.Assertion.ID, own.ID))
				outer := e.valid(samlfixture.Acme, req, victimEmail)
				outer.Assertion = nil
				doc := render(t, outer)
				issuer := []byte("</saml:Issuer>")
				at := bytes.Index(doc, issuer)
				if at < 0 {
					t.Fatal("the outer response has no Issuer")
				}
				at += len(issuer)
				ext := append(append([]byte("<samlp:Extensions>"),
					inner...), "</samlp:Extensions>"...)
				return append(doc[:at:at], append(ext, doc[at:]...)...)
			},
		})
	}
	e.run(t, attacks)
}

// TestAttackXMLTricks covers what XML parsing can be made to do: a
// comment splitting the NameID, a NameID in a foreign namespace, a
// missing Issuer, two assertions, an encrypted assertion beside a plain
// one, and DTDs.
func TestAttackXMLTricks(t *testing.T) {
	e := startAttackEnv(t, attackOptions{})
	var attacks []attack
	for sname, s := range e.signers(t, samlfixture.Acme) {
		attacks = append(attacks, attack{
			// exclusive c14n drops the comment, so the signature holds;
			// a parser that reads only the first text node would see
			// bob@acme.test. The gateway must see the whole address.
			name:    "comment_in_nameid/" + sname,
			reasons: []string{"domain_not_allowed"},
			build: func(t *testing.T, req samlfixture.Request) []byte {
				resp := e.valid(samlfixture.Acme, req,
					"bob@acme.test.evil.com")
				resp.Assertion.NameIDXML = "bob@acme.test<!---->.evil.com"
				return signedWhole(t, s, resp)
			},
		}, attack{
			name: "foreign_namespace_nameid/" + sname,
			build: func(t *testing.T, req samlfixture.Request) []byte {
				resp := e.valid(samlfixture.Acme, req, victimEmail)
				doc := bytes.Replace(render(t, resp), []byte(
					`<saml:NameID Format="urn:oasis:names:tc:SAML:1.1:`+
						`nameid-format:emailAddress">`+victimEmail+
						`</saml:NameID>`), []byte(
					`<x:NameID xmlns:x="urn:example:evil">`+victimEmail+
						`</x:NameID>`), 1)
				return sign(t, s, doc, resp.Assertion.ID, resp.ID)
			},
		}, attack{
			name: "assertion_without_issuer/" + sname,
			build: func(t *testing.T, req samlfixture.Request) []byte {
				resp := e.valid(samlfixture.Acme, req, victimEmail)
				doc := render(t, resp)
				issuer := "<saml:Issuer>" + resp.Assertion.Issuer +
					"</saml:Issuer>"
				i := bytes.LastIndex(doc, []byte(issuer))
				doc = append(doc[:i:i], doc[i+len(issuer):]...)
				return sign(t, s, doc, resp.Assertion.ID, resp.ID)
			},
		}, attack{
			name:    "two_assertions_signed_then_unsigned/" + sname,
			reasons: []string{"wrapping"},
			build: func(t *testing.T, req samlfixture.Request) []byte {
				return twoAssertions(t, e, s, req, false)
			},
		}, attack{
			name:    "two_assertions_unsigned_then_signed/" + sname,
			reasons: []string{"wrapping"},
			build: func(t *testing.T, req samlfixture.Request) []byte {
				return twoAssertions(t, e, s, req, true)
			},
		}, attack{
			name:    "encrypted_beside_plain/" + sname,
			reasons: []string{"wrapping"},
			build: func(t *testing.T, req samlfixture.Request) []byte {
				// the victim, encrypted to the gateway's public
				// certificate by the attacker, unsigned; the attacker,
				// plain and correctly signed
				victim := e.valid(samlfixture.Acme, req, victimEmail)
				enc, err := samlfixture.EncryptAssertion(
					render(t, victim), e.spCert(t))
				if err != nil {
					t.Fatal(err)
				}
				own := e.valid(samlfixture.Acme, req, attackerEmail)
				signed := sign(t, s, render(t, own), own.Assertion.ID)
				doc, err := samlfixture.AppendAssertion(enc, signed)
				if err != nil {
					t.Fatal(err)
				}
				return doc
			},
		}, attack{
			// the assertion is signed inside the encryption, the
			// response is not: decrypting CBC that nothing has
			// authenticated is what padding-oracle attacks need
			name:    "cbc_encryption_in_unsigned_response/" + sname,
			reasons: []string{"signature"},
			build: func(t *testing.T, req samlfixture.Request) []byte {
				resp := e.valid(samlfixture.Acme, req, attackerEmail)
				signed := sign(t, s, render(t, resp), resp.Assertion.ID)
				enc, err := samlfixture.EncryptAssertionWith(signed,
					e.spCert(t), xmlenc.AES256CBC)
				if err != nil {
					t.Fatal(err)
				}
				return enc
			},
		}, attack{
			// saml-core 2.5.1.1: a condition the relying party does
			// not understand makes the assertion Indeterminate
			name:    "unknown_condition/" + sname,
			reasons: []string{"unsupported"},
			build: func(t *testing.T, req samlfixture.Request) []byte {
				resp := e.valid(samlfixture.Acme, req, attackerEmail)
				doc := render(t, resp)
				end := []byte("</saml:Conditions>")
				if bytes.Count(doc, end) != 1 {
					t.Fatal("the fixture has no one Conditions element")
				}
				doc = bytes.Replace(doc, end, append([]byte(
					`<saml:Condition xmlns:xsi="http://www.w3.org/2001/`+
						`XMLSchema-instance" xmlns:ext="urn:example:ext" `+
						`xsi:type="ext:DelegationRestrictionType"/>`),
					end...), 1)
				return sign(t, s, doc, resp.Assertion.ID, resp.ID)
			},
		}, attack{
			name:    "doctype_internal_entity/" + sname,
			reasons: []string{"malformed"},
			build: func(t *testing.T, req samlfixture.Request) []byte {
				resp := e.valid(samlfixture.Acme, req, attackerEmail)
				doc := signedWhole(t, s, resp)
				doc = bytes.Replace(doc, []byte(attackerEmail),
					[]byte("&who;"), 1)
				return append([]byte(`<!DOCTYPE samlp:Response [`+
					`<!ENTITY who "`+victimEmail+`">]>`), doc...)
			},
		}, attack{
			// a DTD that declares nothing leaves the signed document
			// as it was; it is refused all the same, since SAML has
			// no use for one
			name:    "doctype_without_entities/" + sname,
			reasons: []string{"malformed"},
			build: func(t *testing.T, req samlfixture.Request) []byte {
				resp := e.valid(samlfixture.Acme, req, attackerEmail)
				doc := signedWhole(t, s, resp)
				return append([]byte("<!DOCTYPE samlp:Response>\n"),
					withoutDeclaration(doc)...)
			},
		})
	}
	attacks = append(attacks, attack{
		name:    "entity_expansion_bomb",
		reasons: []string{"malformed"},
		build: func(t *testing.T, req samlfixture.Request) []byte {
			var dtd strings.Builder
			dtd.WriteString(`<!DOCTYPE r [<!ENTITY a0 "lol">`)
			for i := 1; i < 10; i++ {
				fmt.Fprintf(&dtd, `<!ENTITY a%d "%s">`, i,
					strings.Repeat(fmt.Sprintf("&a%d;", i-1), 10))
			}
			dtd.WriteString("]>")
			resp := e.valid(samlfixture.Acme, req, "&a9;")
			resp.Assertion.NameIDXML = "&a9;"
			return append([]byte(dtd.String()), render(t, resp)...)
		},
	})
	e.run(t, attacks)

	// refused by the gateway's own bound on nesting, before any
	// parser further on spends time on it
	t.Run("nested_100_deep", func(t *testing.T) {
		before := e.state(t)
		b := gatewaytest.NewBrowser(t)
		req := e.login(t, b, attackerEmail)
		resp := e.valid(samlfixture.Acme, req, attackerEmail)
		s := samlfixture.DsigSigner{IDP: e.idps[samlfixture.Acme]}
		doc := signedWhole(t, s, resp)
		end := []byte("</samlp:Response>")
		deep := strings.Repeat("<x>", 100) + strings.Repeat("</x>", 100)
		doc = bytes.Replace(doc, end, append([]byte(deep), end...), 1)
		l := e.requireRejected(t, e.post(t, b, req, doc), before,
			"malformed")
		if !strings.Contains(l.str("detail"), "nests too deep") {
			t.Fatalf("detail %q: want the depth limit to refuse it",
				l.str("detail"))
		}
	})
}

// TestEncryptedAssertionAccepted is the control of encrypted_beside_plain
// and cbc_encryption_in_unsigned_response: an encrypted, signed assertion
// in a signed response signs its person in, whatever the block cipher.
func TestEncryptedAssertionAccepted(t *testing.T) {
	e := startAttackEnv(t, attackOptions{})
	s := samlfixture.DsigSigner{IDP: e.idps[samlfixture.Acme]}
	for name, cipher := range map[string]xmlenc.BlockCipher{
		"aes256-gcm": xmlenc.AES256GCM, "aes256-cbc": xmlenc.AES256CBC,
	} {
		t.Run(name, func(t *testing.T) {
			b := gatewaytest.NewBrowser(t)
			req := e.login(t, b, attackerEmail)
			resp := e.valid(samlfixture.Acme, req, attackerEmail)
			signed := sign(t, s, render(t, resp), resp.Assertion.ID)
			enc, err := samlfixture.EncryptAssertionWith(signed,
				e.spCert(t), cipher)
			if err != nil {
				t.Fatal(err)
			}
			r := e.post(t, b, req, sign(t, s, enc, resp.ID))
			if r.StatusCode != http.StatusSeeOther {
				t.Fatalf("encrypted assertion: want 303, got %d:\n%s",
					r.StatusCode, r.Body)
			}
		})
	}
}

// TestAttackValidityAndAddressing covers times and the addressing of the
// response and its assertion.
func TestAttackValidityAndAddressing(t *testing.T) {
	e := startAttackEnv(t, attackOptions{})
	s := samlfixture.DsigSigner{IDP: e.idps[samlfixture.Acme]}
	shaped := func(reasons []string, name string,
		change func(r *samlfixture.Response, req samlfixture.Request)) attack {
		return attack{name: name, reasons: reasons,
			build: func(t *testing.T, req samlfixture.Request) []byte {
				resp := e.valid(samlfixture.Acme, req, attackerEmail)
				change(&resp, req)
				return signedWhole(t, s, resp)
			}}
	}
	now := time.Now().UTC()
	globexACS := strings.Replace(e.gw+"/.arrow/saml/acme/acs", "acme",
		"globex", 1)
	e.run(t, []attack{
		shaped([]string{"expired"}, "expired",
			func(r *samlfixture.Response, _ samlfixture.Request) {
				a := r.Assertion
				a.NotBefore = now.Add(-20 * time.Minute)
				a.NotOnOrAfter = now.Add(-10 * time.Minute)
			}),
		shaped([]string{"not_yet_valid"}, "not_yet_valid",
			func(r *samlfixture.Response, _ samlfixture.Request) {
				r.Assertion.NotBefore = now.Add(10 * time.Minute)
				r.Assertion.NotOnOrAfter = now.Add(20 * time.Minute)
			}),
		shaped([]string{"expired"}, "issued_too_long_ago",
			func(r *samlfixture.Response, _ samlfixture.Request) {
				r.IssueInstant = now.Add(-5 * time.Minute)
				r.Assertion.IssueInstant = r.IssueInstant
			}),
		shaped([]string{"not_yet_valid"}, "issued_in_the_future",
			func(r *samlfixture.Response, _ samlfixture.Request) {
				r.IssueInstant = now.Add(10 * time.Minute)
				r.Assertion.IssueInstant = r.IssueInstant
			}),
		shaped([]string{"audience"}, "audience_of_another_org",
			func(r *samlfixture.Response, req samlfixture.Request) {
				r.Assertion.Audience = strings.Replace(req.Audience,
					"/acme/", "/globex/", 1)
			}),
		shaped([]string{"destination"}, "destination_of_another_org",
			func(r *samlfixture.Response, _ samlfixture.Request) {
				r.Destination = globexACS
			}),
		shaped([]string{"destination"}, "destination_missing",
			func(r *samlfixture.Response, _ samlfixture.Request) {
				r.Destination = ""
			}),
		shaped([]string{"destination"}, "recipient_of_another_org",
			func(r *samlfixture.Response, _ samlfixture.Request) {
				r.Assertion.Recipient = globexACS
			}),
		shaped([]string{"issuer"}, "assertion_issuer_disagrees",
			func(r *samlfixture.Response, _ samlfixture.Request) {
				r.Assertion.Issuer = e.idps[samlfixture.Globex].EntityID
			}),
		shaped([]string{"issuer"}, "response_issuer_disagrees",
			func(r *samlfixture.Response, _ samlfixture.Request) {
				r.Issuer = e.idps[samlfixture.Globex].EntityID
			}),
		shaped([]string{"unsolicited"}, "in_response_to_disagrees",
			func(r *samlfixture.Response, _ samlfixture.Request) {
				r.Assertion.InResponseTo = "_another-request"
			}),
		shaped([]string{"unsolicited"}, "no_in_response_to",
			func(r *samlfixture.Response, _ samlfixture.Request) {
				r.InResponseTo = ""
				r.Assertion.InResponseTo = ""
			}),
	})
}

// TestAttackLoginBinding covers answers posted by a browser, or for an
// org, other than the one whose login they answer.
func TestAttackLoginBinding(t *testing.T) {
	e := startAttackEnv(t, attackOptions{})
	s := samlfixture.DsigSigner{IDP: e.idps[samlfixture.Acme]}
	signedFor := func(t *testing.T, req samlfixture.Request,
		email string) []byte {
		resp := e.valid(samlfixture.Acme, req, email)
		return signedWhole(t, s, resp)
	}
	cases := []struct {
		name string
		run  func(t *testing.T) gatewaytest.Response
	}{
		{"no_tracking_cookie", func(t *testing.T) gatewaytest.Response {
			// login CSRF: the attacker's own answer, posted by the
			// victim's browser, which never started a login
			req := e.login(t, gatewaytest.NewBrowser(t), attackerEmail)
			victim := gatewaytest.NewBrowser(t)
			return e.post(t, victim, req, signedFor(t, req, attackerEmail))
		}},
		{"in_response_to_another_browser", func(t *testing.T) gatewaytest.Response {
			other := e.login(t, gatewaytest.NewBrowser(t), victimEmail)
			b := gatewaytest.NewBrowser(t)
			mine := e.login(t, b, attackerEmail)
			return e.post(t, b, mine, signedFor(t, other, victimEmail))
		}},
		{"relay_state_of_another_login", func(t *testing.T) gatewaytest.Response {
			b := gatewaytest.NewBrowser(t)
			first := e.login(t, b, attackerEmail)
			second := e.login(t, b, attackerEmail)
			doc := signedFor(t, first, attackerEmail)
			first.RelayState = second.RelayState
			return e.post(t, b, first, doc)
		}},
		{"in_response_to_another_org", func(t *testing.T) gatewaytest.Response {
			b := gatewaytest.NewBrowser(t)
			globex := e.login(t, b, "erin@globex.test")
			acme := e.login(t, b, attackerEmail)
			// acme's IdP answers the globex request, posted to acme
			resp := e.valid(samlfixture.Acme, acme, attackerEmail)
			resp.InResponseTo = globex.ID
			resp.Assertion.InResponseTo = globex.ID
			doc := signedWhole(t, s, resp)
			return e.post(t, b, acme, doc)
		}},
		{"tracking_cookie_of_another_org", func(t *testing.T) gatewaytest.Response {
			b := gatewaytest.NewBrowser(t)
			globex := e.login(t, b, "erin@globex.test")
			acme := e.login(t, b, attackerEmail)
			// acme's IdP answers, at acme's ACS, the request the
			// browser sent to globex, with globex's RelayState: the
			// tracking cookie and InResponseTo agree, and the globex
			// cookie lives under /.arrow/saml/, so the browser sends
			// it to acme's ACS too. Only the org the login was started
			// for tells them apart.
			resp := e.valid(samlfixture.Acme, acme, attackerEmail)
			resp.InResponseTo = globex.ID
			resp.Assertion.InResponseTo = globex.ID
			doc := signedWhole(t, s, resp)
			acme.RelayState = globex.RelayState
			return e.post(t, b, acme, doc)
		}},
		{"forged_tracking_cookie", func(t *testing.T) gatewaytest.Response {
			// the attacker plants, in the victim's browser, a tracking
			// cookie of their own making for their own login
			req := e.login(t, gatewaytest.NewBrowser(t), attackerEmail)
			victim := gatewaytest.NewBrowser(t)
			forgeTrackingCookie(t, victim, req)
			return e.post(t, victim, req, signedFor(t, req, attackerEmail))
		}},
		{"expired_tracking_cookie", func(t *testing.T) gatewaytest.Response {
			// the browser's own login, its cookie sealed again with the
			// gateway's key, its expiry a minute ago: the browser would
			// have dropped it, a replaying client need not
			b := gatewaytest.NewBrowser(t)
			req := e.login(t, b, attackerEmail)
			c := trackingCookie(t, b, req)
			var v map[string]any
			if err := json.Unmarshal(e.openCookie(t, c), &v); err != nil {
				t.Fatal(err)
			}
			v["e"] = time.Now().Add(-time.Minute).Unix()
			data, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			c.Value = e.seal(t, c.Name, data)
			b.Client.Jar.SetCookies(mustURL(t, req.ACSURL), []*http.Cookie{c})
			return e.post(t, b, req, signedFor(t, req, attackerEmail))
		}},
		{"tracking_cookie_renamed", func(t *testing.T) gatewaytest.Response {
			// a genuine cookie, copied under the name of another
			// login's RelayState and posted with that RelayState: the
			// cookie counts only under the name it was sealed for
			b := gatewaytest.NewBrowser(t)
			req := e.login(t, b, attackerEmail)
			c := trackingCookie(t, b, req)
			other := e.login(t, gatewaytest.NewBrowser(t), attackerEmail)
			c.Name = "arrow_login_" + other.RelayState
			moved := gatewaytest.NewBrowser(t)
			moved.Client.Jar.SetCookies(mustURL(t, req.ACSURL),
				[]*http.Cookie{c})
			doc := signedFor(t, req, attackerEmail)
			req.RelayState = other.RelayState
			return e.post(t, moved, req, doc)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.state(t)
			e.requireRejected(t, c.run(t), before, "unsolicited")
		})
	}
}

// TestAttackReplay posts a consumed response again, from a browser that
// holds a copy of the original browser's tracking cookie.
func TestAttackReplay(t *testing.T) {
	e := startAttackEnv(t, attackOptions{})
	for sname, s := range e.signers(t, samlfixture.Acme) {
		t.Run(sname, func(t *testing.T) {
			b := gatewaytest.NewBrowser(t)
			req := e.login(t, b, attackerEmail)
			stolen := b.Client.Jar.Cookies(mustURL(t, req.ACSURL))
			resp := e.valid(samlfixture.Acme, req, attackerEmail)
			doc := signedWhole(t, s, resp)
			if r := e.post(t, b, req, doc); r.StatusCode != http.StatusSeeOther {
				t.Fatalf("first post: want 303, got %d:\n%s", r.StatusCode,
					r.Body)
			}

			before := e.state(t)
			thief := gatewaytest.NewBrowser(t)
			thief.Client.Jar.SetCookies(mustURL(t, req.ACSURL), stolen)
			e.requireRejected(t, e.post(t, thief, req, doc), before,
				"replay")
		})
	}
}

// TestAttackCrossTenant covers one org's identity provider vouching for
// another org's people.
func TestAttackCrossTenant(t *testing.T) {
	e := startAttackEnv(t, attackOptions{})
	globex := samlfixture.DsigSigner{IDP: e.idps[samlfixture.Globex]}
	cases := []struct {
		name    string
		reasons []string
		run     func(t *testing.T) gatewaytest.Response
	}{
		{"globex_idp_vouches_for_acme_address", []string{"domain_not_allowed"},
			func(t *testing.T) gatewaytest.Response {
				b := gatewaytest.NewBrowser(t)
				req := e.login(t, b, "erin@globex.test")
				resp := e.valid(samlfixture.Globex, req, victimEmail)
				doc := sign(t, globex, render(t, resp), resp.Assertion.ID,
					resp.ID)
				return e.post(t, b, req, doc)
			}},
		{"globex_signed_response_at_acme_acs", []string{"issuer", "signature"},
			func(t *testing.T) gatewaytest.Response {
				b := gatewaytest.NewBrowser(t)
				req := e.login(t, b, attackerEmail)
				resp := e.valid(samlfixture.Globex, req, victimEmail)
				doc := sign(t, globex, render(t, resp), resp.Assertion.ID,
					resp.ID)
				return e.post(t, b, req, doc)
			}},
		{"globex_key_claiming_acme_issuer", []string{"signature"},
			func(t *testing.T) gatewaytest.Response {
				b := gatewaytest.NewBrowser(t)
				req := e.login(t, b, attackerEmail)
				resp := e.valid(samlfixture.Acme, req, victimEmail)
				doc := sign(t, globex, render(t, resp), resp.Assertion.ID,
					resp.ID)
				return e.post(t, b, req, doc)
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.state(t)
			e.requireRejected(t, c.run(t), before, c.reasons...)
		})
	}
}

// TestAttackEmailShapes covers addresses a correctly signed assertion may
// carry that must not land in acme: each is refused, and a mixed-case
// address is the lower-cased member.
func TestAttackEmailShapes(t *testing.T) {
	e := startAttackEnv(t, attackOptions{})
	s := samlfixture.DsigSigner{IDP: e.idps[samlfixture.Acme]}
	signedFor := func(email string) func(*testing.T,
		samlfixture.Request) []byte {
		return func(t *testing.T, req samlfixture.Request) []byte {
			resp := e.valid(samlfixture.Acme, req, email)
			return signedWhole(t, s, resp)
		}
	}
	e.run(t, []attack{
		{"two_at_signs", []string{"bad_email"},
			signedFor("ceo@evil.test@acme.test")},
		{"trailing_dot", []string{"bad_email"},
			signedFor("ceo@acme.test.")},
		{"trailing_ideographic_full_stop", []string{"bad_email"},
			signedFor("ceo@acme.test\u3002")},
		{"look_alike_suffix", []string{"domain_not_allowed"},
			signedFor("ceo@acme.test.evil.com")},
		{"look_alike_prefix", []string{"domain_not_allowed"},
			signedFor("ceo@evilacme.test")},
		{"cyrillic_a", []string{"domain_not_allowed", "bad_email"},
			signedFor("ceo@\u0430cme.test")},
		{"quoted_local_part", []string{"bad_email"},
			signedFor(`"ceo@acme.test"@evil.test`)},
		{"display_name", []string{"bad_email"},
			signedFor("CEO <ceo@acme.test>")},
		{"empty", []string{"no_email"}, signedFor("")},
	})

	t.Run("mixed_case_is_the_lower_cased_member", func(t *testing.T) {
		b := gatewaytest.NewBrowser(t)
		req := e.login(t, b, "bob@acme.test")
		r := e.post(t, b, req, signedFor("Bob@ACME.Test")(t, req))
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("want 303, got %d:\n%s", r.StatusCode, r.Body)
		}
		if got := e.state(t)["acme"]; !slices.Contains(got,
			"bob@acme.test") || slices.Contains(got, "Bob@ACME.Test") {
			t.Fatalf("acme's members: %v, want bob@acme.test", got)
		}
	})
}

// TestAttackOversizedAndMalformedBodies covers what reaches the ACS
// before any XML: a body of megabytes, garbage, and the redirect binding
// with a deflate bomb; and a login form over the body cap.
func TestAttackOversizedAndMalformedBodies(t *testing.T) {
	e := startAttackEnv(t, attackOptions{})
	t.Run("several_megabytes", func(t *testing.T) {
		before := e.state(t)
		b := gatewaytest.NewBrowser(t)
		req := e.login(t, b, attackerEmail)
		huge := base64.StdEncoding.EncodeToString(
			bytes.Repeat([]byte("<x>"), 2<<20))
		start := time.Now()
		r := b.PostForm(t, req.ACSURL, url.Values{
			"SAMLResponse": {huge}, "RelayState": {req.RelayState}})
		l := e.requireRejected(t, r, before, "malformed")
		// refused by the cap, before anything was decoded
		if !strings.Contains(l.str("detail"), "form is over") {
			t.Fatalf("detail %q: want the body cap to refuse it",
				l.str("detail"))
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("refusing %d bytes took %s", len(huge), d)
		}
	})
	for _, c := range []struct{ name, value string }{
		{"garbage_base64", "!!not base64 at all%%"},
		{"empty", ""},
		{"base64_of_garbage", base64.StdEncoding.EncodeToString(
			[]byte("\x00\x01\x02 not xml"))},
		{"deflated_like_the_redirect_binding",
			base64.StdEncoding.EncodeToString(deflate(t,
				[]byte("<samlp:Response/>")))},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.state(t)
			b := gatewaytest.NewBrowser(t)
			req := e.login(t, b, attackerEmail)
			r := b.PostForm(t, req.ACSURL, url.Values{
				"SAMLResponse": {c.value}, "RelayState": {req.RelayState}})
			e.requireRejected(t, r, before, "malformed")
		})
	}

	t.Run("login_form_of_a_megabyte", func(t *testing.T) {
		// a valid email, then padding past the body cap: the form is
		// refused, not half read and sent on to an identity provider
		b := gatewaytest.NewBrowser(t)
		r := b.PostForm(t, e.gw+"/.arrow/login", url.Values{
			"email": {attackerEmail}, "padding": {strings.Repeat("x",
				1<<20)}})
		to, _, _ := strings.Cut(r.Header.Get("Location"), "?")
		if r.StatusCode != http.StatusBadRequest || to != "" {
			t.Fatalf("want 400 and no redirect, got %d to %q",
				r.StatusCode, to)
		}
		for _, c := range r.Cookies() {
			if strings.HasPrefix(c.Name, "arrow_login_") {
				t.Fatalf("the refused login set %s", c.Name)
			}
		}
	})

	bomb := url.QueryEscape(base64.StdEncoding.EncodeToString(
		deflate(t, bytes.Repeat([]byte("A"), 8<<20))))
	t.Run("deflate_bomb_redirect_binding_get", func(t *testing.T) {
		b := gatewaytest.NewBrowser(t)
		req := e.login(t, b, attackerEmail)
		start := time.Now()
		r := b.Get(t, req.ACSURL+"?SAMLResponse="+bomb+"&RelayState="+
			url.QueryEscape(req.RelayState))
		if r.StatusCode != http.StatusMethodNotAllowed ||
			cookieNamed(r, "arrow_session") != nil {
			t.Fatalf("redirect binding at the ACS: want 405, got %d",
				r.StatusCode)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("refusing the bomb took %s", d)
		}
	})
	t.Run("deflate_bomb_in_query_of_post", func(t *testing.T) {
		before := e.state(t)
		b := gatewaytest.NewBrowser(t)
		req := e.login(t, b, attackerEmail)
		resp := e.valid(samlfixture.Acme, req, attackerEmail)
		s := samlfixture.DsigSigner{IDP: e.idps[samlfixture.Acme]}
		doc := signedWhole(t, s, resp)
		r := b.PostForm(t, req.ACSURL+"?SAMLResponse="+bomb, url.Values{
			"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)},
			"RelayState":   {req.RelayState}})
		e.requireRejected(t, r, before, "unsupported_binding")
	})
}

// TestAttackClientIdentityHeaders sends X-Arrow- headers, in every
// spelling, on every kind of path, with and without a session: the
// upstream only ever sees the gateway's. Caddy drops names with
// underscores or dots by default, since CGI-style upstreams fold them
// onto the hyphenated name; the operator here lets them through, and the
// gateway must still strip them.
func TestAttackClientIdentityHeaders(t *testing.T) {
	e := startAttackEnv(t, attackOptions{globals: `servers {
		expected_underscore_headers x_arrow_*
		expected_dot_headers x.arrow.*
	}`})
	spoofed := map[string]string{
		"X-Arrow-Email":     victimEmail,
		"x-arrow-org":       "globex",
		"X-ARROW-MEMBER-ID": "1",
		"X-Arrow-Name":      "The CEO",
		"X-Arrow-Csrf":      "forged",
		"X-Arrow-Assertion": "forged.jwt.value",
		"X-Arrow-Whatever":  "x",
		"X_Arrow_Email":     victimEmail,
		"X_arrow_member_id": "1",
		"X.Arrow.Org":       "globex",
	}
	paths := []string{"/", "/api/items?x=1", "/.arrowx/y", "/.ARROW/login",
		"/a/../b", "/%2e%2e/c", "/.arrow/login", "/.arrow/logout",
		"/.arrow/static/arrow.css", "/.arrow/saml/acme/metadata",
		"/.arrow/nowhere"}
	send := func(t *testing.T, b *gatewaytest.Browser, method,
		path string) gatewaytest.Response {
		req, err := http.NewRequest(method, e.gw+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range spoofed {
			req.Header[k] = []string{v}
		}
		req.Header.Set("Accept", "application/json")
		return b.Do(t, req)
	}

	anon := gatewaytest.NewBrowser(t)
	for _, p := range paths {
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			hits := e.upstream.count()
			r := send(t, anon, m, p)
			if e.upstream.count() != hits {
				t.Errorf("%s %s without a session reached the upstream "+
					"(%d)", m, p, r.StatusCode)
			}
		}
	}

	b := gatewaytest.NewBrowser(t)
	req := e.login(t, b, attackerEmail)
	resp := e.valid(samlfixture.Acme, req, attackerEmail)
	s := samlfixture.DsigSigner{IDP: e.idps[samlfixture.Acme]}
	if r := e.post(t, b, req, sign(t, s, render(t, resp),
		resp.Assertion.ID, resp.ID)); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", r.StatusCode)
	}
	for _, p := range paths {
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			hits := e.upstream.count()
			r := send(t, b, m, p)
			if e.upstream.count() == hits {
				continue // a gateway page: nothing reached the upstream
			}
			var h http.Header
			if err := json.Unmarshal([]byte(r.Body), &h); err != nil {
				t.Fatalf("%s %s: upstream answer: %v", m, p, err)
			}
			checkUpstreamIdentity(t, m+" "+p, h)
		}
	}
}

// checkUpstreamIdentity fails if the upstream saw any X-Arrow- header, in
// any spelling, other than the gateway's for the attacker.
func checkUpstreamIdentity(t *testing.T, what string, h http.Header) {
	t.Helper()
	want := map[string]string{"X-Arrow-Email": attackerEmail,
		"X-Arrow-Org": "acme"}
	for k, v := range h {
		norm := strings.ToLower(strings.NewReplacer("_", "-", ".",
			"-").Replace(k))
		if !strings.HasPrefix(norm, "x-arrow-") {
			continue
		}
		if len(v) != 1 {
			t.Errorf("%s: upstream saw %s %d times: %v", what, k, len(v), v)
		}
		switch canon := http.CanonicalHeaderKey(norm); canon {
		case "X-Arrow-Email", "X-Arrow-Org":
			if k != canon || v[0] != want[canon] {
				t.Errorf("%s: upstream saw %s: %v", what, k, v)
			}
		case "X-Arrow-Member-Id", "X-Arrow-Csrf", "X-Arrow-Name":
			if k != canon || v[0] == "1" || v[0] == "forged" ||
				v[0] == "The CEO" {
				t.Errorf("%s: upstream saw %s: %v", what, k, v)
			}
		default:
			t.Errorf("%s: upstream saw a client-sent %s: %v", what, k, v)
		}
	}
}

// TestAttackOpenRedirectAfterSignIn takes every open redirect the whole
// way: typed on the login form, carried in the tracking cookie, and
// followed after a valid sign-in.
func TestAttackOpenRedirectAfterSignIn(t *testing.T) {
	e := startAttackEnv(t, attackOptions{})
	s := samlfixture.DsigSigner{IDP: e.idps[samlfixture.Acme]}
	cases := []struct{ returnTo, want string }{
		{"//evil.example/x", "/"},
		{`/\evil.example`, "/"},
		{"/%5Cevil.example", "/"},
		{"/%5C%5Cevil.example", "/"},
		{"/\t/evil.example", "/"},
		{"/%09/evil.example", "/"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"/%2F%2Fevil.example", "/"},
		{"/%2f/evil.example", "/"},
		{"///evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"http:evil.example", "/"},
		{"evil.example", "/"},
		{"/docs?a=1&b=2#top", "/docs?a=1&b=2#top"},
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			b := gatewaytest.NewBrowser(t)
			email := fmt.Sprintf("redirect%d@acme.test", i)
			r := b.PostForm(t, e.gw+"/.arrow/login", url.Values{
				"email": {email}, "return_to": {c.returnTo}})
			loc, err := r.Location()
			if err != nil {
				t.Fatal(err)
			}
			req, err := samlfixture.ParseRedirect(loc)
			if err != nil {
				t.Fatal(err)
			}
			resp := e.valid(samlfixture.Acme, req, email)
			done := e.post(t, b, req, sign(t, s, render(t, resp),
				resp.Assertion.ID, resp.ID))
			if got := done.Header.Get("Location"); done.StatusCode !=
				http.StatusSeeOther || got != c.want {
				t.Fatalf("return_to %q: sent to %q (%d), want %q",
					c.returnTo, got, done.StatusCode, c.want)
			}
		})
	}
}

// TestAttackLogoutCSRF covers sign-outs that the signed-in person did
// not confirm.
func TestAttackLogoutCSRF(t *testing.T) {
	e := startAttackEnv(t, attackOptions{})
	s := samlfixture.DsigSigner{IDP: e.idps[samlfixture.Acme]}
	signIn := func(email string) *gatewaytest.Browser {
		b := gatewaytest.NewBrowser(t)
		req := e.login(t, b, email)
		resp := e.valid(samlfixture.Acme, req, email)
		r := e.post(t, b, req, sign(t, s, render(t, resp),
			resp.Assertion.ID, resp.ID))
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in: %d", r.StatusCode)
		}
		return b
	}
	victim := signIn(victimEmail)
	attacker := signIn(attackerEmail)
	_, attackerForm := gatewaytest.FormOf(t,
		attacker.Get(t, e.gw+"/.arrow/logout").Body)
	_, victimForm := gatewaytest.FormOf(t,
		victim.Get(t, e.gw+"/.arrow/logout").Body)

	token := victimForm.Get("csrf")
	for _, c := range []struct {
		name  string
		query string // after the path of the post
		form  url.Values
	}{
		{"no_token", "", url.Values{}},
		{"empty_token", "", url.Values{"csrf": {""}}},
		{"another_sessions_token", "", attackerForm},
		{"token_with_a_suffix", "", url.Values{"csrf": {token + "x"}}},
		// a link or an img can carry a query, never a body
		{"token_in_query_of_post", "?csrf=" + url.QueryEscape(token),
			url.Values{}},
		// over the body cap, the form is not read at all
		{"token_with_a_megabyte_of_padding", "", url.Values{
			"csrf": {token}, "padding": {strings.Repeat("x", 1<<20)}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := victim.PostForm(t, e.gw+"/.arrow/logout"+c.query, c.form)
			if r.StatusCode != http.StatusForbidden {
				t.Fatalf("want 403, got %d", r.StatusCode)
			}
			if c := cookieNamed(r, "arrow_session"); c != nil {
				t.Fatalf("the refused sign-out touched the session cookie")
			}
			if !strings.Contains(victim.Get(t, e.gw+"/x").Body,
				victimEmail) {
				t.Fatalf("the session ended")
			}
		})
	}
	t.Run("token_in_query_of_get", func(t *testing.T) {
		victim.Get(t, e.gw+"/.arrow/logout?csrf="+url.QueryEscape(token))
		if !strings.Contains(victim.Get(t, e.gw+"/x").Body, victimEmail) {
			t.Fatalf("a GET ended the session")
		}
	})
}

// TestSessionAndTrackingCookieFlags checks the flags of the gateway's
// cookies over plain http; the https names and flags are checked in
// cookies_internal_test.go.
func TestSessionAndTrackingCookieFlags(t *testing.T) {
	e := startAttackEnv(t, attackOptions{})
	b := gatewaytest.NewBrowser(t)
	r := b.PostForm(t, e.gw+"/.arrow/login", url.Values{
		"email": {attackerEmail}})
	var tracking *http.Cookie
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, "arrow_login_") {
			tracking = c
		}
	}
	if tracking == nil || !tracking.HttpOnly ||
		tracking.Path != "/.arrow/saml/" || tracking.Domain != "" ||
		tracking.SameSite == http.SameSiteStrictMode ||
		tracking.Secure || tracking.MaxAge <= 0 ||
		tracking.MaxAge > 600 {
		t.Fatalf("tracking cookie %+v: want HttpOnly, not Strict (the "+
			"identity provider posts it back), Path=/.arrow/saml/, no "+
			"Domain, at most 10 minutes", tracking)
	}
	loc, _ := r.Location()
	req, err := samlfixture.ParseRedirect(loc)
	if err != nil {
		t.Fatal(err)
	}
	resp := e.valid(samlfixture.Acme, req, attackerEmail)
	s := samlfixture.DsigSigner{IDP: e.idps[samlfixture.Acme]}
	done := e.post(t, b, req, sign(t, s, render(t, resp),
		resp.Assertion.ID, resp.ID))
	c := cookieNamed(done, "arrow_session")
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode ||
		c.Path != "/" || c.Domain != "" || c.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, "+
			"Path=/, no Domain, not Secure over http", c)
	}
	var cleared bool
	for _, k := range done.Cookies() {
		cleared = cleared || (k.Name == tracking.Name && k.MaxAge < 0)
	}
	if !cleared {
		t.Fatalf("the tracking cookie was not cleared after sign-in")
	}
}

// gatewayCSP is the whole Content-Security-Policy of the gateway's own
// pages: nothing runs, nothing is framed, only the gateway's own styles
// and images load.
const gatewayCSP = "default-src 'none'; style-src 'self'; " +
	"img-src 'self'; base-uri 'none'; frame-ancestors 'none'"

// TestGatewayPagesSecurityHeaders checks the headers of every kind of
// page the gateway serves itself, and of the two redirects of a sign-in,
// which carry the tracking and the session cookie.
func TestGatewayPagesSecurityHeaders(t *testing.T) {
	e := startAttackEnv(t, attackOptions{})
	b := gatewaytest.NewBrowser(t)
	signer := samlfixture.DsigSigner{IDP: e.idps[samlfixture.Acme]}
	toIDP := b.PostForm(t, e.gw+"/.arrow/login", url.Values{
		"email": {attackerEmail}})
	loc, err := toIDP.Location()
	if toIDP.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("login: want a redirect to the identity provider, "+
			"got %d", toIDP.StatusCode)
	}
	req, err := samlfixture.ParseRedirect(loc)
	if err != nil {
		t.Fatal(err)
	}
	resp := e.valid(samlfixture.Acme, req, attackerEmail)
	signedIn := e.post(t, b, req, sign(t, signer, render(t, resp),
		resp.Assertion.ID, resp.ID))
	if signedIn.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: want 303, got %d", signedIn.StatusCode)
	}

	b = gatewaytest.NewBrowser(t)
	pages := map[string]gatewaytest.Response{
		"login":   b.Get(t, e.gw+"/.arrow/login"),
		"logout":  b.Get(t, e.gw+"/.arrow/logout"),
		"unknown": b.Get(t, e.gw+"/.arrow/nowhere"),
		"login_post": b.PostForm(t, e.gw+"/.arrow/login", url.Values{
			"email": {"x@unknown.test"}}),
		"to_identity_provider": toIDP,
		"signed_in":            signedIn,
	}
	b.Accept = "application/json"
	pages["problem"] = b.Get(t, e.gw+"/api")
	req = e.login(t, gatewaytest.NewBrowser(t), attackerEmail)
	pages["refusal"] = gatewaytest.NewBrowser(t).PostForm(t, req.ACSURL,
		url.Values{"SAMLResponse": {"x"}, "RelayState": {"y"}})
	for name, r := range pages {
		h := r.Header
		if csp := h.Values("Content-Security-Policy"); len(csp) != 1 ||
			csp[0] != gatewayCSP {
			t.Errorf("%s (%d): Content-Security-Policy %q, want %q", name,
				r.StatusCode, csp, gatewayCSP)
		}
		if h.Get("Cache-Control") != "no-store" ||
			h.Get("Referrer-Policy") != "no-referrer" ||
			h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s (%d): Cache-Control %q, Referrer-Policy %q, "+
				"X-Content-Type-Options %q: want no-store, no-referrer, "+
				"nosniff", name, r.StatusCode, h.Get("Cache-Control"),
				h.Get("Referrer-Policy"), h.Get("X-Content-Type-Options"))
		}
	}
}

// withoutDeclaration drops the XML declaration xmlsec1 writes, so that
// the document can go inside another.
func withoutDeclaration(doc []byte) []byte {
	doc = bytes.TrimSpace(doc)
	if bytes.HasPrefix(doc, []byte("<?xml")) {
		doc = doc[bytes.Index(doc, []byte("?>"))+2:]
	}
	return doc
}

// swapIdentity replaces the attacker's address with the victim's.
func swapIdentity(t *testing.T, doc []byte) []byte {
	t.Helper()
	if !bytes.Contains(doc, []byte(attackerEmail)) {
		t.Fatalf("no %s in the document", attackerEmail)
	}
	return bytes.ReplaceAll(doc, []byte(attackerEmail), []byte(victimEmail))
}

// stripSignatures removes every ds:Signature element.
func stripSignatures(t *testing.T, doc []byte) []byte {
	t.Helper()
	for {
		i := bytes.Index(doc, []byte("<ds:Signature"))
		if i < 0 {
			return doc
		}
		j := bytes.Index(doc[i:], []byte("</ds:Signature>"))
		if j < 0 {
			t.Fatalf("unterminated signature")
		}
		doc = append(doc[:i:i], doc[i+j+len("</ds:Signature>"):]...)
	}
}

// replaceCert puts to's certificate in the KeyInfo of signatures made
// by from.
func replaceCert(t *testing.T, doc []byte, from,
	to *samlfixture.IDP) []byte {
	t.Helper()
	b64 := func(p *samlfixture.IDP) []byte {
		return []byte(base64.StdEncoding.EncodeToString(p.Cert.Raw))
	}
	// xmlsec1 wraps the base64 in lines; take it out first
	doc = bytes.ReplaceAll(doc, []byte("&#13;"), nil)
	var out []byte
	rest := doc
	for {
		i := bytes.Index(rest, []byte("<ds:X509Certificate>"))
		if i < 0 {
			break
		}
		i += len("<ds:X509Certificate>")
		j := bytes.Index(rest[i:], []byte("</ds:X509Certificate>"))
		out = append(out, rest[:i]...)
		out = append(out, b64(to)...)
		rest = rest[i+j:]
	}
	out = append(out, rest...)
	if bytes.Equal(out, doc) || bytes.Contains(out, b64(from)) {
		t.Fatalf("no certificate replaced")
	}
	return out
}

// twoAssertions is a response with the attacker's signed assertion and
// an unsigned one for the victim, in either order.
func twoAssertions(t *testing.T, e *attackEnv, s samlfixture.Signer,
	req samlfixture.Request, unsignedFirst bool) []byte {
	t.Helper()
	own := e.valid(samlfixture.Acme, req, attackerEmail)
	signed := sign(t, s, render(t, own), own.Assertion.ID)
	victim := render(t, e.valid(samlfixture.Acme, req, victimEmail))
	dst, src := signed, victim
	if unsignedFirst {
		dst, src = victim, signed
	}
	doc, err := samlfixture.AppendAssertion(dst, src)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// spCert returns the gateway's certificate from acme's SP metadata.
func (e *attackEnv) spCert(t *testing.T) *x509.Certificate {
	t.Helper()
	r := gatewaytest.NewBrowser(t).Get(t, e.gw+"/.arrow/saml/acme/metadata")
	var ed saml.EntityDescriptor
	if err := xml.Unmarshal([]byte(r.Body), &ed); err != nil {
		t.Fatalf("reading SP metadata: %v", err)
	}
	for _, sp := range ed.SPSSODescriptors {
		for _, kd := range sp.KeyDescriptors {
			for _, c := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(
					strings.Join(strings.Fields(c.Data), ""))
				if err != nil {
					continue
				}
				if cert, err := x509.ParseCertificate(der); err == nil {
					return cert
				}
			}
		}
	}
	t.Fatalf("no certificate in the SP metadata:\n%s", r.Body)
	return nil
}

// forgeTrackingCookie sets, in b, a tracking cookie for req made
// without the gateway's key: the payload is right, the MAC is not.
func forgeTrackingCookie(t *testing.T, b *gatewaytest.Browser,
	req samlfixture.Request) {
	t.Helper()
	payload, err := json.Marshal(map[string]any{"o": "acme", "r": req.ID,
		"t": "/", "e": time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	mac := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	b.Client.Jar.SetCookies(mustURL(t, req.ACSURL), []*http.Cookie{{
		Name:  "arrow_login_" + req.RelayState,
		Value: base64.RawURLEncoding.EncodeToString(payload) + "." + mac,
		Path:  "/.arrow/saml/",
	}})
}

// trackingCookie returns the tracking cookie b holds for req, with the
// path the gateway set it on.
func trackingCookie(t *testing.T, b *gatewaytest.Browser,
	req samlfixture.Request) *http.Cookie {
	t.Helper()
	name := "arrow_login_" + req.RelayState
	for _, c := range b.Client.Jar.Cookies(mustURL(t, req.ACSURL)) {
		if c.Name == name {
			return &http.Cookie{Name: c.Name, Value: c.Value,
				Path: "/.arrow/saml/"}
		}
	}
	t.Fatalf("the browser holds no %s cookie", name)
	return nil
}

// seal seals data for the cookie name as the gateway does, with its
// cookie key from the store: the payload in base64url, a dot, and the
// HMAC-SHA256 of the name and the payload, each followed by a zero byte.
func (e *attackEnv) seal(t *testing.T, name string, data []byte) string {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, e.db)
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	defer st.Close()
	key, err := st.Secret(ctx, "cookie-key", func() ([]byte, error) {
		return nil, errors.New("the gateway has no cookie key yet")
	})
	if err != nil {
		t.Fatalf("reading the cookie key: %v", err)
	}
	payload := base64.RawURLEncoding.EncodeToString(data)
	m := hmac.New(sha256.New, key)
	for _, p := range []string{name, payload} {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// openCookie returns the payload of a cookie the gateway sealed, after
// checking that seal makes the same value: a test that seals what it
// changed then differs from the gateway's cookie only in that change.
func (e *attackEnv) openCookie(t *testing.T, c *http.Cookie) []byte {
	t.Helper()
	payload, _, _ := strings.Cut(c.Value, ".")
	data, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		t.Fatalf("cookie %s: %v", c.Name, err)
	}
	if e.seal(t, c.Name, data) != c.Value {
		t.Fatalf("cookie %s: sealed again, it differs: the test does "+
			"not seal as the gateway does", c.Name)
	}
	return data
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func deflate(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withSHA1 returns s signing with SHA-1.
func withSHA1(t *testing.T, s samlfixture.Signer) samlfixture.Signer {
	t.Helper()
	switch v := s.(type) {
	case samlfixture.DsigSigner:
		v.SHA1 = true
		return v
	case samlfixture.XMLSecSigner:
		v.SHA1 = true
		return v
	}
	t.Fatalf("unknown signer %T", s)
	return nil
}
