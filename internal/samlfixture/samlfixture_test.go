package samlfixture_test

import (
	"bytes"
	"context"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/arrowgate/arrowgate/internal/samlfixture"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// goldenTime is the clock of the golden fixtures.
var goldenTime = time.Date(2027, 1, 1, 9, 0, 0, 0, time.UTC)

var goldenRequest = samlfixture.Request{
	ID:       "_request-1",
	ACSURL:   "https://gw.test/.arrow/saml/acme/acs",
	Audience: "https://gw.test/.arrow/saml/acme/metadata",
}

func loadIDP(t *testing.T, name string) *samlfixture.IDP {
	t.Helper()
	p, err := samlfixture.LoadIDP(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func requireXMLSec(t *testing.T) {
	t.Helper()
	if err := samlfixture.XMLSecAvailable(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("xmlsec1 is missing (apt-get install xmlsec1): %v",
				err)
		}
		t.Skipf("SKIPPED, NOT TESTED: xmlsec1 is missing "+
			"(apt-get install xmlsec1): %v", err)
	}
}

// signBoth signs the assertion, then the response, with s.
func signBoth(t *testing.T, s samlfixture.Signer,
	r samlfixture.Response) []byte {
	t.Helper()
	doc, err := r.XML()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if doc, err = s.Sign(ctx, doc, r.Assertion.ID); err != nil {
		t.Fatal(err)
	}
	if doc, err = s.Sign(ctx, doc, r.ID); err != nil {
		t.Fatal(err)
	}
	return doc
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s changed: the fixtures are no longer reproducible "+
			"(run with -update if that is meant)\n%s", name, got)
	}
}

// serviceProvider is crewjam/saml's service provider for goldenRequest,
// living at goldenTime.
func serviceProvider(t *testing.T, idp *samlfixture.IDP) *saml.ServiceProvider {
	t.Helper()
	md, err := idp.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	ed, err := samlsp.ParseMetadata(md)
	if err != nil {
		t.Fatalf("crewjam/saml refuses the fixture metadata: %v", err)
	}
	acs, _ := url.Parse(goldenRequest.ACSURL)
	meta, _ := url.Parse(goldenRequest.Audience)
	return &saml.ServiceProvider{
		EntityID:             goldenRequest.Audience,
		AcsURL:               *acs,
		MetadataURL:          *meta,
		IDPMetadata:          ed,
		Clock:                dsig.NewFakeClockAt(goldenTime),
		RejectSHA1Signatures: true,
	}
}

func TestGoldenFixturesAreReproducible(t *testing.T) {
	requireXMLSec(t)
	idp := loadIDP(t, samlfixture.Acme)
	signers := map[string]samlfixture.Signer{
		"dsig":    samlfixture.DsigSigner{IDP: idp},
		"xmlsec1": samlfixture.XMLSecSigner{IDP: idp},
	}
	for name, s := range signers {
		t.Run(name, func(t *testing.T) {
			b := &samlfixture.Builder{IDP: idp, Seed: "golden",
				Now: func() time.Time { return goldenTime }}
			r := b.Response(goldenRequest, "bob@acme.test")
			doc := signBoth(t, s, r)
			golden(t, "response-"+name+".xml", doc)

			// the other library accepts what this one signed
			sp := serviceProvider(t, idp)
			a, err := sp.ParseXMLResponse(doc,
				[]string{goldenRequest.ID}, sp.AcsURL)
			if err != nil {
				t.Fatalf("crewjam/saml refuses the %s-signed fixture: "+
					"%v", name, err.(*saml.InvalidResponseError).PrivateErr)
			}
			if a.Subject.NameID.Value != "bob@acme.test" {
				t.Fatalf("NameID read as %q", a.Subject.NameID.Value)
			}
			err = samlfixture.XMLSecSigner{IDP: idp}.Verify(
				context.Background(), doc)
			if err != nil {
				t.Fatalf("xmlsec1 refuses the %s-signed fixture: %v",
					name, err)
			}
		})
	}

	md, err := idp.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "metadata-acme.xml", md)
}

