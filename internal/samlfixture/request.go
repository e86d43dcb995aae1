package samlfixture

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
)

// ErrNoRequest is returned by ParseRedirect for a URL without a
// SAMLRequest.
var ErrNoRequest = errors.New("samlfixture: no SAMLRequest in the URL")

// maxRequest bounds an inflated AuthnRequest.
const maxRequest = 64 << 10

// ParseRedirect reads the AuthnRequest a service provider sent with the
// HTTP-Redirect binding: u is where it redirected the browser.
func ParseRedirect(u *url.URL) (Request, error) {
	q := u.Query()
	enc := q.Get("SAMLRequest")
	if enc == "" {
		return Request{}, ErrNoRequest
	}
	deflated, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return Request{}, fmt.Errorf("decoding SAMLRequest: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(
		flate.NewReader(bytes.NewReader(deflated)), maxRequest))
	if err != nil {
		return Request{}, fmt.Errorf("inflating SAMLRequest: %w", err)
	}
	var ar struct {
		ID     string `xml:"ID,attr"`
		ACS    string `xml:"AssertionConsumerServiceURL,attr"`
		Issuer string `xml:"urn:oasis:names:tc:SAML:2.0:assertion Issuer"`
	}
	if err := xml.Unmarshal(raw, &ar); err != nil {
		return Request{}, fmt.Errorf("reading AuthnRequest: %w", err)
	}
	if ar.ID == "" || ar.ACS == "" || ar.Issuer == "" {
		return Request{}, fmt.Errorf("AuthnRequest lacks its ID, "+
			"AssertionConsumerServiceURL or Issuer:\n%s", raw)
	}
	return Request{
		ID:         ar.ID,
		ACSURL:     ar.ACS,
		Audience:   ar.Issuer,
		RelayState: q.Get("RelayState"),
	}, nil
}
