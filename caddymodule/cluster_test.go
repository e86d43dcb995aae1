package caddymodule_test

// The tests in this file run three gateway instances on one PostgreSQL
// schema behind a load balancer, all in this process: three sites of
// one Caddy configuration, each with an arrow_sso handler of its own.
// Every handler gets its own connection string (application_name=gwN),
// so that Caddy does not share one open store among them: each instance
// has its own pool, its own LISTEN connection and its own caches, as
// separate processes would. The load balancer has no sticky sessions,
// so the steps of one sign-in land on different instances.

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/arrowgate/arrowgate/internal/faultproxy"
	"github.com/arrowgate/arrowgate/internal/gatewaytest"
)

// backendHeader makes the load balancer send a request to the instance
// it names (0, 1, 2...) instead of the next one in turn.
const backendHeader = "X-Test-Backend"

// clientHeader is the address a visitor stands for. Every visitor of
// the test connects from 127.0.0.1; the load balancer passes this on in
// X-Forwarded-For instead, as a real one passes on each client's, so
// that the instances tell the people apart (their sign-in rate limit
// counts attempts per client address).
const clientHeader = "X-Test-Client"

// clusterDSN returns the database of the cluster tests. Without one,
// the test fails under CI=true and is skipped, loudly, elsewhere.
func clusterDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("ARROW_TEST_POSTGRES")
	if dsn == "" {
		gatewaytest.RequireCI(t, "ARROW_TEST_POSTGRES is not set, so "+
			"several gateway instances on one PostgreSQL are not tested")
	}
	return dsn
}

// clusterSchema returns a schema no other run uses, dropped with
// everything in it when the test ends.
func clusterSchema(t testing.TB, dsn string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "arrowcluster_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		dbExec(t, dsn, "DROP SCHEMA IF EXISTS "+
			pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})
	return schema
}

// dbExec runs one statement on a connection of its own.
func dbExec(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to the test database: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("running %q: %v", sql, err)
	}
}

// dbStrings runs a query returning one text column, in the schema.
func dbStrings(t testing.TB, dsn, schema, sql string,
	args ...any) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to the test database: %v", err)
	}
	defer conn.Close(ctx)
	path := "SET search_path TO " + pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, path); err != nil {
		t.Fatalf("choosing schema: %v", err)
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("running %q: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("reading %q: %v", sql, err)
	}
	return out
}

// dbCount counts the rows of a table of the schema.
func dbCount(t testing.TB, dsn, schema, table string) int {
	t.Helper()
	n := dbStrings(t, dsn, schema, "SELECT count(*)::text FROM "+
		pgx.Identifier{table}.Sanitize())
	v, _ := strconv.Atoi(n[0])
	return v
}

// instanceDSN returns dsn with an application name of instance i, so
// that each instance opens a store of its own.
func instanceDSN(t testing.TB, dsn string, i int) string {
	t.Helper()
	name := fmt.Sprintf("gw%d", i+1)
	if !strings.Contains(dsn, "://") {
		return dsn + " application_name=" + name
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("ARROW_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// balancer is a round-robin load balancer without sticky sessions. It
// keeps the Host header, so every instance sees the origin the browser
// used, from which the SAML entity ID and ACS URL are built.
type balancer struct {
	*httptest.Server
	backends []*url.URL
	turn     atomic.Uint64
}

func startBalancer(t testing.TB, backends []string) *balancer {
	t.Helper()
	lb := &balancer{}
	for _, raw := range backends {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("backend %q: %v", raw, err)
		}
		lb.backends = append(lb.backends, u)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	lb.Server = httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:   lb.rewrite,
		Transport: tr,
	})
	t.Cleanup(func() {
		lb.Close()
		tr.CloseIdleConnections()
	})
	return lb
}

func (lb *balancer) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(lb.pick(pr.In))
	pr.Out.Host = pr.In.Host
	pr.Out.Header.Del(backendHeader)
	if client := pr.In.Header.Get(clientHeader); client != "" {
		pr.Out.Header.Set("X-Forwarded-For", client)
		pr.Out.Header.Del(clientHeader)
	}
}

// pick returns the backend the request names, or the next in turn.
func (lb *balancer) pick(r *http.Request) *url.URL {
	i, err := strconv.Atoi(r.Header.Get(backendHeader))
	if err == nil && i >= 0 && i < len(lb.backends) {
		return lb.backends[i]
	}
	n := lb.turn.Add(1) - 1
	return lb.backends[n%uint64(len(lb.backends))]
}

// cluster is gateway instances on one store behind a balancer, guarding
// the echoing upstream, for acme's identity provider.
type cluster struct {
	lb *balancer
	n  int // instances
}

