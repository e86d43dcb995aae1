package caddymodule_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/arrowgate/arrowgate/internal/e2e"
	"github.com/arrowgate/arrowgate/internal/gatewaytest"
	"github.com/arrowgate/arrowgate/provisioner"
	"github.com/arrowgate/arrowgate/provisioner/sqlite"
)

// The browser journeys walk through the gateway as an employee would: in
// headless Chromium, against SimpleSAMLphp, an identity provider that
// shares no code with ours, with the stand-in Arrow app (arrow_demo_app)
// behind the gateway saying who it was told is signed in. Each journey
// has a private window, its own people and, where seats or invitations
// matter, its own organization, so any one of them can run alone.
//
// The journeys also write screenshots of the gateway's pages, at a
// phone's and a desktop's size, with and without the stylesheet, to
// $ARROW_SCREENSHOTS (relative to the repository root), by default to
// arrowgate-screenshots in the system's temp folder.

// journeyTimeout bounds one journey, sign-ins included.
const journeyTimeout = 60 * time.Second

// journeyCaddyfile is the gateway under test: three organizations on the
// same identity provider, one with room, one full at one seat, one that
// admits invited people only. Its arguments are the site's origin, the
// SQLite file and the identity provider's metadata URL three times.
const journeyCaddyfile = `
%s {
	arrow_sso {
		store sqlite %s
		member_cache_ttl 100ms
		org acme {
			name "Acme Corp"
			plan business
			seats 50
			domains acme.test
			idp_metadata_url %s
			jit on
			admin_contact it@acme.test
		}
		org initech {
			name "Initech"
			plan business
			seats 1
			domains initech.test
			idp_metadata_url %s
			jit on
			buy_seats_url https://billing.example/initech
			admin_contact "Peter in IT (it@initech.test)"
		}
		org umbrella {
			name "Umbrella Health"
			plan omnix
			seats 20
			domains umbrella.test
			idp_metadata_url %s
			jit off
			admin_contact security@umbrella.test
		}
	}
	arrow_demo_app
}
`

// journeyOrgs are the organizations of journeyCaddyfile.
var journeyOrgs = []string{"acme", "initech", "umbrella"}

// The people of the journeys, as SimpleSAMLphp knows them. They sign in
// there with their email as user name.
var (
	ana  = journeyPerson("ana@acme.test", "Ana Alvarez")
	bo   = journeyPerson("bo@acme.test", "Bo Berg")
	dee  = journeyPerson("dee@acme.test", "Dee Okafor")
	cho  = journeyPerson("cho@initech.test", "Cho Lindqvist")
	dev  = journeyPerson("dev@initech.test", "Dev Raman")
	eve  = journeyPerson("eve@umbrella.test", "Eve Moreau")
	crew = []e2e.SSPUser{ana, bo, dee, cho, dev, eve}
)

func journeyPerson(email, name string) e2e.SSPUser {
	return e2e.SSPUser{Username: email, Password: "pass of " + name,
		Email: email, Name: name}
}

// stopTexts are on the pages where a journey can end early: the
// gateway's refusals and outages, and the identity provider's errors.
// Waiting for them too ends a wait that would be in vain.
var stopTexts = []string{
	"Sign-in refused",
	"temporarily unavailable",
	"No free seat",
	"Ask your admin for an invitation",
	"Enter your work email",
	"Incorrect username or password",
	"report this tracking number",
}

// journeyRig is the gateway, the identity provider and the browser the
// journeys share.
type journeyRig struct {
	gw      string // the gateway's origin, http://127.0.0.1:PORT
	db      string // the gateway's SQLite file
	ssp     *e2e.SSP
	browser context.Context
	shots   string // where screenshots go
}

