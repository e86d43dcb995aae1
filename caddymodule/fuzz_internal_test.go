package caddymodule

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/crewjam/saml/samlsp"

	"github.com/arrowgate/arrowgate/internal/samlfixture"
	"github.com/arrowgate/arrowgate/provisioner"
)

// FuzzSafeReturnTo checks that whatever return_to is, the gateway only
// ever redirects to a path of its own origin.
func FuzzSafeReturnTo(f *testing.F) {
	for _, s := range []string{"/", "/docs?a=1#x", "//evil", `/\evil`,
		"/%5Cevil", "/\t/evil", "https://evil", "javascript:alert(1)",
		"/%2F%2Fevil", "/%252F/evil", "/\x00", "/a\nb"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://gw.test/app/")
	f.Fuzz(func(t *testing.T, in string) {
		out := safeReturnTo(in)
		if out != "/" && out != in {
			t.Fatalf("safeReturnTo(%q) = %q: neither / nor the input",
				in, out)
		}
		// browsers drop tabs and newlines from URLs before reading them
		seen := strings.NewReplacer("\t", "", "\n", "", "\r", "").
			Replace(out)
		unescaped, err := url.PathUnescape(seen)
		if err != nil {
			unescaped = seen
		}
		for _, s := range []string{seen, unescaped} {
			if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") ||
				strings.HasPrefix(s, `/\`) {
				t.Fatalf("safeReturnTo(%q) = %q, read as %q", in, out, s)
			}
		}
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("safeReturnTo(%q) = %q does not parse: %v", in, out,
				err)
		}
		if u.Scheme != "" || u.Host != "" || u.User != nil ||
			base.ResolveReference(u).Host != "gw.test" {
			t.Fatalf("safeReturnTo(%q) = %q leaves the origin", in, out)
		}
	})
}

// fuzzACS is a handler and org whose ACS can be called directly: acme,
// trusting the fixture identity provider, with a tracking cookie for
// request fuzzRequestID.
type fuzzACS struct {
	h      *Handler
	st     *orgState
	cookie *http.Cookie
}

const (
	fuzzRequestID = "_request-1"
	fuzzRelay     = "fuzz-relay"
	fuzzACSURL    = "https://gw.test/.arrow/saml/acme/acs"
)

func newFuzzACS(tb testing.TB) *fuzzACS {
	tb.Helper()
	idp, err := samlfixture.LoadIDP(samlfixture.Acme)
	if err != nil {
		tb.Fatal(err)
	}
	md, err := idp.Metadata()
	if err != nil {
		tb.Fatal(err)
	}
	ed, err := samlsp.ParseMetadata(md)
	if err != nil {
		tb.Fatal(err)
	}
	pemBundle, err := newKeyPairPEM()
	if err != nil {
		tb.Fatal(err)
	}
	pair, err := tls.X509KeyPair(pemBundle, pemBundle)
	if err != nil {
		tb.Fatal(err)
	}
	h := &Handler{
		BasePath: "/.arrow",
		now:      time.Now,
		cookies:  cookieSigner{key: []byte("fuzz key")},
		store:    replayOnlyStore{},
		sp: spIdentity{key: pair.PrivateKey.(*rsa.PrivateKey),
			cert: pair.Leaf},
	}
	st := &orgState{Org: provisioner.Org{ID: "acme",
		Domains: []string{"acme.test"}}}
	st.idp.Store(ed)

	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "https://gw.test/", nil)
	err = h.setTrackingCookie(w, r, fuzzRelay, tracked{Org: "acme",
		RequestID: fuzzRequestID, ReturnTo: "/",
		Expires: time.Now().Add(time.Hour).Unix()})
	if err != nil {
		tb.Fatal(err)
	}
	return &fuzzACS{h: h, st: st, cookie: w.Result().Cookies()[0]}
}

// post runs the ACS's verification on a SAMLResponse form value.
func (f *fuzzACS) post(value string) (string, error) {
	body := url.Values{"SAMLResponse": {value},
		"RelayState": {fuzzRelay}}.Encode()
	r := httptest.NewRequest(http.MethodPost, fuzzACSURL,
		strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(f.cookie)
	email, _, _, _, err := f.h.verify(r, f.st)
	return email, err
}

// replayOnlyStore is a store for the ACS alone: only the replay cache is
// used before a person is signed in.
type replayOnlyStore struct{ provisioner.Store }

func (replayOnlyStore) ConsumeOnce(context.Context, string,
	time.Time) error {
	return nil
}

// FuzzACSDecode feeds the assertion consumer service's decoding path:
// whatever is posted, it must not panic, must refuse, and must give a
// reason from the fixed set.
func FuzzACSDecode(f *testing.F) {
	for _, name := range []string{"response-dsig.xml",
		"response-xmlsec1.xml"} {
		doc, err := os.ReadFile(filepath.Join("..", "internal",
			"samlfixture", "testdata", "golden", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(doc, true)
	}
	f.Add([]byte("<samlp:Response/>"), true)
	f.Add([]byte("!!garbage"), false)

	acs := newFuzzACS(f)
	f.Fuzz(func(t *testing.T, doc []byte, encode bool) {
		value := string(doc)
		if encode {
			value = base64.StdEncoding.EncodeToString(doc)
		}
		email, err := acs.post(value)
		if err == nil {
			t.Fatalf("accepted %q from %q", email, doc)
		}
		var rj *rejection
		if !errors.As(err, &rj) {
			t.Fatalf("refused without a reason: %v", err)
		}
		if !slices.Contains(knownReasons, rj.reason) {
			t.Fatalf("reason %q is not in the fixed set", rj.reason)
		}
	})
}

// knownReasons are every reason verify gives.
var knownReasons = []string{"replay", "unsolicited", "expired",
	"not_yet_valid", "audience", "destination", "issuer", "signature",
	"decryption", "unsupported", "malformed", "idp_status", "invalid",
	"unsupported_binding", "no_email", "bad_email", "domain_not_allowed",
	"wrapping"}

// FuzzCaddyfile checks that no Caddyfile makes the arrow_sso parser
// panic.
func FuzzCaddyfile(f *testing.F) {
	f.Add("arrow_sso {\n\torg acme {\n\t\tplan business\n\t\tseats 3\n" +
		"\t\tdomains acme.test\n\t\tidp_metadata_url http://x/md\n\t}\n}")
	f.Add("arrow_sso {\n\tstore postgres dsn {\n\t\tmax_conns\n\t}\n}")
	f.Add("arrow_sso {\n\tidentity_jwt on\n\trate_limit 5/1m\n}")
	paths, _ := filepath.Glob("../examples/*/Caddyfile")
	for _, p := range append(paths, "../Caddyfile") {
		if text, err := os.ReadFile(p); err == nil {
			f.Add(arrowBlock(string(text)))
		}
	}
	f.Fuzz(func(t *testing.T, text string) {
		tokens, err := caddyfile.Tokenize([]byte(text), "Caddyfile")
		if err != nil {
			return
		}
		var h Handler
		_ = h.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens))
	})
}

// arrowBlock cuts the arrow_sso block out of a whole Caddyfile, so that
// the seed starts where the parser does.
func arrowBlock(text string) string {
	i := strings.Index(text, "arrow_sso")
	if i < 0 {
		return text
	}
	return text[i:]
}
