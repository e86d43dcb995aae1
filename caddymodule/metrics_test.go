package caddymodule_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/arrowgate/arrowgate/caddymodule"
	"github.com/arrowgate/arrowgate/internal/gatewaytest"
)

// monitored is a gateway like startEnv's, acme with two seats, that also
// serves Prometheus metrics at /metrics and writes the audit log to a
// file of its own.
type monitored struct {
	gw       string
	config   string // the Caddyfile, to load again
	auditLog string
}

func startMonitored(t *testing.T) *monitored {
	t.Helper()
	caddymodule.ResetMetrics()
	dir := t.TempDir()
	port := gatewaytest.FreePort(t)
	gw := fmt.Sprintf("http://127.0.0.1:%d", port)
	acme := gatewaytest.StartIDP(t, acmeUsers,
		gw+"/.arrow/saml/acme/metadata")
	globex := gatewaytest.StartIDP(t, []string{"erin@globex.test"},
		gw+"/.arrow/saml/globex/metadata")
	up := gatewaytest.StartUpstream(t)
	m := &monitored{gw: gw, auditLog: filepath.Join(dir, "audit.log")}

	m.config = fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %s
	persist_config off
	log audit {
		output file %s
		format json
		include http.handlers.arrow_sso.audit
	}
}

%s {
	handle /metrics {
		metrics
	}
	handle {
		arrow_sso {
			store sqlite %s
			org acme {
				name "Acme Corp"
				plan business
				seats 2
				domains acme.test
				idp_metadata_url %s
				jit on
			}
			org globex {
				plan omnix
				seats 5
				domains globex.test
				idp_metadata_url %s
				jit on
			}
		}
		reverse_proxy %s
	}
}
`, filepath.Join(dir, "caddy"), m.auditLog, gw,
		filepath.Join(dir, "arrow.db"), acme.MetadataURL(),
		globex.MetadataURL(), up.URL)
	gatewaytest.Load(t, m.config)
	return m
}

// sequence is what the scripted sign-ins showed and set.
type sequence struct {
	aliceSession string // alice's session cookie
	replayRef    string // the references on the error pages
	seatRef      string
	crossRef     string
	responses    []string // every SAMLResponse posted
}

// runSequence signs alice and bob in, lets a thief replay alice's
// answer, finds no seat for carol, and posts erin's answer from globex's
// identity provider to acme's ACS. Alice then visits a page.
func runSequence(t *testing.T, m *monitored) sequence {
	t.Helper()
	var s sequence

	alice := gatewaytest.NewBrowser(t)
	idp := alice.ToIdentityProvider(t, m.gw, "/", "alice@acme.test")
	acs, form := alice.AssertionFor(t, idp, "alice@acme.test")
	samlURL, _ := url.Parse(m.gw + "/.arrow/saml/")
	stolen := alice.Client.Jar.Cookies(samlURL)
	r := alice.PostForm(t, acs, form)
	c := cookieNamed(r, "arrow_session")
	if r.StatusCode != http.StatusSeeOther || c == nil {
		t.Fatalf("alice: want 303 with a session, got %d", r.StatusCode)
	}
	s.aliceSession = c.Value
	s.responses = append(s.responses, form.Get("SAMLResponse"))

	thief := gatewaytest.NewBrowser(t)
	thief.Client.Jar.SetCookies(samlURL, stolen)
	s.replayRef = refusedWithReference(t, "replay",
		thief.PostForm(t, acs, form))

	if r := gatewaytest.NewBrowser(t).SignIn(t, m.gw, "/",
		"bob@acme.test"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob: want 303, got %d", r.StatusCode)
	}
	s.seatRef = refusedWithReference(t, "out of seats",
		gatewaytest.NewBrowser(t).SignIn(t, m.gw, "/", "carol@acme.test"))

	// a valid answer of globex's identity provider, sent to acme
	erin := gatewaytest.NewBrowser(t)
	idp = erin.ToIdentityProvider(t, m.gw, "/", "erin@globex.test")
	acs, form = erin.AssertionFor(t, idp, "erin@globex.test")
	if !strings.HasSuffix(acs, "/.arrow/saml/globex/acs") {
		t.Fatalf("erin's answer goes to %s, not globex's ACS", acs)
	}
	acmeACS := strings.TrimSuffix(acs, "globex/acs") + "acme/acs"
	s.crossRef = refusedWithReference(t, "cross-tenant",
		erin.PostForm(t, acmeACS, form))
	s.responses = append(s.responses, form.Get("SAMLResponse"))

	visit := seen(t, alice.Get(t, m.gw+"/inbox"))
	if visit.Headers["X-Arrow-Email"] != "alice@acme.test" {
		t.Fatalf("alice's visit: upstream saw %+v", visit.Headers)
	}
	return s
}

// refusedWithReference checks r is a 403 without a session and returns
// the reference ID the page shows.
func refusedWithReference(t *testing.T, what string,
	r gatewaytest.Response) string {
	t.Helper()
	if r.StatusCode != http.StatusForbidden ||
		cookieNamed(r, "arrow_session") != nil {
		t.Fatalf("%s: want 403 without a session, got %d", what,
			r.StatusCode)
	}
	ref := refRe.FindString(r.Body)
	if ref == "" {
		t.Fatalf("%s: the page shows no reference:\n%s", what, r.Body)
	}
	return ref
}

// scrape reads the gateway's /metrics and returns its arrowgate_
// families as a Gatherer. Histograms keep their number of observations
// only: buckets and sums depend on how fast the machine is.
func scrape(t *testing.T, gw string) prometheus.Gatherer {
	t.Helper()
	client := &http.Client{Transport: newAfterReload(t)}
	resp, err := client.Get(gw + "/metrics")
	if err != nil {
		t.Fatalf("scraping: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping: status %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	var fams []*dto.MetricFamily
	for name, f := range byName {
		if !strings.HasPrefix(name, "arrowgate_") {
			continue
		}
		for _, m := range f.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				h.Bucket = nil
				h.SampleSum = new(float64)
			}
		}
		fams = append(fams, f)
	}
	slices.SortFunc(fams, func(a, b *dto.MetricFamily) int {
		return strings.Compare(a.GetName(), b.GetName())
	})
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		return fams, nil
	})
}

// compareGolden compares the scraped families with a golden file of
// testdata/metrics, leaving out the metadata fetch times, which are
// clock readings, and the store's timings, which depend on the caches.
func compareGolden(t *testing.T, g prometheus.Gatherer, golden string) {
	t.Helper()
	want, err := os.Open(filepath.Join("testdata", "metrics", golden))
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	var names []string
	for _, n := range caddymodule.MetricNames() {
		if n != "arrowgate_idp_metadata_last_success_timestamp_seconds" &&
			n != "arrowgate_store_operation_duration_seconds" {
			names = append(names, n)
		}
	}
	if err := testutil.GatherAndCompare(g, want, names...); err != nil {
		t.Errorf("metrics differ from testdata/metrics/%s:\n%v", golden,
			err)
	}
}

// storeCalls returns the number of calls of a store operation with the
// given result.
func storeCalls(t *testing.T, g prometheus.Gatherer, op,
	result string) uint64 {
	t.Helper()
	fams, _ := g.Gather()
	for _, f := range fams {
		if f.GetName() != "arrowgate_store_operation_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			if label(m, "operation") == op && label(m, "result") == result {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	t.Fatalf("no store series for operation %s, result %s", op, result)
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// metadataTimes returns the last metadata fetch time of each org.
func metadataTimes(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	fams, _ := g.Gather()
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() ==
			"arrowgate_idp_metadata_last_success_timestamp_seconds" {
			for _, m := range f.GetMetric() {
				out[label(m, "org")] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func TestMetricsAfterSignInSequence(t *testing.T) {
	start := time.Now()
	m := startMonitored(t)
	runSequence(t, m)

	g := scrape(t, m.gw)
	compareGolden(t, g, "after_sequence.prom")

	// alice, the replay, bob and carol reached the replay cache; the
	// cross-tenant answer was stopped before
	if n := storeCalls(t, g, "consume_once", "ok"); n != 4 {
		t.Errorf("consume_once calls: %d, want 4", n)
	}
	if n := storeCalls(t, g, "add_member", "ok"); n != 3 {
		t.Errorf("add_member calls: %d, want 3 (alice, bob, carol)", n)
	}
	for org, at := range metadataTimes(t, g) {
		fetched := time.Unix(int64(at), 0)
		if fetched.Before(start.Truncate(time.Second)) ||
			fetched.After(time.Now()) {
			t.Errorf("%s's metadata fetched at %s, not during the test",
				org, fetched)
		}
	}
	if got := metadataTimes(t, g); len(got) != 2 {
		t.Errorf("metadata fetch times for %v, want acme and globex", got)
	}

	// every family the documentation lists is exported, and no other
	fams, _ := g.Gather()
	var exported []string
	for _, f := range fams {
		exported = append(exported, f.GetName())
	}
	slices.Sort(exported)
	if want := caddymodule.MetricNames(); !slices.Equal(exported, want) {
		t.Errorf("exported families %v\nwant MetricNames() %v", exported,
			want)
	}
}

func TestMetricsKeepTheirValuesAcrossReloads(t *testing.T) {
	m := startMonitored(t)
	runSequence(t, m)

	// the same configuration twice: every handler, store and registry
	// is made again
	gatewaytest.Load(t, m.config)
	gatewaytest.Load(t, m.config)

	b := gatewaytest.NewBrowser(t)
	b.Client.Transport = newAfterReload(t)
	r := b.SignIn(t, m.gw, "/", "erin@globex.test")
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("erin after the reloads: want 303, got %d", r.StatusCode)
	}
	compareGolden(t, scrape(t, m.gw), "after_reloads.prom")
}

func TestMetricsOfARemovedOrgGoWithIt(t *testing.T) {
	m := startMonitored(t)
	runSequence(t, m)
	start, end := strings.Index(m.config, "\t\t\torg globex {"),
		strings.Index(m.config, "\t\t}\n\t\treverse_proxy")
	if start < 0 || end < start {
		t.Fatal("the configuration has no globex block to remove")
	}
	withoutGlobex := m.config[:start] + m.config[end:]

	gatewaytest.Load(t, withoutGlobex)
	g := scrape(t, m.gw)
	if got := orgsExported(t, g); !slices.Equal(got, []string{"acme"}) {
		t.Fatalf("orgs exported after globex was removed: %v, want [acme]",
			got)
	}
	if got := counterValue(t, g, "arrowgate_sign_ins_started_total",
		"acme"); got != 3 {
		t.Fatalf("acme's sign-ins after the reload: %v, want 3", got)
	}

	// back in the configuration, globex counts from zero
	gatewaytest.Load(t, m.config)
	g = scrape(t, m.gw)
	if got := orgsExported(t, g); !slices.Equal(got,
		[]string{"acme", "globex"}) {
		t.Fatalf("orgs exported after globex came back: %v", got)
	}
	if got := counterValue(t, g, "arrowgate_sign_ins_started_total",
		"globex"); got != 0 {
		t.Fatalf("globex's sign-ins after it came back: %v, want 0", got)
	}
}

// afterReload carries requests sent right after a configuration reload.
// Caddy binds each configuration's listener anew, with SO_REUSEPORT, and
// shuts the previous server down in a goroutine caddy.Load does not wait
// for. Meanwhile the kernel may queue a new connection on the previous
// socket: it is reset when that socket closes, or accepted by the server
// shutting down, which closes it unanswered. Either way no handler saw
// the request, and afterReload sends it again, each time on a new
// connection. Every answer the gateway gives, an error page included,
// comes back as it came.
type afterReload struct {
	t    *testing.T
	base *http.Transport
}

func newAfterReload(t *testing.T) afterReload {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	return afterReload{t: t, base: tr}
}

func (a afterReload) RoundTrip(req *http.Request) (*http.Response,
	error) {
	for attempt := 1; ; attempt++ {
		resp, err := a.base.RoundTrip(req)
		unread := errors.Is(err, syscall.ECONNRESET) ||
			errors.Is(err, io.EOF)
		if err == nil || !unread || attempt == 5 {
			return resp, err
		}
		a.t.Logf("%s %s: %v; sending it again", req.Method, req.URL, err)
		if req.Body != nil {
			if req.GetBody == nil {
				return nil, err
			}
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// orgsExported is the sorted set of org labels of every series.
func orgsExported(t *testing.T, g prometheus.Gatherer) []string {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var orgs []string
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "org" && !slices.Contains(orgs,
					l.GetValue()) {
					orgs = append(orgs, l.GetValue())
				}
			}
		}
	}
	slices.Sort(orgs)
	return orgs
}

// counterValue is the value of the counter family name for org.
func counterValue(t *testing.T, g prometheus.Gatherer, name,
	org string) float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "org" && l.GetValue() == org {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s series for org %s", name, org)
	return 0
}