func TestBrowserJourneys(t *testing.T) {
	start := time.Now()
	rig := startJourneyRig(t)
	t.Logf("identity provider, browser and gateway up in %v",
		time.Since(start).Round(time.Millisecond))

	journeys := []struct {
		name string
		run  func(*testing.T, *journeyRig, context.Context)
	}{
		{"sign in lands on the page asked for", journeySignIn},
		{"second visit needs no sign-in and logout ends it",
			journeySecondVisitAndLogout},
		{"full plan shows the out-of-seats page", journeyOutOfSeats},
		{"jit off asks for an invitation until invited",
			journeyInvitation},
		{"login page explains unknown and malformed addresses",
			journeyLoginMessages},
		{"deep link with a query survives the round trip",
			journeyDeepLink},
	}
	for _, j := range journeys {
		t.Run(j.name, func(t *testing.T) {
			began := time.Now()
			j.run(t, rig, rig.window(t))
			t.Logf("journey took %v", time.Since(began).Round(time.Millisecond))
		})
	}
	t.Logf("screenshots in %s", rig.shots)
}

// startJourneyRig picks the gateway's port, starts SimpleSAMLphp with a
// service provider entry for each organization at that port, starts
// Chromium, then the gateway.
func startJourneyRig(t *testing.T) *journeyRig {
	t.Helper()
	gw := fmt.Sprintf("http://127.0.0.1:%d", gatewaytest.FreePort(t))
	sps := make([]e2e.SSPServiceProvider, 0, len(journeyOrgs))
	for _, org := range journeyOrgs {
		saml := gw + "/.arrow/saml/" + org
		sps = append(sps, e2e.SSPServiceProvider{
			EntityID: saml + "/metadata", ACSURL: saml + "/acs"})
	}
	ssp := e2e.StartSimpleSAMLphp(t, e2e.SSPConfig{
		Users: crew, ServiceProviders: sps})
	rig := &journeyRig{
		gw:      gw,
		db:      filepath.Join(t.TempDir(), "arrow.db"),
		ssp:     ssp,
		browser: e2e.StartBrowser(t),
		shots:   screenshotDir(t),
	}
	md := ssp.MetadataURL
	gatewaytest.Load(t, gatewaytest.GlobalOptions(t)+
		fmt.Sprintf(journeyCaddyfile, gw, rig.db, md, md, md))
	return rig
}

// window opens a private window for one journey, bounded by
// journeyTimeout, that saves a screenshot if the journey fails.
func (r *journeyRig) window(t *testing.T) context.Context {
	t.Helper()
	win := e2e.NewPrivateWindow(t, r.browser)

	// a screenshot of a page in the middle of a navigation can wait
	// for ever; the cleanups run last first, so the timer starts when
	// the test ends and stops the screenshot ten seconds later
	shot, stopShot := context.WithCancel(win)
	t.Cleanup(stopShot)
	e2e.ScreenshotOnFailure(t, shot)
	t.Cleanup(func() { time.AfterFunc(10*time.Second, stopShot) })

	ctx, cancel := context.WithTimeout(win, journeyTimeout)
	t.Cleanup(cancel)
	return ctx
}

// journeySignIn: Ana opens a page of Arrow, is asked for her work email,
// is sent to her company's identity provider, signs in there and lands
// on the page she asked for, signed in as herself.
func journeySignIn(t *testing.T, r *journeyRig, tab context.Context) {
	open(t, tab, r.gw+"/reports/q3")
	loginURL := waitFor(t, tab, "Enter your work email")
	if !strings.HasPrefix(loginURL, r.gw+"/.arrow/login?") {
		t.Fatalf("a visit without a session went to %s, want the "+
			"gateway's login page", loginURL)
	}
	r.screenshots(t, tab, "login")

	r.signIn(t, tab, ana)
	waitFor(t, tab, "Signed in as Ana Alvarez")
	checkArrived(t, tab, r.gw+"/reports/q3")
	checkIdentity(t, tab, ana.Email, "acme", "/reports/q3")
}

// journeySecondVisitAndLogout: once signed in, Bo opens another page
// without seeing a login page; after he signs out, the next visit asks
// for his email again.
func journeySecondVisitAndLogout(t *testing.T, r *journeyRig,
	tab context.Context) {
	open(t, tab, r.gw+"/")
	waitFor(t, tab, "Enter your work email")
	r.signIn(t, tab, bo)
	waitFor(t, tab, "Signed in as Bo Berg")

	open(t, tab, r.gw+"/vault")
	waitFor(t, tab, "Signed in as Bo Berg")
	checkArrived(t, tab, r.gw+"/vault")
	checkIdentity(t, tab, bo.Email, "acme", "/vault")

	clickAway(t, tab, "form button[type=submit]")
	waitFor(t, tab, "You are signed out of Arrow.")

	open(t, tab, r.gw+"/vault")
	next := waitFor(t, tab, "Enter your work email")
	if !strings.HasPrefix(next, r.gw+"/.arrow/login?") {
		t.Fatalf("after signing out a visit went to %s, want the "+
			"login page", next)
	}
}

