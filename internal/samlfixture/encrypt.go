package samlfixture

import (
	"crypto/x509"
	"fmt"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/xmlenc"
)

// EncryptAssertion replaces the Assertion of the response doc with an
// EncryptedAssertion for the service provider's certificate (RSA-OAEP,
// AES-256-GCM), as an identity provider that encrypts would. Anyone can
// do this: the certificate is public.
func EncryptAssertion(doc []byte, spCert *x509.Certificate) ([]byte,
	error) {
	return EncryptAssertionWith(doc, spCert, xmlenc.AES256GCM)
}

// EncryptAssertionWith is EncryptAssertion with the given block cipher,
// such as xmlenc.AES256CBC, which older identity providers still use.
func EncryptAssertionWith(doc []byte, spCert *x509.Certificate,
	cipher xmlenc.BlockCipher) ([]byte, error) {
	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil {
		return nil, fmt.Errorf("reading document: %w", err)
	}
	resp := d.Root()
	a := resp.SelectElement("Assertion")
	if a == nil {
		return nil, ErrShape
	}
	plain, err := detachedBytes(a)
	if err != nil {
		return nil, err
	}

	enc := xmlenc.OAEP()
	enc.BlockCipher = cipher
	data, err := enc.Encrypt(spCert, plain, nil)
	if err != nil {
		return nil, fmt.Errorf("encrypting assertion: %w", err)
	}
	data.CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#Element")
	ea := etree.NewElement("saml:EncryptedAssertion")
	ea.AddChild(data)
	at := a.Index()
	resp.RemoveChildAt(at)
	resp.InsertChildAt(at, ea)
	return writeDoc(d)
}

// AppendAssertion copies the Assertion or EncryptedAssertion of the
// response src to the end of the response dst: one response carrying two
// assertions.
func AppendAssertion(dst, src []byte) ([]byte, error) {
	dd, sd := etree.NewDocument(), etree.NewDocument()
	if err := dd.ReadFromBytes(dst); err != nil {
		return nil, fmt.Errorf("reading document: %w", err)
	}
	if err := sd.ReadFromBytes(src); err != nil {
		return nil, fmt.Errorf("reading document: %w", err)
	}
	a := sd.Root().SelectElement("Assertion")
	if a == nil {
		a = sd.Root().SelectElement("EncryptedAssertion")
	}
	if a == nil {
		return nil, ErrShape
	}
	dd.Root().AddChild(a.Copy())
	return writeDoc(dd)
}

// detachedBytes writes el as a document of its own, declaring the
// namespaces it uses.
func detachedBytes(el *etree.Element) ([]byte, error) {
	c := el.Copy()
	c.CreateAttr("xmlns:saml", AssertionNS)
	d := etree.NewDocument()
	d.SetRoot(c)
	return writeDoc(d)
}
