package samlfixture

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// The algorithms of the signatures made here.
const (
	RSASHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	RSASHA1   = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	SHA256    = "http://www.w3.org/2001/04/xmlenc#sha256"
	SHA1      = "http://www.w3.org/2000/09/xmldsig#sha1"
)

// The namespaces of SAML 2.0 assertions and protocol messages.
const (
	AssertionNS = "urn:oasis:names:tc:SAML:2.0:assertion"
	ProtocolNS  = "urn:oasis:names:tc:SAML:2.0:protocol"
)

// ErrNoElement is returned when the document has no element with the ID
// to sign.
var ErrNoElement = errors.New("samlfixture: no element with that ID")

// Signer signs the element of an XML document whose ID attribute is id
// with an enveloped signature (exclusive canonicalization), placed right
// after the element's Issuer as SAML wants it.
type Signer interface {
	Sign(ctx context.Context, doc []byte, id string) ([]byte, error)
}

// DsigSigner signs with goxmldsig, as crewjam/saml's identity provider
// does.
type DsigSigner struct {
	IDP *IDP
	// SHA1 signs with RSA-SHA1 and a SHA-1 digest instead of SHA-256.
	SHA1 bool
}

// Sign implements Signer.
func (s DsigSigner) Sign(_ context.Context, doc []byte, id string) ([]byte,
	error) {
	d, el, err := findByID(doc, id)
	if err != nil {
		return nil, err
	}
	sctx := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(
		tls.Certificate{
			Certificate: [][]byte{s.IDP.Cert.Raw},
			PrivateKey:  s.IDP.Key,
		}))
	sctx.Prefix = "ds"
	sctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	sctx.Hash = crypto.SHA256
	if s.SHA1 {
		sctx.Hash = crypto.SHA1
		if err := sctx.SetSignatureMethod(RSASHA1); err != nil {
			return nil, fmt.Errorf("choosing RSA-SHA1: %w", err)
		}
	}

	// digest the element as it reads in its document, with the
	// namespaces it inherits declared on it
	nsctx, err := etreeutils.NSBuildParentContext(el)
	if err != nil {
		return nil, fmt.Errorf("reading namespaces: %w", err)
	}
	detached, err := etreeutils.NSDetatch(nsctx, el)
	if err != nil {
		return nil, fmt.Errorf("detaching element: %w", err)
	}
	sig, err := sctx.ConstructSignature(detached, true)
	if err != nil {
		return nil, fmt.Errorf("signing %s: %w", id, err)
	}
	insertAfterIssuer(el, sig)
	return writeDoc(d)
}

// XMLSecSigner signs with the xmlsec1 command, independently of
// goxmldsig.
type XMLSecSigner struct {
	IDP *IDP
	// SHA1 signs with RSA-SHA1 and a SHA-1 digest instead of SHA-256.
	SHA1 bool
	// Command is the xmlsec1 binary. Default: xmlsec1 on the PATH.
	Command string
}

// XMLSecAvailable reports whether the xmlsec1 command can be run.
func XMLSecAvailable() error {
	_, err := exec.LookPath("xmlsec1")
	return err
}

// Sign implements Signer: it puts a signature skeleton after the
// element's Issuer and lets xmlsec1 fill it in.
func (s XMLSecSigner) Sign(ctx context.Context, doc []byte, id string) (
	[]byte, error) {
	d, el, err := findByID(doc, id)
	if err != nil {
		return nil, err
	}
	method, digest := RSASHA256, SHA256
	if s.SHA1 {
		method, digest = RSASHA1, SHA1
	}
	var skel bytes.Buffer
	err = templates.ExecuteTemplate(&skel, "signature.xml.tmpl", struct {
		ID, SignatureMethod, DigestMethod string
	}{id, method, digest})
	if err != nil {
		return nil, fmt.Errorf("writing signature skeleton: %w", err)
	}
	sd := etree.NewDocument()
	if err := sd.ReadFromBytes(skel.Bytes()); err != nil {
		return nil, fmt.Errorf("reading signature skeleton: %w", err)
	}
	insertAfterIssuer(el, sd.Root())
	unsigned, err := writeDoc(d)
	if err != nil {
		return nil, err
	}
	return s.run(ctx, unsigned, "--sign", "--privkey-pem",
		"{key},{cert}", "--node-xpath", emptySignature)
}