// journeyOutOfSeats: Initech's plan has one seat and Cho takes it. Dev,
// new at Initech, signs in at the identity provider in another browser
// and is told the plan is full, whom to ask, and where seats are bought.
func journeyOutOfSeats(t *testing.T, r *journeyRig, tab context.Context) {
	open(t, tab, r.gw+"/")
	waitFor(t, tab, "Enter your work email")
	r.signIn(t, tab, cho)
	waitFor(t, tab, "Signed in as Cho Lindqvist")

	other := r.window(t)
	open(t, other, r.gw+"/")
	waitFor(t, other, "Enter your work email")
	r.signIn(t, other, dev)
	waitFor(t, other, "No free seat in Initech's plan")
	checkTexts(t, other,
		"Initech's Arrow plan has no free seat",
		"ask Peter in IT (it@initech.test)",
		"Administrators of Initech: Buy more seats",
		"Reference: ARW-")
	if got := linkTarget(t, other, "Buy more seats"); got !=
		"https://billing.example/initech" {
		t.Errorf("the Buy more seats link goes to %q", got)
	}
	r.screenshots(t, other, "out-of-seats")

	if got := r.members(t, "initech"); !slices.Equal(got,
		[]string{cho.Email}) {
		t.Errorf("Initech's members are %v, want only Cho", got)
	}
}

// journeyInvitation: Umbrella admits invited people only. Eve, not yet
// invited, is told to ask for an invitation; once the administrator
// invites her, she signs in again and gets in.
func journeyInvitation(t *testing.T, r *journeyRig, tab context.Context) {
	open(t, tab, r.gw+"/")
	waitFor(t, tab, "Enter your work email")
	r.signIn(t, tab, eve)
	waitFor(t, tab, "Ask your admin for an invitation")
	checkTexts(t, tab,
		"You are not yet a member of Umbrella Health's Arrow plan",
		"Ask security@umbrella.test for an invitation",
		"Reference: ARW-")
	r.screenshots(t, tab, "not-invited")
	if got := r.members(t, "umbrella"); len(got) != 0 {
		t.Fatalf("not invited, yet Umbrella's members are %v", got)
	}

	r.invite(t, "umbrella", eve.Email)
	clickAway(t, tab, "a[href$='/login']")
	waitFor(t, tab, "Enter your work email")
	typeEmail(t, tab, eve.Email)
	// her session at the identity provider is still alive: no password
	waitFor(t, tab, "Signed in as Eve Moreau")
	checkIdentity(t, tab, eve.Email, "umbrella", "/")
}

// journeyLoginMessages: a typo in the address keeps the person on the
// login page, with a message that says what to fix and their typing
// kept. What the browser itself can tell is not an address, it holds
// back before the gateway sees it.
func journeyLoginMessages(t *testing.T, r *journeyRig,
	tab context.Context) {
	cases := []struct {
		typed, want string
	}{
		{"someone@unknown.test",
			"No Arrow plan here signs in with SSO for unknown.test"},
		{"ana@acme",
			"That does not look like an email address"},
		{"ana@@acme.test", ""},
		{"ana.acme.test", ""},
	}
	for _, c := range cases {
		open(t, tab, r.gw+"/.arrow/login")
		waitFor(t, tab, "Enter your work email")
		fillEmail(t, tab, c.typed)
		if c.want == "" {
			click(t, tab, "form button[type=submit]")
			checkHeldBack(t, tab, c.typed)
			continue
		}
		clickAway(t, tab, "form button[type=submit]")
		waitFor(t, tab, c.want)
		if got := fieldValue(t, tab, "#email"); got != c.typed {
			t.Errorf("%q: the field holds %q after the message", c.typed,
				got)
		}
	}
}