// clusterOptions say how many instances to start, on which store, and
// for whom.
type clusterOptions struct {
	instances int
	seats     int
	people    []string // the identity provider's users
	admin     string   // the admin endpoint's address; empty means off
	quiet     bool     // discard Caddy's logs, for benchmarks

	// store returns the store directive of instance i.
	store func(i int) string
}

// postgresStore gives every instance a store on dsn and schema.
func postgresStore(t testing.TB, dsn, schema string) func(int) string {
	return func(i int) string {
		return fmt.Sprintf("store postgres %q {\n\t\t\tschema %s\n"+
			"\t\t\tmax_conns 8\n\t\t}", instanceDSN(t, dsn, i), schema)
	}
}

// clusterSite is one instance's site: its origin, store, seats, the
// identity provider's metadata URL and the upstream. Caches are kept an
// hour, so only a notification can make an instance forget a member.
const clusterSite = `
%s {
	arrow_sso {
		%s
		member_cache_ttl 1h
		org acme {
			name "Acme Corp"
			plan business
			seats %d
			domains acme.test
			idp_metadata_url %s
			jit on
			admin_contact it@acme.test
		}
	}
	reverse_proxy %s
}
`

func startCluster(t testing.TB, o clusterOptions) *cluster {
	t.Helper()
	origins := make([]string, o.instances)
	for i := range origins {
		origins[i] = fmt.Sprintf("http://127.0.0.1:%d",
			gatewaytest.FreePort(t))
	}
	lb := startBalancer(t, origins)
	idp := gatewaytest.StartIDP(t, o.people,
		lb.URL+"/.arrow/saml/acme/metadata")
	up := gatewaytest.StartUpstream(t)

	config := gatewaytest.GlobalOptions(t)
	if o.admin != "" {
		config = strings.Replace(config, "admin off", "admin "+o.admin, 1)
	}
	// the instances take the client address from the load balancer
	extra := "\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}\n"
	if o.quiet {
		extra += "\tlog {\n\t\toutput discard\n\t}\n"
	}
	config = strings.TrimSuffix(config, "}\n") + extra + "}\n"
	for i, origin := range origins {
		config += fmt.Sprintf(clusterSite, origin, o.store(i), o.seats,
			idp.MetadataURL(), up.URL)
	}
	gatewaytest.Load(t, config)
	return &cluster{lb: lb, n: o.instances}
}

// acmePeople returns n email addresses at acme.test.
func acmePeople(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("person%04d@acme.test", i+1)
	}
	return out
}

// sharedTransport lets the test's many browsers reuse connections.
func sharedTransport(t testing.TB) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// visitor is a browser for goroutines: it reports errors instead of
// failing the test, and counts every answer of 500 or more.
type visitor struct {
	client       *http.Client
	lb           string
	addr         string // the client address it stands for
	serverErrors *atomic.Int64
}

// visitors numbers the visitors, to give each an address of its own.
var visitors atomic.Uint32