func TestXMLSecRefusesAnAlteredFixture(t *testing.T) {
	requireXMLSec(t)
	idp := loadIDP(t, samlfixture.Acme)
	b := &samlfixture.Builder{IDP: idp, Seed: "altered",
		Now: func() time.Time { return goldenTime }}
	doc := signBoth(t, samlfixture.DsigSigner{IDP: idp},
		b.Response(goldenRequest, "eve@acme.test"))
	altered := bytes.Replace(doc, []byte("eve@acme.test"),
		[]byte("ceo@acme.test"), 1)
	err := samlfixture.XMLSecSigner{IDP: idp}.Verify(context.Background(),
		altered)
	if err == nil {
		t.Fatal("xmlsec1 accepted a response whose NameID was changed " +
			"after signing: the cross-check proves nothing")
	}
}

func TestSHA1SignerSignsWithSHA1(t *testing.T) {
	requireXMLSec(t)
	idp := loadIDP(t, samlfixture.Acme)
	for _, s := range []samlfixture.Signer{
		samlfixture.DsigSigner{IDP: idp, SHA1: true},
		samlfixture.XMLSecSigner{IDP: idp, SHA1: true},
	} {
		b := &samlfixture.Builder{IDP: idp, Seed: "sha1",
			Now: func() time.Time { return goldenTime }}
		doc := signBoth(t, s, b.Response(goldenRequest, "bob@acme.test"))
		if !bytes.Contains(doc, []byte(samlfixture.RSASHA1)) ||
			bytes.Contains(doc, []byte(samlfixture.RSASHA256)) {
			t.Fatalf("%T: not an RSA-SHA1 signature:\n%s", s, doc)
		}
		sp := serviceProvider(t, idp)
		sp.RejectSHA1Signatures = false
		if _, err := sp.ParseXMLResponse(doc, []string{goldenRequest.ID},
			sp.AcsURL); err != nil {
			t.Fatalf("%T: the SHA-1 fixture is not otherwise valid: %v", s,
				err.(*saml.InvalidResponseError).PrivateErr)
		}
	}
}

func TestParseRedirectReadsCrewjamRequest(t *testing.T) {
	idp := loadIDP(t, samlfixture.Acme)
	sp := serviceProvider(t, idp)
	req, err := sp.MakeAuthenticationRequest(idp.SSOURL,
		saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		t.Fatal(err)
	}
	u, err := req.Redirect("relay-1", sp)
	if err != nil {
		t.Fatal(err)
	}
	got, err := samlfixture.ParseRedirect(u)
	if err != nil {
		t.Fatal(err)
	}
	want := samlfixture.Request{ID: req.ID, ACSURL: goldenRequest.ACSURL,
		Audience: goldenRequest.Audience, RelayState: "relay-1"}
	if got != want {
		t.Fatalf("ParseRedirect = %+v, want %+v", got, want)
	}
	if _, err := samlfixture.ParseRedirect(&url.URL{}); err == nil {
		t.Fatal("a URL without SAMLRequest was read as a request")
	}
}

func TestWrappingsKeepTheSignedOriginal(t *testing.T) {
	idp := loadIDP(t, samlfixture.Acme)
	for _, w := range samlfixture.Wrappings {
		t.Run(w.Name, func(t *testing.T) {
			b := &samlfixture.Builder{IDP: idp, Seed: w.Name,
				Now: func() time.Time { return goldenTime }}
			r := b.Response(goldenRequest, "eve@acme.test")
			doc, err := r.XML()
			if err != nil {
				t.Fatal(err)
			}
			id := r.Assertion.ID
			if w.ResponseSigned {
				id = r.ID
			}
			s := samlfixture.DsigSigner{IDP: idp}
			if doc, err = s.Sign(context.Background(), doc, id); err != nil {
				t.Fatal(err)
			}
			wrapped, err := w.Apply(doc, "ceo@acme.test")
			if err != nil {
				t.Fatal(err)
			}
			// the attack needs both: the signed original, and a copy
			// that says someone else
			for _, want := range []string{"eve@acme.test",
				"ceo@acme.test", `"` + id + `"`, "SignatureValue"} {
				if !strings.Contains(string(wrapped), want) {
					t.Errorf("%s lacks %s:\n%s", w.Name, want, wrapped)
				}
			}
			// crewjam/saml may refuse it, or read the signed original
			// (XSW7 leaves it in place); never the copy
			sp := serviceProvider(t, idp)
			a, err := sp.ParseXMLResponse(wrapped,
				[]string{goldenRequest.ID}, sp.AcsURL)
			if err == nil && a.Subject.NameID.Value != "eve@acme.test" {
				t.Errorf("%s: crewjam/saml read the unsigned copy: %s",
					w.Name, a.Subject.NameID.Value)
			}
		})
	}
}
