package provisioner_test

import (
	"strings"
	"testing"
	"unicode"

	"github.com/arrowgate/arrowgate/provisioner"
)

var emailSeeds = []string{"alice@acme.test", "  Alice@ACME.Test ",
	"a@b@acme.test", "bob@acme.test.", "bob@acme.test.evil.com",
	"\"bob\"@acme.test", "bob@xn--bcher-kva.test", "bob@bücher.test",
	"ceo@\u0430cme.test", "CEO <ceo@acme.test>", "bob@ACME.TEST\u200b",
	"bob@acme..test", "@acme.test", "bob@", "bob@localhost"}

// FuzzNormalizeEmail checks what every caller relies on: an accepted
// address is lower-case, has one @, its domain is the normalised one,
// and normalising it again changes nothing.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range emailSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		email, domain, err := provisioner.NormalizeEmail(in)
		if err != nil {
			if email != "" || domain != "" {
				t.Fatalf("NormalizeEmail(%q) failed but returned %q, %q",
					in, email, domain)
			}
			return
		}
		local, host, ok := strings.Cut(email, "@")
		if !ok || local == "" || host != domain ||
			strings.Contains(host, "@") {
			t.Fatalf("NormalizeEmail(%q) = %q, %q: not local@domain", in,
				email, domain)
		}
		if email != strings.ToLower(email) {
			t.Fatalf("NormalizeEmail(%q) = %q: not lower-case", in, email)
		}
		for _, r := range email {
			if unicode.IsSpace(r) || unicode.IsControl(r) {
				t.Fatalf("NormalizeEmail(%q) = %q holds %U", in, email, r)
			}
		}
		if d, err := provisioner.NormalizeDomain(domain); err != nil ||
			d != domain {
			t.Fatalf("domain %q of %q is not normalised: %q, %v", domain,
				in, d, err)
		}
		again, againDomain, err := provisioner.NormalizeEmail(email)
		if err != nil || again != email || againDomain != domain {
			t.Fatalf("NormalizeEmail is not idempotent on %q: %q, %q, %v",
				email, again, againDomain, err)
		}
	})
}

// FuzzDirectoryLookup checks that an address reaches an org exactly when
// its normalised domain is one that org verified: never a subdomain, a
// look-alike or a suffix of another.
func FuzzDirectoryLookup(f *testing.F) {
	for _, s := range emailSeeds {
		f.Add(s)
	}
	orgs := []provisioner.Org{
		{ID: "acme", Plan: provisioner.Business, Seats: 5,
			Domains: []string{"acme.test", "acme.co.uk"}},
		{ID: "globex", Plan: provisioner.Team, Seats: 5,
			Domains: []string{"globex.test"}},
		{ID: "books", Plan: provisioner.Omnix, Seats: 5,
			Domains: []string{"xn--bcher-kva.test"}},
	}
	dir, err := provisioner.NewDirectory(orgs)
	if err != nil {
		f.Fatal(err)
	}
	owner := map[string]string{}
	for _, o := range orgs {
		for _, d := range o.Domains {
			owner[d] = o.ID
		}
	}
	f.Fuzz(func(t *testing.T, in string) {
		email, domain, err := provisioner.NormalizeEmail(in)
		if err != nil {
			return
		}
		o, found := dir.ForDomain(domain)
		want, verified := owner[domain]
		switch {
		case found != verified:
			t.Fatalf("%q (domain %q): found=%v, but verified=%v", in,
				domain, found, verified)
		case found && (o.ID != want || !o.HasDomain(domain) ||
			!strings.HasSuffix(email, "@"+domain)):
			t.Fatalf("%q went to org %s, want %s", in, o.ID, want)
		}
	})
}