// journeyDeepLink: Dee follows a link to one item of the vault, with a
// query string, and after signing in sees exactly that item.
func journeyDeepLink(t *testing.T, r *journeyRig, tab context.Context) {
	const deep = "/vault/items?id=42&tab=notes"
	open(t, tab, r.gw+deep)
	waitFor(t, tab, "Enter your work email")
	r.signIn(t, tab, dee)
	waitFor(t, tab, "Signed in as Dee Okafor")
	checkArrived(t, tab, r.gw+deep)
	checkIdentity(t, tab, dee.Email, "acme", deep)
}

// signIn types the person's email on the gateway's login page, checks
// the browser is sent to the identity provider, and signs in there.
func (r *journeyRig) signIn(t *testing.T, tab context.Context,
	p e2e.SSPUser) {
	t.Helper()
	typeEmail(t, tab, p.Email)
	err := chromedp.Do(tab,
		chromedp.WaitVisible(chromedp.CSS("#username")))
	if err != nil {
		t.Fatalf("%s: no login form at the identity provider (%v); the "+
			"page shows:\n%s", p.Email, err, pageText(tab))
	}
	if at := location(t, tab); !strings.HasPrefix(at, r.ssp.BaseURL) {
		t.Fatalf("%s: the login form is at %s, not at the identity "+
			"provider %s", p.Email, at, r.ssp.BaseURL)
	}
	err = chromedp.Do(tab,
		chromedp.SendKeys(chromedp.CSS("#username"), p.Username),
		chromedp.SendKeys(chromedp.CSS("#password"), p.Password),
	)
	if err != nil {
		t.Fatalf("%s: filling the identity provider's form: %v",
			p.Email, err)
	}
	clickAway(t, tab, "#submit_button")
}

// typeEmail types into the gateway's login form and presses Continue,
// then waits for the next page.
func typeEmail(t *testing.T, tab context.Context, email string) {
	t.Helper()
	fillEmail(t, tab, email)
	clickAway(t, tab, "form button[type=submit]")
}

// fillEmail types into the gateway's login form.
func fillEmail(t *testing.T, tab context.Context, email string) {
	t.Helper()
	err := chromedp.Do(tab,
		chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), email),
	)
	if err != nil {
		t.Fatalf("typing %q on the login page: %v; the page shows:\n%s",
			email, err, pageText(tab))
	}
}

