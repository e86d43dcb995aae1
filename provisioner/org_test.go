package provisioner_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/arrowgate/arrowgate/provisioner"
)

func TestNormalizeEmail(t *testing.T) {
	for _, c := range []struct {
		in, email, domain string
	}{
		{"ann@acme.example", "ann@acme.example", "acme.example"},
		{"  ann@acme.example\t\n", "ann@acme.example", "acme.example"},
		{"Ann.Lee@ACME.Example", "ann.lee@acme.example", "acme.example"},
		{"ann@Bücher.example", "ann@xn--bcher-kva.example",
			"xn--bcher-kva.example"},
		{"ann@xn--bcher-kva.example", "ann@xn--bcher-kva.example",
			"xn--bcher-kva.example"},
		{"ann@ＡＣＭＥ.example", "ann@acme.example", "acme.example"},
		{"ann+arrow@mail.acme.example", "ann+arrow@mail.acme.example",
			"mail.acme.example"},
	} {
		email, domain, err := provisioner.NormalizeEmail(c.in)
		if err != nil || email != c.email || domain != c.domain {
			t.Errorf("NormalizeEmail(%q) = %q, %q, %v; want %q, %q",
				c.in, email, domain, err, c.email, c.domain)
		}
	}
}

func TestNormalizeEmailRefuses(t *testing.T) {
	for _, in := range []string{
		"",
		"   ",
		"ann",
		"@acme.example",
		"ann@",
		"ann@@acme.example",
		"ann@bob@acme.example",
		"ann@acme.example.",
		"Ann Lee <ann@acme.example>",
		"<ann@acme.example>",
		"ann@acme.example (Ann)",
		"ann lee@acme.example",
		`"ann lee"@acme.example`,
		"ann@acme .example",
		"ann@acme",
		"ann@acme..example",
		"ann@-acme.example",
		"ann@acme_corp.example",
		"ann@[192.0.2.1]",
		"ann@acme.example, bob@acme.example",
		"a..b@acme.example",
		"ann\u009a@acme.example",      // a C1 control character
		"ann\u200b@acme.example",      // a zero-width space
		"ann\xff@acme.example",        // not UTF-8
		"bob@acme.example\u202e.evil", // a right-to-left override
		strings.Repeat("a", 250) + "@acme.example",
	} {
		email, domain, err := provisioner.NormalizeEmail(in)
		if !errors.Is(err, provisioner.ErrBadEmail) {
			t.Errorf("NormalizeEmail(%q) = %q, %q, %v; want ErrBadEmail",
				in, email, domain, err)
		}
	}
}

func TestNormalizeDomain(t *testing.T) {
	for _, c := range []struct {
		in, want string
		err      error
	}{
		{"acme.example", "acme.example", nil},
		{"ACME.Example", "acme.example", nil},
		{"Bücher.example", "xn--bcher-kva.example", nil},
		{"例え.テスト", "xn--r8jz45g.xn--zckzah", nil},
		{"mail.acme.example", "mail.acme.example", nil},
		{"", "", provisioner.ErrBadDomain},
		{"acme.example.", "", provisioner.ErrBadDomain},
		{"localhost", "", provisioner.ErrBadDomain},
		{" acme.example", "", provisioner.ErrBadDomain},
		{"acme..example", "", provisioner.ErrBadDomain},
		{"acme_corp.example", "", provisioner.ErrBadDomain},
		{"-acme.example", "", provisioner.ErrBadDomain},
		{"ann@acme.example", "", provisioner.ErrBadDomain},
	} {
		got, err := provisioner.NormalizeDomain(c.in)
		if got != c.want || !errors.Is(err, c.err) ||
			(c.err == nil) != (err == nil) {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want %q, %v",
				c.in, got, err, c.want, c.err)
		}
	}
}