// emptySignature selects the Signature whose SignatureValue is still to
// be filled in.
const emptySignature = "//*[local-name()='Signature']" +
	"[not(normalize-space(*[local-name()='SignatureValue']))]"

// Verify checks with xmlsec1 that the first signature in doc is valid
// for the identity provider's certificate: an independent check of what
// DsigSigner makes.
func (s XMLSecSigner) Verify(ctx context.Context, doc []byte) error {
	_, err := s.run(ctx, doc, "--verify", "--pubkey-cert-pem", "{cert}")
	return err
}

// run writes doc and the key pair to a temporary folder and runs xmlsec1
// on them with args, in which {key} and {cert} name the key files. It
// returns what xmlsec1 wrote to its --output file.
func (s XMLSecSigner) run(ctx context.Context, doc []byte,
	args ...string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "samlfixture-")
	if err != nil {
		return nil, fmt.Errorf("making temporary folder: %w", err)
	}
	defer os.RemoveAll(dir)
	in, out := filepath.Join(dir, "in.xml"), filepath.Join(dir, "out.xml")
	key, cert := filepath.Join(dir, "key.pem"), filepath.Join(dir,
		"cert.pem")
	for path, data := range map[string][]byte{in: doc,
		key: s.IDP.KeyPEM, cert: s.IDP.CertPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
	}

	full := []string{args[0],
		"--id-attr:ID", AssertionNS + ":Assertion",
		"--id-attr:ID", ProtocolNS + ":Response",
		"--output", out}
	for _, a := range args[1:] {
		full = append(full, expand(a, key, cert))
	}
	full = append(full, in)

	cmd := s.Command
	if cmd == "" {
		cmd = "xmlsec1"
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, cmd, full...)
	if msg, err := c.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("running xmlsec1 %s: %w\n%s", args[0], err,
			msg)
	}
	if args[0] != "--sign" {
		return nil, nil
	}
	return os.ReadFile(out)
}

func expand(arg, key, cert string) string {
	switch arg {
	case "{key},{cert}":
		return key + "," + cert
	case "{cert}":
		return cert
	}
	return arg
}

// findByID parses doc and returns the element whose ID attribute is id.
func findByID(doc []byte, id string) (*etree.Document, *etree.Element,
	error) {
	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil {
		return nil, nil, fmt.Errorf("reading document: %w", err)
	}
	var found *etree.Element
	walk(d.Root(), func(el *etree.Element) bool {
		if el.SelectAttrValue("ID", "") == id {
			found = el
			return false
		}
		return true
	})
	if found == nil {
		return nil, nil, fmt.Errorf("%w: %q", ErrNoElement, id)
	}
	return d, found, nil
}

// walk visits el and its descendants in document order until visit
// returns false.
func walk(el *etree.Element, visit func(*etree.Element) bool) bool {
	if el == nil {
		return true
	}
	if !visit(el) {
		return false
	}
	for _, c := range el.ChildElements() {
		if !walk(c, visit) {
			return false
		}
	}
	return true
}

// insertAfterIssuer puts sig after el's Issuer, or first if it has none.
func insertAfterIssuer(el, sig *etree.Element) {
	at := 0
	for _, c := range el.Child {
		at++
		if ce, ok := c.(*etree.Element); ok && ce.Tag == "Issuer" {
			el.InsertChildAt(at, sig)
			return
		}
	}
	el.InsertChildAt(0, sig)
}

func writeDoc(d *etree.Document) ([]byte, error) {
	out, err := d.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("writing document: %w", err)
	}
	return out, nil
}
