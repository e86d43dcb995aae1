package e2e

import (
	"context"
	"fmt"
	"slices"
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
	sp, browser := startSignInRig(t, alice, bob)

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
			waitForEnd(t, ctx, tc.wantText)
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

func TestSignInsAtTheSameTime(t *testing.T) {
	users := make([]SSPUser, 4)
	for i := range users {
		users[i] = SSPUser{
			Username: fmt.Sprintf("user%d", i),
			Password: fmt.Sprintf("password %d", i),
			Email:    fmt.Sprintf("user%d@example.com", i),
			Name:     fmt.Sprintf("User %d", i),
		}
	}
	sp, browser := startSignInRig(t, users...)

	start := time.Now()
	t.Run("together", func(t *testing.T) {
		for _, u := range users {
			t.Run(u.Username, func(t *testing.T) {
				t.Parallel()
				win := NewPrivateWindow(t, browser)
				ScreenshotOnFailure(t, win)
				ctx, cancel := context.WithTimeout(win, 30*time.Second)
				defer cancel()
				signIn(t, ctx, sp.loginURL(), u.Username, u.Password)
				waitForEnd(t, ctx, fmt.Sprintf("as %s (%s)", u.Email, u.Name))
			})
		}
	})
	t.Logf("%d sign-ins at once: %v", len(users), time.Since(start))

	got := sp.received()
	if len(got) != len(users) {
		t.Fatalf("the service provider got %d responses, want %d",
			len(got), len(users))
	}
	for _, res := range got {
		i := slices.IndexFunc(users, func(u SSPUser) bool {
			return u.Email == res.NameID
		})
		if i < 0 {
			t.Fatalf("the service provider got NameID %q, no user's",
				res.NameID)
		}
		checkSignedIn(t, res, users[i].Email)
		users = slices.Delete(users, i, i+1)
	}
}

// startSignInRig starts the test service provider, SimpleSAMLphp with
// users and that service provider, and Chromium, logging how long each
// takes.
func startSignInRig(t testing.TB,
	users ...SSPUser) (*testServiceProvider, context.Context) {
	t.Helper()
	sp := startTestServiceProvider(t)
	start := time.Now()
	ssp := StartSimpleSAMLphp(t, SSPConfig{
		Users:            users,
		ServiceProviders: []SSPServiceProvider{sp.entry()},
	})
	t.Logf("SimpleSAMLphp answered after %v", time.Since(start))
	sp.trust(t, ssp)
	start = time.Now()
	browser := StartBrowser(t)
	t.Logf("Chromium started in %v", time.Since(start))
	return sp, browser
}

// waitForEnd waits for the page where a sign-in ends and checks it shows
// want.
func waitForEnd(t testing.TB, ctx context.Context, want string) {
	t.Helper()
	page, err := WaitForText(ctx, append([]string{want}, endTexts...)...)
	if err != nil || !strings.Contains(page, want) {
		t.Fatalf("want %q on the page (%v); it shows:\n%s", want, err, page)
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