func newVisitor(lb string, tr http.RoundTripper,
	serverErrors *atomic.Int64) *visitor {
	jar, _ := cookiejar.New(nil)
	n := visitors.Add(1)
	return &visitor{
		addr: fmt.Sprintf("10.%d.%d.%d", n>>16&0xff, n>>8&0xff, n&0xff),
		client: &http.Client{
			Jar:       jar,
			Transport: tr,
			Timeout:   time.Minute,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		lb:           lb,
		serverErrors: serverErrors,
	}
}

// reply is an answer with its body read.
type reply struct {
	*http.Response
	body string
}

// do sends req as a browser would and reads the answer.
func (v *visitor) do(req *http.Request) (reply, error) {
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/html,*/*;q=0.8")
	}
	req.Header.Set(clientHeader, v.addr)
	resp, err := v.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("reading %s: %w", req.URL, err)
	}
	if resp.StatusCode >= 500 && v.serverErrors != nil {
		v.serverErrors.Add(1)
	}
	return reply{resp, string(body)}, nil
}

func (v *visitor) get(u string) (reply, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return reply{}, err
	}
	return v.do(req)
}

func (v *visitor) post(u string, form url.Values,
	accept string) (reply, error) {
	req, err := http.NewRequest(http.MethodPost, u,
		strings.NewReader(form.Encode()))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", accept)
	return v.do(req)
}

// wantStatus checks an answer's status, for a step named what.
func wantStatus(p reply, status int, what string) error {
	if p.StatusCode == status {
		return nil
	}
	return fmt.Errorf("%s: want %d, got %d: %.300s", what, status,
		p.StatusCode, p.body)
}

// redirectTarget resolves a redirect's Location against its request.
func redirectTarget(p reply) (string, error) {
	loc, err := p.Location()
	if err != nil {
		return "", fmt.Errorf("%s answered %d without a Location",
			p.Request.URL, p.StatusCode)
	}
	return loc.String(), nil
}

// firstForm returns the action of a page's first form, resolved against
// the page's URL, and the values of its inputs. It reads the pages of
// the gateway and of the identity provider, not HTML at large.
func firstForm(p reply) (string, url.Values, error) {
	_, rest, opened := strings.Cut(p.body, "<form")
	form, _, closed := strings.Cut(rest, "</form>")
	if !opened || !closed {
		return "", nil, fmt.Errorf("%s: no form on the page: %.300s",
			p.Request.URL, p.body)
	}
	tag, _, _ := strings.Cut(form, ">")
	action, err := p.Request.URL.Parse(attribute(tag, "action"))
	if err != nil {
		return "", nil, fmt.Errorf("form action: %w", err)
	}
	vals := url.Values{}
	for _, in := range strings.Split(form, "<input")[1:] {
		in, _, _ = strings.Cut(in, ">")
		if name := attribute(in, "name"); name != "" {
			vals.Set(name, attribute(in, "value"))
		}
	}
	return action.String(), vals, nil
}

// attribute returns the value of a tag's double-quoted attribute, or "".
func attribute(tag, name string) string {
	for i := 0; ; {
		j := strings.Index(tag[i:], name+`="`)
		if j < 0 {
			return ""
		}
		i += j
		if i > 0 && strings.ContainsRune(" \t\n", rune(tag[i-1])) {
			v, _, _ := strings.Cut(tag[i+len(name)+2:], `"`)
			return html.UnescapeString(v)
		}
		i += len(name)
	}
}

// toACS goes from the protected page to the identity provider's
// answer, which it returns unposted with the ACS URL.
func (v *visitor) toACS(email string) (string, url.Values, error) {
	p, err := v.get(v.lb + "/")
	if err == nil {
		err = wantStatus(p, http.StatusFound, "the protected page")
	}
	if err != nil {
		return "", nil, err
	}
	login, err := redirectTarget(p)
	if err == nil {
		p, err = v.get(login)
	}
	if err == nil {
		err = wantStatus(p, http.StatusOK, "the login page")
	}
	if err != nil {
		return "", nil, err
	}
	return v.throughIDP(p, email)
}

// throughIDP types email on the login page p and signs in at the
// identity provider.
func (v *visitor) throughIDP(p reply, email string) (string, url.Values,
	error) {
	action, form, err := firstForm(p)
	if err != nil {
		return "", nil, err
	}
	form.Set("email", email)
	p, err = v.post(action, form, "")
	if err == nil {
		err = wantStatus(p, http.StatusFound, "posting the email")
	}
	if err != nil {
		return "", nil, err
	}
	idp, err := redirectTarget(p)
	if err == nil {
		action, form, err = idpLoginForm(idp, email)
	}
	if err == nil {
		p, err = v.post(action, form, "")
	}
	if err == nil {
		err = wantStatus(p, http.StatusOK, "signing in at the IdP")
	}
	if err != nil {
		return "", nil, err
	}
	return firstForm(p)
}

// idpLoginForm returns what the identity provider's login page posts
// for the AuthnRequest in redirect (HTTP-Redirect binding): the person's
// credentials, the request inflated, and the RelayState. The page
// itself lists every demo account; rendering it with 500 of them was
// most of the load test's time under the race detector, and it is the
// identity provider's work, not the gateway's, so visitors skip it.
func idpLoginForm(redirect, email string) (string, url.Values, error) {
	u, err := url.Parse(redirect)
	if err != nil {
		return "", nil, fmt.Errorf("identity provider URL: %w", err)
	}
	q := u.Query()
	deflated, err := base64.StdEncoding.DecodeString(q.Get("SAMLRequest"))
	if err != nil {
		return "", nil, fmt.Errorf("AuthnRequest: %w", err)
	}
	raw, err := io.ReadAll(flate.NewReader(bytes.NewReader(deflated)))
	if err != nil {
		return "", nil, fmt.Errorf("inflating AuthnRequest: %w", err)
	}
	u.RawQuery = ""
	return u.String(), url.Values{
		"user":        {email},
		"password":    {gatewaytest.Password},
		"SAMLRequest": {base64.StdEncoding.EncodeToString(raw)},
		"RelayState":  {q.Get("RelayState")},
	}, nil
}

// outcome is how one first sign-in ended.
type outcome string

const (
	signedIn   outcome = "signed in"
	outOfSeats outcome = "out of seats"
)

// signIn goes the whole way for email.
func (v *visitor) signIn(email string) (outcome, error) {
	acs, form, err := v.toACS(email)
	if err != nil {
		return "", err
	}
	return v.finish(acs, form, email)
}

// finish posts the identity provider's answer for email to the ACS, as
// an API client would so that a refusal comes with its code, and on
// success loads the page it was sent back to.
func (v *visitor) finish(acs string, form url.Values,
	email string) (outcome, error) {
	p, err := v.post(acs, form, "application/json")
	if err != nil {
		return "", err
	}
	switch p.StatusCode {
	case http.StatusSeeOther:
		return signedIn, v.checkSignedIn(p, email)
	case http.StatusForbidden:
		var prob struct{ Code string }
		_ = json.Unmarshal([]byte(p.body), &prob)
		if prob.Code != "out_of_seats" {
			return "", fmt.Errorf("ACS refused %s: %.300s", email, p.body)
		}
		if sessionCookie(p) != nil {
			return "", fmt.Errorf("out of seats, yet a session cookie")
		}
		return outOfSeats, nil
	}
	return "", wantStatus(p, http.StatusSeeOther, "the ACS")
}

// checkSignedIn follows the ACS's redirect and checks the upstream is
// told who signed in.
func (v *visitor) checkSignedIn(acs reply, email string) error {
	if sessionCookie(acs) == nil {
		return errors.New("signed in without a session cookie")
	}
	back, err := redirectTarget(acs)
	if err != nil {
		return err
	}
	p, err := v.get(back)
	if err == nil {
		err = wantStatus(p, http.StatusOK, "the page after sign-in")
	}
	if err != nil {
		return err
	}
	var seen gatewaytest.Seen
	_ = json.Unmarshal([]byte(p.body), &seen)
	if got := seen.Headers["X-Arrow-Email"]; got != email {
		return fmt.Errorf("upstream told %q after %s signed in", got, email)
	}
	return nil
}

// sessionCookie returns the session cookie an answer sets, or nil.
func sessionCookie(p reply) *http.Cookie {
	for _, c := range p.Cookies() {
		if c.Name == "arrow_session" && c.Value != "" {
			return c
		}
	}
	return nil
}

// viaInstance fetches path from instance i as the visitor.
func (v *visitor) viaInstance(i int, path string) (reply, error) {
	req, err := http.NewRequest(http.MethodGet, v.lb+path, nil)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set(backendHeader, strconv.Itoa(i))
	return v.do(req)
}

// signInEveryone signs every person in through the cluster, a number
// of them at once, and tallies the outcomes.
func signInEveryone(c *cluster, tr http.RoundTripper, everyone []string,
	workers int, serverErrors *atomic.Int64) (map[outcome][]string,
	[]error) {
	return inCrowd(everyone, workers, func(email string) (outcome, error) {
		return newVisitor(c.lb.URL, tr, serverErrors).signIn(email)
	})
}

// inCrowd runs fn for every person, a number of them at once, and
// tallies the outcomes.
func inCrowd(everyone []string, workers int,
	fn func(email string) (outcome, error)) (map[outcome][]string,
	[]error) {
	jobs := make(chan string)
	var (
		mu   sync.Mutex
		got  = map[outcome][]string{}
		errs []error
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for email := range jobs {
				o, err := fn(email)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", email, err))
				} else {
					got[o] = append(got[o], email)
				}
				mu.Unlock()
			}
		})
	}
	for _, email := range everyone {
		jobs <- email
	}
	close(jobs)
	wg.Wait()
	return got, errs
}

// TestClusterSeatsAreNeverOversold signs 500 people in, 24 at a time,
// spread over three instances, for an organization with 100 seats.
//
// Seats are taken one at a time under the organization's row lock, and
// every store call has 10s. Under the race detector on two busy cores a
// transaction holds the lock for 100ms and more, so 50 people at a time
// once queued past that limit (one 503 in three runs); 24 at a time
// keep the race as tight and the queue short.
func TestClusterSeatsAreNeverOversold(t *testing.T) {
	const seats, crowd, workers = 100, 500, 24
	dsn := clusterDSN(t)
	schema := clusterSchema(t, dsn)
	everyone := acmePeople(crowd)
	c := startCluster(t, clusterOptions{
		instances: 3, seats: seats, people: everyone,
		store: postgresStore(t, dsn, schema),
	})

	var serverErrors atomic.Int64
	start := time.Now()
	got, errs := signInEveryone(c, sharedTransport(t), everyone, workers,
		&serverErrors)
	took := time.Since(start)
	t.Logf("%d first sign-ins, %d at a time, over %d instances: %v "+
		"(%.1f sign-ins/s)", crowd, workers, c.n, took.Round(time.Millisecond),
		float64(crowd)/took.Seconds())

	for i, err := range errs {
		if i == 5 {
			t.Errorf("... and %d more", len(errs)-5)
			break
		}
		t.Error(err)
	}
	if n := serverErrors.Load(); n != 0 {
		t.Errorf("%d answers of 500 or more", n)
	}
	if len(got[signedIn]) != seats || len(got[outOfSeats]) != crowd-seats {
		t.Errorf("%d signed in and %d out of seats; want %d and %d",
			len(got[signedIn]), len(got[outOfSeats]), seats, crowd-seats)
	}

	members := dbStrings(t, dsn, schema,
		"SELECT email FROM members WHERE org_id = 'acme'")
	slices.Sort(members)
	slices.Sort(got[signedIn])
	if !slices.Equal(members, got[signedIn]) {
		t.Errorf("%d members in the database, not the %d who were "+
			"signed in", len(members), len(got[signedIn]))
	}
	if n := dbCount(t, dsn, schema, "sessions"); n != len(got[signedIn]) {
		t.Errorf("%d sessions for %d people signed in", n,
			len(got[signedIn]))
	}
}

// TestClusterSameResponseTwiceGivesOneSession posts one identity
// provider answer to two instances, with the tracking cookie that goes
// with it: one after the other, and at the same moment.
func TestClusterSameResponseTwiceGivesOneSession(t *testing.T) {
	dsn := clusterDSN(t)
	schema := clusterSchema(t, dsn)
	c := startCluster(t, clusterOptions{
		instances: 3, seats: 5,
		people: []string{"alice@acme.test", "bob@acme.test"},
		store:  postgresStore(t, dsn, schema),
	})
	tr := sharedTransport(t)

	cases := []struct {
		name     string
		email    string
		together bool
	}{
		{"one after the other", "alice@acme.test", false},
		{"at the same moment", "bob@acme.test", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			first := newVisitor(c.lb.URL, tr, nil)
			acs, form, err := first.toACS(tc.email)
			if err != nil {
				t.Fatal(err)
			}
			// a second browser holding the same tracking cookie
			second := newVisitor(c.lb.URL, tr, nil)
			samlPath, _ := url.Parse(c.lb.URL + "/.arrow/saml/")
			second.client.Jar.SetCookies(samlPath,
				first.client.Jar.Cookies(samlPath))

			answers := postTwice(t, acs, form, tc.together,
				first, second)
			winner := checkOneSession(t, answers, tc.together)

			n := dbStrings(t, dsn, schema,
				"SELECT count(*)::text FROM sessions WHERE email = $1",
				tc.email)
			if n[0] != "1" {
				t.Fatalf("%s sessions in the database, want 1", n[0])
			}
			// the session is good on the instance that saw neither post
			v := []*visitor{first, second}[winner]
			p, err := v.viaInstance(2, "/")
			if err != nil || p.StatusCode != http.StatusOK ||
				!strings.Contains(p.body, tc.email) {
				t.Fatalf("the session on the third instance: %v %d %s",
					err, p.StatusCode, p.body)
			}
		})
	}
}

// postTwice posts the same ACS form from the first visitor to instance
// 0 and from the second to instance 1, in that order or together.
func postTwice(t *testing.T, acs string, form url.Values, together bool,
	vs ...*visitor) []reply {
	t.Helper()
	answers := make([]reply, len(vs))
	errs := make([]error, len(vs))
	post := func(i int) {
		req, _ := http.NewRequest(http.MethodPost, acs,
			strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(backendHeader, strconv.Itoa(i))
		answers[i], errs[i] = vs[i].do(req)
	}
	var wg sync.WaitGroup
	for i := range vs {
		if together {
			wg.Go(func() { post(i) })
		} else {
			post(i)
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return answers
}

// checkOneSession checks that exactly one answer signed in and the
// other was refused without a session, and returns the index of the
// one that signed in. In order, it must be the first.
func checkOneSession(t *testing.T, answers []reply, together bool) int {
	t.Helper()
	winner := -1
	for i, p := range answers {
		switch {
		case p.StatusCode == http.StatusSeeOther && sessionCookie(p) != nil:
			if winner >= 0 {
				t.Fatalf("both posts signed in")
			}
			winner = i
		case p.StatusCode == http.StatusForbidden && sessionCookie(p) == nil:
		default:
			t.Fatalf("post %d: want 303 with a session or 403 without, "+
				"got %d: %.300s", i+1, p.StatusCode, p.body)
		}
	}
	if winner < 0 {
		t.Fatalf("neither post signed in")
	}
	if !together && winner != 0 {
		t.Fatalf("the first post was refused and the replay accepted")
	}
	return winner
}

// TestClusterRemovalReachesEveryInstance removes a member through the
// admin API, which one of the instances serves, and times how long each
// instance still lets the removed member in. Caches are kept an hour,
// so only the notification through PostgreSQL can explain a refusal.
func TestClusterRemovalReachesEveryInstance(t *testing.T) {
	dsn := clusterDSN(t)
	schema := clusterSchema(t, dsn)
	admin := fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))
	c := startCluster(t, clusterOptions{
		instances: 3, seats: 5, people: []string{"alice@acme.test"},
		store: postgresStore(t, dsn, schema), admin: admin,
	})
	alice := newVisitor(c.lb.URL, sharedTransport(t), nil)
	if _, err := alice.signIn("alice@acme.test"); err != nil {
		t.Fatal(err)
	}
	// every instance now holds alice's session and membership in memory
	for i := range c.n {
		if p, err := alice.viaInstance(i, "/"); err != nil ||
			p.StatusCode != http.StatusOK {
			t.Fatalf("instance %d before the removal: %v %d", i+1, err,
				p.StatusCode)
		}
	}

	start := time.Now()
	removeMember(t, admin, "alice@acme.test")
	removed := time.Since(start)

	latency := make([]time.Duration, c.n)
	errs := make([]error, c.n)
	var wg sync.WaitGroup
	for i := range c.n {
		wg.Go(func() {
			latency[i], errs[i] = untilRefused(alice, i, start,
				3*time.Second)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("removal answered in %v; alice refused by each instance "+
		"after %v (from the DELETE being sent)",
		removed.Round(time.Microsecond), latency)
	for i, d := range latency {
		if d > time.Second {
			t.Errorf("instance %d let the removed member in for %v",
				i+1, d)
		}
	}
	if n := dbCount(t, dsn, schema, "members"); n != 0 {
		t.Errorf("%d members after the removal", n)
	}
}

// removeMember removes email from acme through the admin API.
func removeMember(t *testing.T, admin, email string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete,
		"http://"+admin+"/arrowgate/orgs/acme/members/"+email, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("removing %s: %v", email, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("removing %s: %d %s", email, resp.StatusCode, body)
	}
}

// untilRefused asks instance i for a page every few milliseconds until
// it sends the visitor to the login page, and returns how long after
// since that was.
func untilRefused(v *visitor, i int, since time.Time,
	limit time.Duration) (time.Duration, error) {
	for time.Since(since) < limit {
		p, err := v.viaInstance(i, "/")
		switch {
		case err != nil:
			return 0, err
		case p.StatusCode == http.StatusFound:
			return time.Since(since), nil
		case p.StatusCode != http.StatusOK:
			return 0, wantStatus(p, http.StatusFound, "after the removal")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("instance %d still lets the member in after %v",
		i+1, limit)
}

// startDBProxy returns a proxy to the database of dsn on a free port,
// down until Up is called.
func startDBProxy(t testing.TB, dsn string) *faultproxy.Proxy {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Fatalf("ARROW_TEST_POSTGRES must be a postgres:// URL for "+
			"the fault tests, got %q", dsn)
	}
	target := u.Host
	if u.Port() == "" {
		target += ":5432"
	}
	return faultproxy.New(t, target, false)
}

// viaProxy returns dsn pointed at the proxy, without TLS so that the
// proxy can see the statements.
func viaProxy(dsn string, p *faultproxy.Proxy) string {
	u, _ := url.Parse(dsn)
	u.Host = p.Addr()
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String()
}

// takeAway takes the database away: at once when pattern is empty, else
// when a gateway sends pattern. The channel is closed once it is gone.
func takeAway(p *faultproxy.Proxy, pattern string) <-chan struct{} {
	if pattern != "" {
		return p.DownOn(pattern)
	}
	p.Down()
	gone := make(chan struct{})
	close(gone)
	return gone
}

// errorWords are words of errors that a person must never be shown.
var errorWords = []string{"dial tcp", "connection refused", "postgres",
	"pgx", "EOF", "SQLSTATE", "store unavailable", "goroutine", "panic"}

// checkUnavailable checks an answer is the 503 page and shows nothing
// of the cause.
func checkUnavailable(t *testing.T, p reply, what string, hidden ...string) {
	t.Helper()
	if p.StatusCode != http.StatusServiceUnavailable ||
		!strings.Contains(p.body, "temporarily unavailable") {
		t.Fatalf("%s: want the 503 page, got %d: %.300s", what,
			p.StatusCode, p.body)
	}
	if sessionCookie(p) != nil {
		t.Fatalf("%s: a session cookie on the 503 page", what)
	}
	for _, word := range append(hidden, errorWords...) {
		if strings.Contains(strings.ToLower(p.body),
			strings.ToLower(word)) {
			t.Fatalf("%s: the page shows %q:\n%s", what, word, p.body)
		}
	}
}

// TestClusterDatabaseDownAtStartUp starts three instances while
// PostgreSQL cannot be reached: they start, sign-in answers 503, and
// they recover by themselves once the database is back.
func TestClusterDatabaseDownAtStartUp(t *testing.T) {
	dsn := clusterDSN(t)
	schema := clusterSchema(t, dsn)
	proxy := startDBProxy(t, dsn)
	c := startCluster(t, clusterOptions{
		instances: 3, seats: 5, people: []string{"alice@acme.test"},
		store: postgresStore(t, viaProxy(dsn, proxy), schema),
	})
	v := newVisitor(c.lb.URL, sharedTransport(t), nil)

	for i := range c.n {
		p, err := v.viaInstance(i, "/")
		if err != nil {
			t.Fatal(err)
		}
		checkUnavailable(t, p, fmt.Sprintf("instance %d", i+1),
			proxy.Addr())
	}
	p, err := v.post(c.lb.URL+"/.arrow/login",
		url.Values{"email": {"alice@acme.test"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	checkUnavailable(t, p, "posting the login form", proxy.Addr())
	p, err = v.post(c.lb.URL+"/.arrow/login",
		url.Values{"email": {"alice@acme.test"}}, "application/json")
	if err != nil || p.StatusCode != http.StatusServiceUnavailable ||
		!strings.Contains(p.body, `"code":"unavailable"`) {
		t.Fatalf("API client while the database is down: %v %d %s", err,
			p.StatusCode, p.body)
	}

	// the database comes back; nobody reloads anything
	proxy.Up(t)
	start := time.Now()
	if _, err := v.signIn("alice@acme.test"); err != nil {
		t.Fatalf("the first sign-in after the database came back: %v",
			err)
	}
	t.Logf("first sign-in after the database came back took %v",
		time.Since(start).Round(time.Millisecond))
	if n := dbCount(t, dsn, schema, "members"); n != 1 {
		t.Fatalf("%d members after the sign-in, want 1", n)
	}
}

// TestClusterDatabaseLostDuringSignIn takes the database away while an
// instance handles the identity provider's answer: before the replay
// check, and at the moment the new member is inserted. The person gets
// the 503 page, nothing of the sign-in is written, and signing in again
// once the database is back works. provisioner/postgres tests the
// transaction itself at store level.
func TestClusterDatabaseLostDuringSignIn(t *testing.T) {
	dsn := clusterDSN(t)
	schema := clusterSchema(t, dsn)
	proxy := startDBProxy(t, dsn)
	proxy.Up(t)
	c := startCluster(t, clusterOptions{
		instances: 3, seats: 5,
		people: []string{"alice@acme.test", "bob@acme.test"},
		store:  postgresStore(t, viaProxy(dsn, proxy), schema),
	})
	tr := sharedTransport(t)

	cases := []struct {
		name  string
		email string
		trap  string // the statement the database goes away at
	}{
		{"before the replay check", "alice@acme.test", ""},
		{"while inserting the member", "bob@acme.test",
			"INSERT INTO members"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			proxy.Up(t)
			v := newVisitor(c.lb.URL, tr, nil)
			acs, form, err := v.toACS(tc.email)
			if err != nil {
				t.Fatal(err)
			}
			fired := takeAway(proxy, tc.trap)
			p, err := v.post(acs, form, "")
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-fired:
			default:
				t.Fatalf("the database was not taken away; the ACS "+
					"answered %d", p.StatusCode)
			}
			checkUnavailable(t, p, "the ACS", proxy.Addr())
			checkNothingWritten(t, dsn, schema, tc.email)

			// an outage longer than a second, after which the pool
			// checks its idle connections before using them
			time.Sleep(1500 * time.Millisecond)
			proxy.Up(t)
			if _, err := v.signIn(tc.email); err != nil {
				t.Fatalf("signing in again once the database is "+
					"back: %v", err)
			}
		})
	}
	if n := dbCount(t, dsn, schema, "members"); n != len(cases) {
		t.Fatalf("%d members after signing in again, want %d", n,
			len(cases))
	}
}

// checkNothingWritten checks that email has no member, no invitation
// and no session.
func checkNothingWritten(t *testing.T, dsn, schema, email string) {
	t.Helper()
	for _, table := range []string{"members", "invitations", "sessions"} {
		n := dbStrings(t, dsn, schema, "SELECT count(*)::text FROM "+
			table+" WHERE email = $1", email)
		if n[0] != "0" {
			t.Errorf("%s rows for %s in %s after the database went "+
				"away", n[0], email, table)
		}
	}
}

// TestClusterExampleFront checks what stands in front of the cluster in
// examples/cluster, which the golden test does not read: it adapts, the
// load balancer spreads requests over the three instances of the
// example's Caddyfile without sticky sessions, and the identity provider
// knows the gateway by the load balancer's address.
func TestClusterExampleFront(t *testing.T) {
	text, err := os.ReadFile("../examples/cluster/front.Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := gatewaytest.Adapt(string(text))
	if err != nil {
		t.Fatalf("adapting front.Caddyfile: %v", err)
	}
	for _, want := range []string{
		`"policy":"round_robin"`,
		`"dial":"localhost:8091"`, `"dial":"localhost:8092"`,
		`"dial":"localhost:8093"`,
		`"service_providers":["http://localhost:8090` +
			`/.arrow/saml/acme/metadata"]`,
	} {
		if !bytes.Contains(cfg, []byte(want)) {
			t.Errorf("front.Caddyfile adapts without %s:\n%s", want, cfg)
		}
	}
}

// BenchmarkClusterSignIns measures first sign-ins per second through a
// load balancer: three instances on PostgreSQL against one on SQLite,
// with 16 browsers at a time. The identity provider, the upstream, the
// balancer and the browsers run in this process too, on the same CPUs.
//
//   - whole: each iteration is one person's whole first sign-in, six
//     requests to the gateway and one to the identity provider, from
//     the protected page to the page after the ACS.
//   - acs: every person is first taken to the identity provider's
//     answer, untimed; then each iteration posts one answer to the ACS
//     (signature, replay cache, seat, session) and loads the page after
//     it: the part of a sign-in that the store takes part in.
func BenchmarkClusterSignIns(b *testing.B) {
	stores := []struct {
		name      string
		instances int
		store     func(b *testing.B) func(int) string
	}{
		{"postgres-3", 3, func(b *testing.B) func(int) string {
			dsn := clusterDSN(b)
			return postgresStore(b, dsn, clusterSchema(b, dsn))
		}},
		{"sqlite-1", 1, func(b *testing.B) func(int) string {
			path := filepath.Join(b.TempDir(), "arrow.db")
			return func(int) string { return "store sqlite " + path }
		}},
	}
	for _, st := range stores {
		for _, part := range []string{"whole", "acs"} {
			b.Run(st.name+"/"+part, func(b *testing.B) {
				everyone := acmePeople(b.N)
				c := startCluster(b, clusterOptions{
					instances: st.instances, seats: b.N,
					people: everyone, store: st.store(b), quiet: true,
				})
				benchSignIns(b, c, everyone, part == "whole")
			})
		}
	}
}

// benchSignIns signs everyone in and reports sign-ins per second.
func benchSignIns(b *testing.B, c *cluster, everyone []string,
	whole bool) {
	const browsers = 16
	tr := sharedTransport(b)
	var serverErrors atomic.Int64
	signIn := func(email string) (outcome, error) {
		return newVisitor(c.lb.URL, tr, &serverErrors).signIn(email)
	}
	if !whole {
		signIn = prepareAnswers(b, c, tr, everyone, browsers,
			&serverErrors)
	}

	b.ResetTimer()
	start := time.Now()
	got, errs := inCrowd(everyone, browsers, signIn)
	took := time.Since(start)
	b.StopTimer()

	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	if len(got[signedIn]) != b.N || serverErrors.Load() != 0 {
		b.Fatalf("%d of %d signed in, %d server errors",
			len(got[signedIn]), b.N, serverErrors.Load())
	}
	b.ReportMetric(float64(b.N)/took.Seconds(), "signins/s")
}

// prepareAnswers takes everyone to the identity provider's answer and
// returns a function that finishes the sign-in of one of them.
func prepareAnswers(b *testing.B, c *cluster, tr http.RoundTripper,
	everyone []string, workers int,
	serverErrors *atomic.Int64) func(string) (outcome, error) {
	type answer struct {
		v    *visitor
		acs  string
		form url.Values
	}
	var mu sync.Mutex
	answers := make(map[string]answer, len(everyone))
	_, errs := inCrowd(everyone, workers, func(email string) (outcome,
		error) {
		v := newVisitor(c.lb.URL, tr, serverErrors)
		acs, form, err := v.toACS(email)
		mu.Lock()
		answers[email] = answer{v, acs, form}
		mu.Unlock()
		return "", err
	})
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	return func(email string) (outcome, error) {
		a := answers[email]
		return a.v.finish(a.acs, a.form, email)
	}
}
