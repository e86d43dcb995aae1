package caddymodule

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/arrowgate/arrowgate/provisioner"
)

// ResetMetrics forgets every series of the process-wide counters and
// histograms, so that a test can compare exact values. Call it before
// loading a configuration: handles resolved earlier stop counting.
func ResetMetrics() {
	for _, c := range processMetrics.all() {
		c.(interface{ Reset() }).Reset()
	}
}

// The label values of arrowgate_assertions_total must name every reason
// acs.go rejects an answer for, or operators would see them as invalid.
func TestAssertionResultsCoverEveryRejection(t *testing.T) {
	src, err := os.ReadFile("acs.go")
	if err != nil {
		t.Fatal(err)
	}
	reasons := []string{samlReason(saml.ErrBadStatus{Status: "x"}),
		samlReason(errors.New("unknown"))}
	for _, s := range samlReasons {
		reasons = append(reasons, s.reason)
	}
	re := regexp.MustCompile(`reject\("([a-z_]+)"`)
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		reasons = append(reasons, m[1])
	}
	if len(reasons) < 20 {
		t.Fatalf("found only %d rejections in acs.go: %v", len(reasons),
			reasons)
	}
	for _, r := range reasons {
		if !slices.Contains(assertionResults, r) {
			t.Errorf("rejection reason %q is not a result label", r)
		}
	}
}

// fakeCounts is a store that answers only the two counting calls, from
// maps, and counts how often it was asked.
type fakeCounts struct {
	provisioner.Store // nil: no other call is expected
	seats             map[string]int
	sessions          map[string]int
	fail              error
	asked             int
}

func (f *fakeCounts) SeatsUsed(_ context.Context, org string) (int,
	error) {
	f.asked++
	return f.seats[org], f.fail
}

func (f *fakeCounts) ActiveSessions(_ context.Context, _,
	_ time.Time) (map[string]int, error) {
	f.asked++
	return f.sessions, f.fail
}

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func gaugeSourceFor(store provisioner.Store, orgs ...*orgState) gaugeSource {
	hs := newStoreHandles(processMetrics)
	byID := make(map[string]*orgState)
	for _, o := range orgs {
		byID[o.ID] = o
	}
	return gaugeSource{
		orgs:     byID,
		store:    hs.instrument(store).(activeSessionReader),
		storeKey: "fake",
		idle:     time.Hour,
		logger:   zap.NewNop(),
	}
}

func orgWithSeats(id string, seats int) *orgState {
	return &orgState{Org: provisioner.Org{ID: id, Seats: seats}}
}

const gaugeHelp = `
# HELP arrowgate_plan_seats Seats in the organization's plan, from the configuration.
# TYPE arrowgate_plan_seats gauge
# HELP arrowgate_seats_used Seats taken by members and pending invitations, read from the store.
# TYPE arrowgate_seats_used gauge
# HELP arrowgate_sessions_active Sessions neither ended nor expired, read from the store.
# TYPE arrowgate_sessions_active gauge
# HELP arrowgate_idp_metadata_last_success_timestamp_seconds Unix time of the last successful fetch of the organization's identity provider metadata from its URL.
# TYPE arrowgate_idp_metadata_last_success_timestamp_seconds gauge
`

func TestGaugesReadTheStoreAtMostOncePerInterval(t *testing.T) {
	store := &fakeCounts{
		seats:    map[string]int{"acme": 9, "globex": 1},
		sessions: map[string]int{"acme": 4, "initech": 3, "umbrella": 1},
	}
	acme, globex := orgWithSeats("acme", 10), orgWithSeats("globex", 5)
	acme.cfg.IDPMetadataURL = "https://idp.acme.test/metadata"
	acme.fetchedAt.Store(1767225600)
	globex.fetchedAt.Store(1767225600) // from a file: not reported
	clk := &clock{time.Unix(1767225600, 0)}
	c := newGaugeCollector(clk.now)
	c.add(gaugeSourceFor(store, acme, globex))

	// sessions of orgs this gateway does not serve are folded together
	want := gaugeHelp + `
arrowgate_plan_seats{org="acme"} 10
arrowgate_plan_seats{org="globex"} 5
arrowgate_seats_used{org="acme"} 9
arrowgate_seats_used{org="globex"} 1
arrowgate_sessions_active{org="acme"} 4
arrowgate_sessions_active{org="globex"} 0
arrowgate_sessions_active{org="other"} 4
arrowgate_idp_metadata_last_success_timestamp_seconds{org="acme"} 1.7672256e+09
`
	if err := testutil.CollectAndCompare(c,
		strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if store.asked != 3 {
		t.Fatalf("first scrape asked the store %d times, want 3",
			store.asked)
	}

	// within the interval the counts come from the cache, even changed
	store.seats["acme"] = 10
	clk.t = clk.t.Add(gaugeCacheTTL - time.Millisecond)
	if err := testutil.CollectAndCompare(c,
		strings.NewReader(want)); err != nil {
		t.Fatalf("within the interval: %v", err)
	}
	if store.asked != 3 {
		t.Fatalf("a scrape within the interval asked the store")
	}

	clk.t = clk.t.Add(time.Millisecond)
	fresh := strings.Replace(want, `used{org="acme"} 9`,
		`used{org="acme"} 10`, 1)
	if err := testutil.CollectAndCompare(c,
		strings.NewReader(fresh)); err != nil {
		t.Fatalf("after the interval: %v", err)
	}
}

func TestGaugesLeaveOutWhatTheStoreCannotTell(t *testing.T) {
	store := &fakeCounts{fail: provisioner.ErrUnavailable}
	errs := processMetrics.storeErrors.WithLabelValues("seats_used")
	before := testutil.ToFloat64(errs)
	c := newGaugeCollector(time.Now)
	c.add(gaugeSourceFor(store, orgWithSeats("acme", 10)))

	want := gaugeHelp + `
arrowgate_plan_seats{org="acme"} 10
`
	if err := testutil.CollectAndCompare(c,
		strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(errs) - before; got != 1 {
		t.Fatalf("store errors for seats_used grew by %v, want 1", got)
	}
}

func TestMetricsFollowPrometheusConventions(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := newHandlerMetrics(reg, []string{"acme"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.release)
	m.gauges.add(gaugeSourceFor(&fakeCounts{}, orgWithSeats("acme", 1)))
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}

	// a second handler of the same configuration shares the collectors
	again, err := newHandlerMetrics(reg, []string{"globex"})
	if err != nil {
		t.Fatalf("registering a second handler: %v", err)
	}
	t.Cleanup(again.release)
	if again.gauges != m.gauges {
		t.Fatalf("the second handler got gauges of its own")
	}
}

func TestAuditMemberRemoved(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	h := &Handler{auditLog: zap.New(core)}
	r := httptest.NewRequest("DELETE", "/arrowgate/orgs/acme/members/x",
		nil)
	r.RemoteAddr = "192.0.2.7:4711"
	h.auditMemberRemoved(r, "acme", "bob@acme.test", "m1", "admin api")

	entries := logs.AllUntimed()
	if len(entries) != 1 || entries[0].Message != "member removed" {
		t.Fatalf("audit entries: %+v", entries)
	}
	got := entries[0].ContextMap()
	want := map[string]any{"org": "acme", "email": "bob@acme.test",
		"member_id": "m1", "by": "admin api", "remote_ip": "192.0.2.7"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