// clickAway clicks sel, a button or link that leaves the page, and waits
// until the browser has left it, so that what is read next is the next
// page and not this one.
func clickAway(t *testing.T, tab context.Context, sel string) {
	t.Helper()
	const marked = `window.arrowJourneyLeft === false`
	_, err := chromedp.Run(tab, chromedp.Evaluate[bool](
		`window.arrowJourneyLeft = false; true`))
	if err != nil {
		t.Fatalf("marking the page: %v", err)
	}
	click(t, tab, sel)
	for {
		// during the navigation there may be no page to ask
		still, err := chromedp.Run(tab, chromedp.Evaluate[bool](marked))
		if err == nil && !still {
			return
		}
		select {
		case <-tab.Done():
			t.Fatalf("clicked %s, but the page did not change: %v", sel,
				tab.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// checkHeldBack checks that the browser refused to send the login form
// with typed, telling the person why, and that the page is unchanged.
func checkHeldBack(t *testing.T, tab context.Context, typed string) {
	t.Helper()
	why, err := chromedp.Run(tab, chromedp.Evaluate[string](
		`document.getElementById("email").validationMessage`))
	if err != nil || why == "" {
		t.Errorf("%q: the browser let the form go (%v)", typed, err)
		return
	}
	if text := pageText(tab); strings.Contains(text, "does not look") ||
		!strings.Contains(text, "Enter your work email") {
		t.Errorf("%q: the page changed although the browser said %q:\n%s",
			typed, why, text)
	}
}

// open navigates the tab to url.
func open(t *testing.T, tab context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(tab, chromedp.Navigate(url)); err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
}

// click clicks the first element sel matches.
func click(t *testing.T, tab context.Context, sel string) {
	t.Helper()
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(sel))); err != nil {
		t.Fatalf("clicking %s: %v; the page shows:\n%s", sel, err,
			pageText(tab))
	}
}

// waitFor waits for want on the page, or a page where a journey ends,
// fails unless it is want, and returns the URL of the page.
func waitFor(t *testing.T, tab context.Context, want string) string {
	t.Helper()
	text, err := e2e.WaitForText(tab, append([]string{want},
		stopTexts...)...)
	if err != nil || !strings.Contains(text, want) {
		t.Fatalf("want %q on the page (%v); at %s it shows:\n%s", want,
			err, location(t, tab), text)
	}
	return location(t, tab)
}

// checkTexts checks that the page shows each of wants.
func checkTexts(t *testing.T, tab context.Context, wants ...string) {
	t.Helper()
	text := pageText(tab)
	flat := strings.Join(strings.Fields(text), " ")
	for _, w := range wants {
		if !strings.Contains(flat, w) {
			t.Errorf("the page lacks %q; it shows:\n%s", w, text)
		}
	}
}

// checkArrived checks the address bar shows want.
func checkArrived(t *testing.T, tab context.Context, want string) {
	t.Helper()
	if got := location(t, tab); got != want {
		t.Errorf("the browser is at %s, want %s", got, want)
	}
}

// checkIdentity checks who the app behind the gateway says is signed in,
// and which path it was asked for.
func checkIdentity(t *testing.T, tab context.Context, email, org,
	path string) {
	t.Helper()
	shown, err := chromedp.Run(tab, chromedp.Evaluate[map[string]string](
		`Object.fromEntries([...document.querySelectorAll("dt")].map(
			dt => [dt.textContent, dt.nextElementSibling.textContent]))`))
	if err != nil {
		t.Fatalf("reading the app's page: %v", err)
	}
	want := map[string]string{"Email": email, "Organization": org,
		"Path": path}
	for k, v := range want {
		if shown[k] != v {
			t.Errorf("the app shows %s %q, want %q", k, shown[k], v)
		}
	}
	if shown["Member ID"] == "" {
		t.Errorf("the app shows no member ID: %v", shown)
	}
}

// linkTarget returns where the link with the given text goes, or "".
func linkTarget(t *testing.T, tab context.Context, text string) string {
	t.Helper()
	href, err := chromedp.Run(tab, chromedp.Evaluate[string](fmt.Sprintf(
		`([...document.querySelectorAll("a")].find(
			a => a.textContent.trim() === %q) || {href: ""}).href`, text)))
	if err != nil {
		t.Fatalf("reading the link %q: %v", text, err)
	}
	return href
}

// fieldValue returns what the input sel holds.
func fieldValue(t *testing.T, tab context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("reading %s: %v", sel, err)
	}
	return v
}

// location returns the URL in the tab's address bar.
func location(t *testing.T, tab context.Context) string {
	t.Helper()
	url, err := chromedp.Run(tab, chromedp.Location())
	if err != nil {
		t.Fatalf("reading the address: %v", err)
	}
	return url
}

// pageText is the visible text of the page, or why it cannot be read.
func pageText(tab context.Context) string {
	text, err := e2e.PageText(tab)
	if err != nil {
		return fmt.Sprintf("(no text: %v)", err)
	}
	return text
}

// members lists an organization's members, as the gateway's store has
// them.
func (r *journeyRig) members(t *testing.T, org string) []string {
	t.Helper()
	st := r.openStore(t)
	ms, err := st.Members(context.Background(), org)
	if err != nil {
		t.Fatalf("listing %s's members: %v", org, err)
	}
	emails := make([]string, 0, len(ms))
	for _, m := range ms {
		emails = append(emails, m.Email)
	}
	return emails
}

// invite records an invitation, as an administrator of org would.
func (r *journeyRig) invite(t *testing.T, org, email string) {
	t.Helper()
	st := r.openStore(t)
	err := st.Invite(context.Background(), provisioner.Invitation{
		OrgID: org, Email: email}, 20)
	if err != nil {
		t.Fatalf("inviting %s to %s: %v", email, org, err)
	}
}

// openStore opens the gateway's SQLite file beside the gateway, closed
// when the test ends.
func (r *journeyRig) openStore(t *testing.T) provisioner.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), r.db)
	if err != nil {
		t.Fatalf("opening the gateway's store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