func TestParsePlan(t *testing.T) {
	for in, want := range map[string]provisioner.Plan{
		"starter":    provisioner.Starter,
		"Team":       provisioner.Team,
		" BUSINESS ": provisioner.Business,
		"omnix":      provisioner.Omnix,
	} {
		got, err := provisioner.ParsePlan(in)
		if err != nil || got != want {
			t.Errorf("ParsePlan(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := provisioner.ParsePlan("gold")
	want := `unknown plan "gold" (want starter, team, business or omnix)`
	if err == nil || err.Error() != want {
		t.Errorf("ParsePlan(gold) error = %v, want %s", err, want)
	}
}

// acme is a valid organization the cases below break one rule of.
func acme() provisioner.Org {
	return provisioner.Org{
		ID:      "acme",
		Plan:    provisioner.Business,
		Seats:   10,
		Domains: []string{"acme.example", "xn--bcher-kva.example"},
		JIT:     true,
	}
}

func TestOrgValidate(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*provisioner.Org)
		want   string // the error; empty for none
	}{
		{"valid business with jit", func(*provisioner.Org) {}, ""},
		{"valid omnix with jit", func(o *provisioner.Org) {
			o.Plan = provisioner.Omnix
		}, ""},
		{"team without jit", func(o *provisioner.Org) {
			o.Plan, o.JIT = provisioner.Team, false
		}, ""},
		{"zero seats", func(o *provisioner.Org) { o.Seats = 0 }, ""},
		{"empty id", func(o *provisioner.Org) { o.ID = "" },
			`org "": the id must be 1 to 63 lower-case letters, ` +
				`digits or dashes`},
		{"upper-case id", func(o *provisioner.Org) { o.ID = "Acme" },
			`org "Acme": the id must be 1 to 63 lower-case letters, ` +
				`digits or dashes`},
		{"unknown plan", func(o *provisioner.Org) { o.Plan = "gold" },
			`org acme: unknown plan "gold" (want starter, team, ` +
				`business or omnix)`},
		{"plan not normalised", func(o *provisioner.Org) {
			o.Plan = "Business"
		}, `org acme: plan "Business" is not normalised (want ` +
			`"business")`},
		{"jit on team", func(o *provisioner.Org) {
			o.Plan = provisioner.Team
		}, "org acme: just-in-time provisioning needs a business or " +
			"omnix plan, not team"},
		{"jit on starter", func(o *provisioner.Org) {
			o.Plan = provisioner.Starter
		}, "org acme: just-in-time provisioning needs a business or " +
			"omnix plan, not starter"},
		{"negative seats", func(o *provisioner.Org) { o.Seats = -1 },
			"org acme: seats must not be negative, got -1"},
		{"no domains", func(o *provisioner.Org) { o.Domains = nil },
			"org acme: at least one email domain is needed"},
		{"domain not normalised", func(o *provisioner.Org) {
			o.Domains = []string{"Bücher.example"}
		}, `org acme: domain "Bücher.example" is not normalised ` +
			`(want "xn--bcher-kva.example")`},
		{"bad domain", func(o *provisioner.Org) {
			o.Domains = []string{"acme"}
		}, `org acme: domain "acme": not a valid domain name`},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := acme()
			c.change(&o)
			err := o.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != c.want {
				t.Errorf("Validate:\n got %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestNewDirectory(t *testing.T) {
	globex := provisioner.Org{ID: "globex", Plan: provisioner.Team,
		Seats: 3, Domains: []string{"globex.example"}}
	dir, err := provisioner.NewDirectory([]provisioner.Org{acme(), globex})
	if err != nil {
		t.Fatalf("NewDirectory: %v", err)
	}
	for domain, want := range map[string]string{
		"acme.example":          "acme",
		"xn--bcher-kva.example": "acme",
		"globex.example":        "globex",
	} {
		o, ok := dir.ForDomain(domain)
		if !ok || o.ID != want {
			t.Errorf("ForDomain(%s) = %s, %v; want %s",
				domain, o.ID, ok, want)
		}
	}
	if o, ok := dir.ForDomain("initech.example"); ok {
		t.Errorf("ForDomain(initech.example) = %s, want none", o.ID)
	}
	if o, ok := dir.Org("globex"); !ok || o.Seats != 3 {
		t.Errorf("Org(globex) = %+v, %v", o, ok)
	}
	if n := len(dir.Orgs()); n != 2 {
		t.Errorf("Orgs: got %d, want 2", n)
	}
}

func TestNewDirectoryRefuses(t *testing.T) {
	claimer := provisioner.Org{ID: "globex", Plan: provisioner.Team,
		Domains: []string{"globex.example", "acme.example"}}
	broken := acme()
	broken.Seats = -2
	for _, c := range []struct {
		name string
		orgs []provisioner.Org
		want string
	}{
		{"domain claimed twice", []provisioner.Org{acme(), claimer},
			"org globex: domain acme.example is already claimed by " +
				"org acme"},
		{"org defined twice", []provisioner.Org{acme(), acme()},
			"org acme: defined twice"},
		{"invalid org", []provisioner.Org{broken},
			"org acme: seats must not be negative, got -2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, err := provisioner.NewDirectory(c.orgs)
			if err == nil || err.Error() != c.want {
				t.Fatalf("NewDirectory = %v, %v; want error %q",
					dir, err, c.want)
			}
		})
	}
}

func TestOrgDisplay(t *testing.T) {
	o := acme()
	if o.DisplayName() != "acme" || !strings.Contains(o.Contact(),
		"administrator") {
		t.Errorf("defaults: %q, %q", o.DisplayName(), o.Contact())
	}
	o.Name, o.AdminContact = "Acme Corp", "it@acme.example"
	if o.DisplayName() != "Acme Corp" || o.Contact() != "it@acme.example" {
		t.Errorf("set: %q, %q", o.DisplayName(), o.Contact())
	}
}

func ExampleNormalizeEmail() {
	email, domain, err := provisioner.NormalizeEmail(
		"  Ann.Lee@Bücher.Example ")
	fmt.Println(email, domain, err)

	_, _, err = provisioner.NormalizeEmail("Ann Lee <ann@acme.example>")
	fmt.Println(err)
	// Output:
	// ann.lee@xn--bcher-kva.example xn--bcher-kva.example <nil>
	// not a valid email address
}

func ExampleDirectory_ForDomain() {
	dir, err := provisioner.NewDirectory([]provisioner.Org{{
		ID:      "acme",
		Name:    "Acme Corp",
		Plan:    provisioner.Business,
		Seats:   50,
		Domains: []string{"acme.example"},
		JIT:     true,
	}})
	if err != nil {
		fmt.Println(err)
		return
	}

	// the address a person typed picks their organization
	_, domain, err := provisioner.NormalizeEmail("ann@ACME.example")
	if err != nil {
		fmt.Println(err)
		return
	}
	org, ok := dir.ForDomain(domain)
	fmt.Println(org.DisplayName(), ok, org.Plan.OffersJIT())
	// Output: Acme Corp true true
}
