package caddymodule

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// The SAML namespaces the shape check counts elements of.
const (
	samlAssertionNS = "urn:oasis:names:tc:SAML:2.0:assertion"
	samlProtocolNS  = "urn:oasis:names:tc:SAML:2.0:protocol"
)

// maxXMLDepth bounds the nesting of a SAML response. Real ones nest
// about ten deep.
const maxXMLDepth = 64

// checkResponseShape refuses, before any signature is checked, a SAML
// response that is not one Response holding exactly one Assertion or
// EncryptedAssertion anywhere in it, or that carries a DTD.
//
// Identity providers send one assertion per response. A second copy, in
// an Extensions element, inside a Signature or beside an encrypted one,
// is how signature wrapping smuggles an identity past a verifier that
// checks one element and reads another; refusing the shape stops the
// whole family without relying on how the library resolves references.
// A DTD can declare entities, which SAML never needs.
func checkResponseShape(raw []byte) error {
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	var responses, assertions, depth int
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return reject("malformed", fmt.Errorf("reading XML: %w", err))
		}
		switch tok := tok.(type) {
		case xml.Directive:
			return reject("malformed", errors.New("the response "+
				"carries a DTD"))
		case xml.EndElement:
			depth--
		case xml.StartElement:
			if depth++; depth > maxXMLDepth {
				return reject("malformed", errors.New("the response "+
					"nests too deep"))
			}
			switch tok.Name.Space + " " + tok.Name.Local {
			case samlProtocolNS + " Response":
				responses++
			case samlAssertionNS + " Assertion",
				samlAssertionNS + " EncryptedAssertion":
				assertions++
			}
		}
	}
	if responses != 1 || assertions != 1 {
		return reject("wrapping", fmt.Errorf("the response holds %d "+
			"Response and %d assertion elements, want one of each",
			responses, assertions))
	}
	return nil
}
