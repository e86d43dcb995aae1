package caddymodule_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/arrowgate/arrowgate/internal/gatewaytest"
)

// TestSignInAttemptsAreRateLimited posts the login form and the ACS past
// the limit from one address: the next attempt gets 429 with Retry-After,
// as a page or a problem document, while pages and signed-in requests
// still work.
func TestSignInAttemptsAreRateLimited(t *testing.T) {
	e := startAttackEnv(t, attackOptions{extra: "rate_limit 3/1m"})
	b := e.signedInBrowser(t, attackerEmail) // a login post, an ACS post
	if r := b.PostForm(t, e.gw+"/.arrow/login", url.Values{
		"email": {"x@unknown.test"}}); r.StatusCode != http.StatusNotFound {
		t.Fatalf("third attempt: want it answered (404), got %d",
			r.StatusCode)
	}

	r := b.PostForm(t, e.gw+"/.arrow/login", url.Values{
		"email": {attackerEmail}})
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if r.StatusCode != http.StatusTooManyRequests || err != nil ||
		secs < 1 || secs > 60 {
		t.Fatalf("fourth login post: want 429 with Retry-After of at "+
			"most a minute, got %d %q", r.StatusCode,
			r.Header.Get("Retry-After"))
	}
	if !strings.Contains(r.Body, "Too many sign-in attempts") ||
		r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("429 page:\n%s", r.Body)
	}

	// the ACS shares the allowance, and API clients get a problem
	req, _ := http.NewRequest(http.MethodPost,
		e.gw+"/.arrow/saml/acme/acs", strings.NewReader("SAMLResponse=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	j := b.Do(t, req)
	var p map[string]any
	if err := json.Unmarshal([]byte(j.Body), &p); err != nil ||
		j.StatusCode != http.StatusTooManyRequests ||
		p["code"] != "rate_limited" || j.Header.Get("Retry-After") == "" {
		t.Fatalf("ACS over the limit: %d %s", j.StatusCode, j.Body)
	}

	// nothing else is limited
	if r := b.Get(t, e.gw+"/.arrow/login"); r.StatusCode != http.StatusOK {
		t.Fatalf("login page over the limit: %d", r.StatusCode)
	}
	if h := upstreamHeaders(t, b, e.gw+"/x"); h.Get("X-Arrow-Email") !=
		attackerEmail {
		t.Fatalf("signed-in request over the limit: %v", h)
	}
}

func TestRateLimitDefaultAllowsThreeHundred(t *testing.T) {
	e := startAttackEnv(t, attackOptions{defaultRateLimit: true})
	b := gatewaytest.NewBrowser(t)
	post := func() int {
		return b.PostForm(t, e.gw+"/.arrow/login", url.Values{
			"email": {"x@unknown.test"}}).StatusCode
	}
	for i := 0; i < 300; i++ {
		if code := post(); code != http.StatusNotFound {
			t.Fatalf("attempt %d of the default 300: %d", i+1, code)
		}
	}
	// the bucket refills five attempts a second, so a slow machine
	// sees a few more go through before the 429
	for extra := 0; post() != http.StatusTooManyRequests; extra++ {
		if extra == 100 {
			t.Fatalf("400 attempts from one address, none refused")
		}
	}
}

func TestCaddyfileSecurityOptions(t *testing.T) {
	site := func(opts string) string {
		return "http://127.0.0.1:1 {\n\tarrow_sso {\n\t\t" + opts +
			"\n\t\torg acme {\n\t\t\tplan team\n\t\t\tseats 1\n" +
			"\t\t\tdomains acme.test\n\t\t\tidp_metadata_url " +
			"http://idp/md\n\t\t}\n\t}\n}\n"
	}
	for _, c := range []struct{ opts, want string }{
		{"rate_limit 30/1m",
			`"rate_limit":{"requests":30,"window":60000000000}`},
		{"rate_limit 5/10s",
			`"rate_limit":{"requests":5,"window":10000000000}`},
		{"rate_limit off", `"rate_limit":{"off":true}`},
		{"identity_jwt on", `"identity_jwt":true`},
		{"rate_limit 0/1m", `rate_limit: want <n>/<duration> like ` +
			`300/1m, or off, not "0/1m", at Caddyfile:3`},
		{"rate_limit 30", "rate_limit: want <n>/<duration>"},
		{"rate_limit 30/soon", `rate_limit: "soon" is not a positive`},
		{"rate_limit 30/1m 2", "want one value, got more"},
		{"identity_jwt maybe", `identity_jwt takes on or off, not "maybe"`},
	} {
		cfg, err := gatewaytest.Adapt(site(c.opts))
		got := string(cfg)
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("%s: want %s in\n%s", c.opts, c.want, got)
		}
	}
}
