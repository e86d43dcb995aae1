package samlfixture

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// StatusSuccess is the status of a Response that vouches for someone.
const StatusSuccess = "urn:oasis:names:tc:SAML:2.0:status:Success"

// Response is the shape of a SAML Response with at most one Assertion.
// Every field is written as it is: an empty Destination or InResponseTo
// leaves the attribute out, a nil Assertion leaves the element out.
type Response struct {
	ID           string
	IssueInstant time.Time
	Destination  string
	InResponseTo string
	Issuer       string
	Status       string
	Assertion    *Assertion
}

// Assertion is the shape of the one Assertion of a Response.
type Assertion struct {
	ID           string
	IssueInstant time.Time
	Issuer       string

	// NameIDXML is the content of the NameID as raw XML, so that a test
	// can put a comment or an entity in it. Builder sets it to the
	// escaped email.
	NameIDXML string

	// Recipient and InResponseTo are those of the bearer
	// SubjectConfirmationData; empty leaves them out.
	Recipient    string
	InResponseTo string

	NotBefore    time.Time
	NotOnOrAfter time.Time
	Audience     string

	// Email and DisplayName are the attributes email and displayName.
	Email       string
	DisplayName string
}

// XML returns the response as XML, unsigned.
func (r Response) XML() ([]byte, error) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, "response.xml.tmpl",
		r); err != nil {
		return nil, fmt.Errorf("writing response: %w", err)
	}
	return buf.Bytes(), nil
}

// Request is what an identity provider needs to know of the AuthnRequest
// it answers.
type Request struct {
	// ID is the AuthnRequest's ID, the InResponseTo of the answer.
	ID string
	// ACSURL is where the answer is posted, its Destination and
	// Recipient.
	ACSURL string
	// Audience is the service provider's entity ID (the AuthnRequest's
	// Issuer).
	Audience string
	// RelayState comes back with the answer unchanged.
	RelayState string
}

// Builder makes responses of one identity provider. Its times come from
// Now and its IDs from a counter mixed with Seed, so the same calls in
// the same order give the same XML.
type Builder struct {
	IDP  *IDP
	Now  func() time.Time
	Seed string

	next int
}

// NewID returns the next ID: an underscore and 40 hex digits, as an
// NCName must start with a letter or underscore.
func (b *Builder) NewID() string {
	b.next++
	sum := sha256.Sum256([]byte(b.Seed + "/" + strconv.Itoa(b.next)))
	return "_" + hex.EncodeToString(sum[:20])
}

// Response returns a correct answer to req vouching for email: issued
// now, valid for five minutes, addressed to req's ACS and audience.
func (b *Builder) Response(req Request, email string) Response {
	now := b.Now().UTC().Truncate(time.Second)
	return Response{
		ID:           b.NewID(),
		IssueInstant: now,
		Destination:  req.ACSURL,
		InResponseTo: req.ID,
		Issuer:       b.IDP.EntityID,
		Status:       StatusSuccess,
		Assertion: &Assertion{
			ID:           b.NewID(),
			IssueInstant: now,
			Issuer:       b.IDP.EntityID,
			NameIDXML:    escape(email),
			Recipient:    req.ACSURL,
			InResponseTo: req.ID,
			NotBefore:    now.Add(-30 * time.Second),
			NotOnOrAfter: now.Add(5 * time.Minute),
			Audience:     req.Audience,
			Email:        email,
			DisplayName:  "Fixture Person",
		},
	}
}
