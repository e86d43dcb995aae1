package demoidp

import (
	"slices"
	"strings"

	"github.com/crewjam/saml"
)

// The attributes every assertion carries, besides what samlidp adds.
const (
	attrEmail       = "email"
	attrDisplayName = "displayName"
	basicNameFormat = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
)

// assertionMaker makes samlidp's assertion (NameID the email, format
// emailAddress) with the attributes email and displayName added.
//
// Emails are compared without regard to case here, so when the
// AuthnRequest names the person in another case than the account's, the
// NameID is written as requested: the library refuses an assertion whose
// NameID differs from the requested one in any way.
type assertionMaker struct{}

// MakeAssertion sets req.Assertion for the person of session.
func (assertionMaker) MakeAssertion(req *saml.IdpAuthnRequest,
	session *saml.Session) error {
	s := *session
	if sub := req.Request.Subject; sub != nil && sub.NameID != nil &&
		strings.EqualFold(sub.NameID.Value, s.NameID) {
		s.NameID = sub.NameID.Value
	}
	s.CustomAttributes = append(slices.Clone(session.CustomAttributes),
		stringAttribute(attrEmail, session.UserEmail),
		stringAttribute(attrDisplayName, session.UserCommonName),
	)
	return saml.DefaultAssertionMaker{}.MakeAssertion(req, &s)
}

// stringAttribute returns a single-valued attribute with a basic name.
func stringAttribute(name, value string) saml.Attribute {
	return saml.Attribute{
		Name:       name,
		NameFormat: basicNameFormat,
		Values:     []saml.AttributeValue{{Type: "xs:string", Value: value}},
	}
}
