// Package provisioner holds Arrow's organizations, plans, seats, members
// and sessions, with the rules that join them: who may be added to a plan
// just in time, when a seat is free, and how long a session lives. It
// knows nothing of HTTP or Caddy; the gateway in package caddymodule calls
// it, and a Store keeps its state.
package provisioner

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Plan is an Arrow subscription plan. Plans differ in what they offer;
// only Business and Omnix offer just-in-time provisioning.
type Plan string

// The plans an organization can buy.
const (
	Starter  Plan = "starter"
	Team     Plan = "team"
	Business Plan = "business"
	Omnix    Plan = "omnix"
)

// ParsePlan returns the plan named s, or an error naming the plans that
// exist.
func ParsePlan(s string) (Plan, error) {
	switch p := Plan(strings.ToLower(strings.TrimSpace(s))); p {
	case Starter, Team, Business, Omnix:
		return p, nil
	}
	return "", fmt.Errorf("unknown plan %q (want starter, team, business "+
		"or omnix)", s)
}

// OffersJIT reports whether the plan lets members be provisioned just in
// time, on their first sign-in, without an invitation.
func (p Plan) OffersJIT() bool {
	return p == Business || p == Omnix
}

// Org is an organization as configured by the operator: its plan, the
// number of seats it bought, the email domains it has verified, and how
// its people get in.
type Org struct {
	// ID is the short, stable name of the organization, used in URLs
	// and in the store (for example "acme").
	ID string

	// Name is the name people see on pages ("Acme Corp"). Empty means
	// ID is shown.
	Name string

	// Plan is the plan the organization bought.
	Plan Plan

	// Seats is how many members and pending invitations the plan
	// holds. Zero means no new member can be added.
	Seats int

	// Domains are the verified email domains of the organization,
	// lower-case and IDNA-normalised. Their owners sign in with this
	// organization's identity provider.
	Domains []string

	// JIT turns on just-in-time provisioning: a person with a valid
	// assertion and no membership is added while a seat is free.
	JIT bool

	// AdminContact is whom people are told to ask for a seat or an
	// invitation (an email address or a team name). Empty means
	// "your administrator".
	AdminContact string

	// BuySeatsURL is where administrators buy more seats. Empty hides
	// the link.
	BuySeatsURL string
}

// DisplayName is the name to show people: Name, or ID when Name is empty.
func (o Org) DisplayName() string {
	if o.Name != "" {
		return o.Name
	}
	return o.ID
}

// Contact is whom to ask: AdminContact, or a generic phrase.
func (o Org) Contact() string {
	if o.AdminContact != "" {
		return o.AdminContact
	}
	return "your Arrow administrator"
}

// Validate checks the rules every organization must meet. The error
// names the organization and the field at fault.
func (o Org) Validate() error {
	if !validOrgID(o.ID) {
		return fmt.Errorf("org %q: the id must be 1 to 63 lower-case "+
			"letters, digits or dashes", o.ID)
	}
	p, err := ParsePlan(string(o.Plan))
	if err != nil {
		return fmt.Errorf("org %s: %w", o.ID, err)
	}
	if p != o.Plan {
		// OffersJIT and the pages compare plans as they are
		return fmt.Errorf("org %s: plan %q is not normalised (want %q)",
			o.ID, o.Plan, p)
	}
	if o.Seats < 0 {
		return fmt.Errorf("org %s: seats must not be negative, got %d",
			o.ID, o.Seats)
	}
	if o.JIT && !o.Plan.OffersJIT() {
		return fmt.Errorf("org %s: just-in-time provisioning needs a "+
			"business or omnix plan, not %s", o.ID, o.Plan)
	}
	if len(o.Domains) == 0 {
		return fmt.Errorf("org %s: at least one email domain is needed",
			o.ID)
	}
	for _, d := range o.Domains {
		n, err := NormalizeDomain(d)
		if err != nil {
			return fmt.Errorf("org %s: domain %q: %w", o.ID, d, err)
		}
		if n != d {
			return fmt.Errorf("org %s: domain %q is not normalised "+
				"(want %q)", o.ID, d, n)
		}
	}
	return nil
}

