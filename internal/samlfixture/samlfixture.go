// Package samlfixture is a SAML identity provider for tests that signs
// whatever it is asked to: correct responses, and responses shaped the
// way an attacker would shape them (wrapped, commented, re-addressed,
// stripped of their signature, signed by the wrong key).
//
// Its keys are fixed (testdata/keys) and its XML comes from templates
// (testdata/templates), so a response built with a fixed clock and a fixed
// seed is the same bytes every time. Two signers are offered: DsigSigner
// uses goxmldsig, the library crewjam/saml verifies with, and XMLSecSigner
// runs Debian's xmlsec1, so that a bug shared by goxmldsig's signer and
// verifier cannot make a test pass.
//
// A test drives it like an identity provider would be driven: it reads
// the AuthnRequest the gateway sent (ParseRedirect), builds a Response for
// it (Builder.Response), changes what the attack changes, signs it and
// posts it to the assertion consumer service.
package samlfixture

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"embed"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"
)

//go:embed testdata/keys/*.pem testdata/templates/*.tmpl
var files embed.FS

// templates are the XML templates: the response, the metadata and the
// signature skeleton xmlsec1 fills in.
var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"xml":      escape,
	"samltime": samlTime,
}).ParseFS(files, "testdata/templates/*.tmpl"))

// The identity providers whose keys are in testdata/keys. Acme's and
// Globex's are trusted by the gateway under test for their own orgs; the
// attacker's is trusted by nobody.
const (
	Acme     = "acme"
	Globex   = "globex"
	Attacker = "attacker"
)

// ErrUnknownIDP is returned by LoadIDP for a name with no key pair.
var ErrUnknownIDP = errors.New("samlfixture: no key pair of that name")

// IDP is one identity provider: its entity ID, its single sign-on URL and
// its fixed key pair.
type IDP struct {
	Name     string
	EntityID string
	SSOURL   string
	Key      *rsa.PrivateKey
	Cert     *x509.Certificate

	// KeyPEM and CertPEM are the key pair as stored, for xmlsec1.
	KeyPEM  []byte
	CertPEM []byte
}

// LoadIDP returns the identity provider called name (Acme, Globex or
// Attacker), whose entity ID is https://idp.<name>.test/metadata.
func LoadIDP(name string) (*IDP, error) {
	keyPEM, err := files.ReadFile("testdata/keys/" + name + ".key.pem")
	if err != nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownIDP, name)
	}
	certPEM, err := files.ReadFile("testdata/keys/" + name + ".cert.pem")
	if err != nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownIDP, name)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("reading %s key: %w", name, err)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("reading %s certificate: %w", name, err)
	}
	base := "https://idp." + name + ".test"
	return &IDP{
		Name:     name,
		EntityID: base + "/metadata",
		SSOURL:   base + "/sso",
		Key:      key,
		Cert:     cert,
		KeyPEM:   keyPEM,
		CertPEM:  certPEM,
	}, nil
}

func parseKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing PKCS #8 key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA key")
	}
	return rk, nil
}

func parseCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParseCertificate(block.Bytes)
}

// Metadata returns the identity provider's SAML metadata: its entity ID,
// its signing certificate, and its single sign-on service for the
// HTTP-Redirect and HTTP-POST bindings.
func (p *IDP) Metadata() ([]byte, error) {
	var buf bytes.Buffer
	err := templates.ExecuteTemplate(&buf, "metadata.xml.tmpl", struct {
		EntityID, SSOURL, CertBase64 string
	}{p.EntityID, p.SSOURL, base64.StdEncoding.EncodeToString(p.Cert.Raw)})
	if err != nil {
		return nil, fmt.Errorf("writing metadata: %w", err)
	}
	return buf.Bytes(), nil
}

// escape escapes s for XML text and attribute values.
func escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&apos;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// samlTime writes t as SAML wants it: UTC, to the second.
func samlTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05Z")
}
