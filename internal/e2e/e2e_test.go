package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/crewjam/saml"
)

// rsaSHA256 is the signature method SimpleSAMLphp must use.
const rsaSHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"

// endTexts are on the pages where a sign-in can end: refused by the
// service provider, an error of SimpleSAMLphp's, or a wrong password.
var endTexts = []string{
	"Sign-in refused",
	"report this tracking number",
	"Incorrect username or password",
}

// The people of the test identity provider. Bob's password and name hold
// the characters PHP treats specially inside quotes.
var (
	alice = SSPUser{Username: "alice", Password: "correct horse",
		Email: "alice@example.com", Name: "Alice Example"}
	bob = SSPUser{Username: "bob", Password: `it's\ok`,
		Email: "bob@example.org", Name: "Bob O'Brien"}
)

func TestSignInThroughSimpleSAMLphp(t *testing.T) {
	sp := startTestServiceProvider(t)
	start := time.Now()
	ssp := StartSimpleSAMLphp(t, SSPConfig{
		Users:            []SSPUser{alice, bob},
		ServiceProviders: []SSPServiceProvider{sp.entry()},
	})
	t.Logf("SimpleSAMLphp answered after %v", time.Since(start))
	sp.trust(t, ssp)
	start = time.Now()
	browser := StartBrowser(t)
	t.Logf("Chromium started in %v", time.Since(start))

	tests := []struct {
		name               string
		username, password string
		// wantText is on the page where the sign-in ends.
		wantText string
		// wantNameID is what the service provider gets; empty means the
		// browser never reaches the service provider.
		wantNameID string
	}{
		{"right password", alice.Username, alice.Password,
			"as alice@example.com (Alice Example)", alice.Email},
		{"quote and backslash in password and name",
			bob.Username, bob.Password,
			"as bob@example.org (Bob O'Brien)", bob.Email},
		{"wrong password", alice.Username, "correct horse ",
			"Incorrect username or password", ""},
		{"unknown user", "mallory", alice.Password,
			"Incorrect username or password", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			win := NewPrivateWindow(t, browser)
			ScreenshotOnFailure(t, win)
			ctx, cancel := context.WithTimeout(win, 30*time.Second)
			defer cancel()
			seen := len(sp.received())

			start := time.Now()
			signIn(t, ctx, sp.loginURL(), tc.username, tc.password)
			page, err := WaitForText(ctx,
				append([]string{tc.wantText}, endTexts...)...)
			if err != nil || !strings.Contains(page, tc.wantText) {
				t.Fatalf("want %q on the page (%v); it shows:\n%s",
					tc.wantText, err, page)
			}
			t.Logf("sign-in round trip: %v", time.Since(start))

			got := sp.received()[seen:]
			if tc.wantNameID == "" {
				if len(got) != 0 {
					t.Fatalf("the service provider got %+v", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("the service provider got %d responses, want 1",
					len(got))
			}
			checkSignedIn(t, got[0], tc.wantNameID)
		})
	}
}

// signIn starts at the service provider and fills SimpleSAMLphp's login
// form as a person would.
func signIn(t testing.TB, ctx context.Context, loginURL, username,
	password string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(loginURL),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), username),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#submit_button")),
	)
	if err != nil {
		page, _ := PageText(ctx)
		t.Fatalf("filling the login form: %v; the page shows:\n%s",
			err, page)
	}
}

// checkSignedIn checks what the service provider accepted: who, in which
// format, with both signatures in RSA-SHA256, its own RelayState back, and
// a cross-site POST.
func checkSignedIn(t testing.TB, got acsResult, wantNameID string) {
	t.Helper()
	if got.Err != nil {
		t.Fatalf("the service provider refused the response: %v", got.Err)
	}
	if got.NameID != wantNameID ||
		got.NameIDFormat != string(saml.EmailAddressNameIDFormat) {
		t.Errorf("NameID = %q in %q, want %q as an email address",
			got.NameID, got.NameIDFormat, wantNameID)
	}
	if got.ResponseSigAlg != rsaSHA256 || got.AssertionSigAlg != rsaSHA256 {
		t.Errorf("signatures: Response %q, Assertion %q; want both %s",
			got.ResponseSigAlg, got.AssertionSigAlg, rsaSHA256)
	}
	if !got.RelayStateKnown {
		t.Error("the RelayState did not come back")
	}
	if got.LaxCookieSent {
		t.Error("a SameSite=Lax cookie came with the POST to the ACS: " +
			"the identity provider is on the same site as the service " +
			"provider, unlike in production")
	}
}

func TestSSPConfigValidate(t *testing.T) {
	sp := SSPServiceProvider{EntityID: "http://127.0.0.1:1/metadata",
		ACSURL: "http://127.0.0.1:1/acs"}
	tests := []struct {
		name    string
		cfg     SSPConfig
		wantErr string
	}{
		{"users and a service provider", SSPConfig{
			Users:            []SSPUser{alice, bob},
			ServiceProviders: []SSPServiceProvider{sp},
		}, ""},
		{"another loopback host", SSPConfig{Host: "127.0.0.3"}, ""},
		{"colon in username", SSPConfig{
			Users: []SSPUser{{Username: "a:b", Password: "x"}},
		}, "colon"},
		{"empty username", SSPConfig{
			Users: []SSPUser{{Password: "x"}},
		}, "colon"},
		{"service provider without ACS", SSPConfig{
			ServiceProviders: []SSPServiceProvider{{EntityID: "sp"}},
		}, "ACS URL"},
		{"public host", SSPConfig{Host: "192.0.2.1"}, "loopback"},
		{"host name", SSPConfig{Host: "localhost"}, "loopback"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("validate() = %v, want no error", err)
			case tc.wantErr != "" &&
				(err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("validate() = %v, want an error about %q",
					err, tc.wantErr)
			}
		})
	}
}