// HasDomain reports whether domain, already normalised, is one of the
// organization's verified domains.
func (o Org) HasDomain(domain string) bool {
	for _, d := range o.Domains {
		if d == domain {
			return true
		}
	}
	return false
}

func validOrgID(id string) bool {
	if id == "" || len(id) > 63 || id[0] == '-' {
		return false
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}

// ErrBadEmail is returned for an address that is not a plain work email.
var ErrBadEmail = errors.New("not a valid email address")

// ErrBadDomain is returned for a name that is not a domain an
// organization could verify.
var ErrBadDomain = errors.New("not a valid domain name")

// idnaProfile is the lookup profile: it maps case and width, checks
// the labels and rejects what a registrar would not issue.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.StrictDomainName(true),
	idna.ValidateLabels(true),
	idna.VerifyDNSLength(true),
)

// NormalizeDomain lower-cases and IDNA-normalises a domain to its ASCII
// (Punycode) form. A trailing dot, an empty label, a single label or a
// character that no domain may hold is ErrBadDomain.
func NormalizeDomain(domain string) (string, error) {
	if domain == "" || strings.HasSuffix(domain, ".") {
		return "", ErrBadDomain
	}
	ascii, err := idnaProfile.ToASCII(domain)
	// the mapping turns full stops such as U+3002 into dots, so the
	// trailing dot is looked for again
	if err != nil || !strings.Contains(ascii, ".") ||
		strings.HasSuffix(ascii, ".") {
		return "", ErrBadDomain
	}
	return ascii, nil
}

// NormalizeEmail trims an address typed by a person, checks that it is a
// single plain address (no display name, no comment, one @), and returns
// it lower-cased, with its domain normalised by NormalizeDomain. The
// local part is lower-cased too: identity providers are not consistent
// about its case, and one person must never take two seats.
func NormalizeEmail(s string) (email, domain string, err error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254 || strings.ContainsAny(s, " \t\r\n<>()\",;") ||
		!printable(s) {
		return "", "", ErrBadEmail
	}
	local, host, ok := strings.Cut(s, "@")
	if !ok || local == "" || strings.Contains(host, "@") {
		return "", "", ErrBadEmail
	}
	if _, err := mail.ParseAddress(s); err != nil {
		return "", "", ErrBadEmail
	}
	domain, err = NormalizeDomain(host)
	if err != nil {
		return "", "", ErrBadEmail
	}
	return strings.ToLower(local) + "@" + domain, domain, nil
}

// printable reports whether s is valid UTF-8 with no control or other
// unprintable character, which no address shown to people may hold.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Directory finds the organization that owns an email domain. It is
// built once from the configuration and is safe for concurrent reads.
type Directory struct {
	orgs     map[string]Org
	byDomain map[string]string
}

// NewDirectory checks every organization and that no domain is claimed
// twice.
func NewDirectory(orgs []Org) (*Directory, error) {
	d := &Directory{
		orgs:     make(map[string]Org, len(orgs)),
		byDomain: make(map[string]string),
	}
	for _, o := range orgs {
		if err := o.Validate(); err != nil {
			return nil, err
		}
		if _, dup := d.orgs[o.ID]; dup {
			return nil, fmt.Errorf("org %s: defined twice", o.ID)
		}
		d.orgs[o.ID] = o
		for _, dom := range o.Domains {
			if other, ok := d.byDomain[dom]; ok {
				return nil, fmt.Errorf("org %s: domain %s is already "+
					"claimed by org %s", o.ID, dom, other)
			}
			d.byDomain[dom] = o.ID
		}
	}
	return d, nil
}

// Org returns the organization with the given ID.
func (d *Directory) Org(id string) (Org, bool) {
	o, ok := d.orgs[id]
	return o, ok
}

// ForDomain returns the organization that claims the normalised domain.
func (d *Directory) ForDomain(domain string) (Org, bool) {
	id, ok := d.byDomain[domain]
	if !ok {
		return Org{}, false
	}
	return d.orgs[id], true
}

// Orgs returns every organization, in no particular order.
func (d *Directory) Orgs() []Org {
	out := make([]Org, 0, len(d.orgs))
	for _, o := range d.orgs {
		out = append(out, o)
	}
	return out
}
