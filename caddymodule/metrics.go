package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/arrowgate/arrowgate/provisioner"
)

// The gateway's Prometheus metrics come in two kinds.
//
// Counters and histograms belong to the process: they are made once and
// registered on the metrics registry of every configuration Caddy loads,
// so a reload neither duplicates them nor sets them back to zero. Each
// handler resolves its label handles once, in Provision, for the orgs it
// is configured with.
//
// Gauges of state (seats, sessions, identity provider metadata) are read
// when Prometheus scrapes, from the store and from the running handlers,
// so they are true after a restart and on every instance that shares a
// database. See metrics_gauges.go.

// otherOrg is the org label of anything that is not a configured org.
const otherOrg = "other"

// family is one metric family the gateway exports.
type family struct {
	name   string
	help   string
	labels []string
}

// The families, with their help texts: what the README's monitoring
// section lists and the example dashboard and alerts use.
var (
	famSignIns = family{"arrowgate_sign_ins_started_total",
		"Sign-ins sent to an organization's identity provider.",
		[]string{"org"}}
	famAssertions = family{"arrowgate_assertions_total",
		"Identity provider answers received, by result: ok or the " +
			"reason for rejecting them.",
		[]string{"org", "result"}}
	famProvisioning = family{"arrowgate_provisioning_total",
		"Sign-ins with a valid assertion, by what the plan's rules " +
			"decided.",
		[]string{"org", "outcome"}}
	famPlanSeats = family{"arrowgate_plan_seats",
		"Seats in the organization's plan, from the configuration.",
		[]string{"org"}}
	famSeatsUsed = family{"arrowgate_seats_used",
		"Seats taken by members and pending invitations, read from the " +
			"store.",
		[]string{"org"}}
	famSessions = family{"arrowgate_sessions_active",
		"Sessions neither ended nor expired, read from the store.",
		[]string{"org"}}
	famSessionCheck = family{"arrowgate_session_check_duration_seconds",
		"Time spent checking the session of a request on its way to " +
			"the upstream.",
		[]string{"result"}}
	famACS = family{"arrowgate_acs_duration_seconds",
		"Time spent handling an identity provider's answer at the " +
			"assertion consumer service.",
		[]string{"org"}}
	famStoreCalls = family{"arrowgate_store_operation_duration_seconds",
		"Time spent in calls to the store, by operation and result.",
		[]string{"operation", "result"}}
	famStoreErrors = family{"arrowgate_store_errors_total",
		"Store calls that failed, by operation.",
		[]string{"operation"}}
	famMetadataFetched = family{
		"arrowgate_idp_metadata_last_success_timestamp_seconds",
		"Unix time of the last successful fetch of the organization's " +
			"identity provider metadata from its URL.",
		[]string{"org"}}
	famMetadataErrors = family{"arrowgate_idp_metadata_fetch_errors_total",
		"Failed fetches of the organization's identity provider metadata.",
		[]string{"org"}}
)

// families lists every family, in the order of the documentation.
var families = []family{
	famSignIns, famAssertions, famProvisioning, famPlanSeats,
	famSeatsUsed, famSessions, famSessionCheck, famACS, famStoreCalls,
	famStoreErrors, famMetadataFetched, famMetadataErrors,
}

// MetricNames returns the name of every metric family the gateway
// exports, sorted. Histograms also export their _bucket, _sum and _count
// series under the family's name.
func MetricNames() []string {
	names := make([]string, 0, len(families))
	for _, f := range families {
		names = append(names, f.name)
	}
	slices.Sort(names)
	return names
}

// The label values. Anything else is folded into one of them.
var (
	// assertionResults are ok and every reason acs.go rejects an
	// answer for; an unknown reason counts as invalid.
	assertionResults = []string{"ok", "replay", "unsolicited",
		"expired", "not_yet_valid", "audience", "destination", "issuer",
		"signature", "decryption", "unsupported", "unsupported_binding",
		"malformed", "idp_status", "no_email", "bad_email",
		"domain_not_allowed", "invalid"}

	// provisionOutcomes are the provisioner's outcomes, then the
	// refusals and a store that failed.
	provisionOutcomes = []string{
		string(provisioner.OutcomeMember),
		string(provisioner.OutcomeInvited),
		string(provisioner.OutcomeProvisioned),
		"out_of_seats", "not_invited", "store_error"}
)

// Results of the session check.
const (
	sessionValid = iota // a live session: the request goes upstream
	sessionNone         // no session: a redirect or a 401
	sessionError        // the store failed: a 503
	sessionResults
)

var sessionResultLabels = [sessionResults]string{"valid", "none", "error"}

// Buckets of the duration histograms, in seconds: the session check and
// store calls take from microseconds (cached) to seconds (a database in
// trouble); the ACS verifies a signature and writes to the store.
var (
	quickBuckets = prometheus.ExponentialBuckets(0.0001, 2.5, 12)
	acsBuckets   = prometheus.ExponentialBuckets(0.001, 2.5, 10)
)

func (f family) counter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: f.name, Help: f.help}, f.labels)
}

func (f family) histogram(buckets []float64) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: f.name, Help: f.help, Buckets: buckets}, f.labels)
}

func (f family) desc() *prometheus.Desc {
	return prometheus.NewDesc(f.name, f.help, f.labels, nil)
}

// processCollectors are the counters and histograms of the process.
type processCollectors struct {
	signIns      *prometheus.CounterVec
	assertions   *prometheus.CounterVec
	provisioning *prometheus.CounterVec
	sessionCheck *prometheus.HistogramVec
	acs          *prometheus.HistogramVec
	storeCalls   *prometheus.HistogramVec
	storeErrors  *prometheus.CounterVec
	fetchErrors  *prometheus.CounterVec

	mu      sync.Mutex
	orgRefs map[string]int // handlers configured with each org
}

// retainOrg notes one more handler configured with org id.
func (p *processCollectors) retainOrg(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.orgRefs[id]++
}

// releaseOrg notes that a handler configured with org id is gone, and
// deletes the org's series when it was the last.
func (p *processCollectors) releaseOrg(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.orgRefs[id]--
	if p.orgRefs[id] > 0 {
		return
	}
	delete(p.orgRefs, id)
	match := prometheus.Labels{"org": id}
	p.signIns.DeletePartialMatch(match)
	p.assertions.DeletePartialMatch(match)
	p.provisioning.DeletePartialMatch(match)
	p.acs.DeletePartialMatch(match)
	p.fetchErrors.DeletePartialMatch(match)
}

// processMetrics lives as long as the process, across configurations.
// An org's series go when the last handler configured with it is
// cleaned up: Caddy provisions a new configuration before it cleans up
// the old one, so an org kept across a reload keeps its values, and an
// org removed from the configuration stops being exported.
var processMetrics = &processCollectors{
	orgRefs:      make(map[string]int),
	signIns:      famSignIns.counter(),
	assertions:   famAssertions.counter(),
	provisioning: famProvisioning.counter(),
	sessionCheck: famSessionCheck.histogram(quickBuckets),
	acs:          famACS.histogram(acsBuckets),
	storeCalls:   famStoreCalls.histogram(quickBuckets),
	storeErrors:  famStoreErrors.counter(),
	fetchErrors:  famMetadataErrors.counter(),
}

func (p *processCollectors) all() []prometheus.Collector {
	return []prometheus.Collector{p.signIns, p.assertions,
		p.provisioning, p.sessionCheck, p.acs, p.storeCalls,
		p.storeErrors, p.fetchErrors}
}

// register registers c on reg and returns the collector reg holds: c,
// or the equal one registered before by another handler of the same
// configuration.
func register[C prometheus.Collector](reg prometheus.Registerer,
	c C) (C, error) {
	err := reg.Register(c)
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		existing, ok := dup.ExistingCollector.(C)
		if !ok {
			return c, fmt.Errorf("registering metrics: %w", err)
		}
		return existing, nil
	}
	if err != nil {
		return c, fmt.Errorf("registering metrics: %w", err)
	}
	return c, nil
}

// handlerMetrics are one handler's label handles, resolved in Provision
// so that no request looks a label up. A nil *handlerMetrics records
// nothing.
type handlerMetrics struct {
	orgs    map[string]*orgMetrics
	other   func() *orgMetrics
	session [sessionResults]prometheus.Observer
	store   storeHandles
	gauges  *gaugeCollector // nil when there is no registry

	released sync.Once
}

// orgMetrics are the label handles of one org.
type orgMetrics struct {
	signIns      prometheus.Counter
	assertions   map[string]prometheus.Counter
	provisioning map[string]prometheus.Counter
	acs          prometheus.Observer
	fetchErrors  prometheus.Counter
}

// newHandlerMetrics resolves the handles of the orgs and registers the
// collectors on reg, which may be nil.
func newHandlerMetrics(reg *prometheus.Registry,
	orgIDs []string) (*handlerMetrics, error) {
	p := processMetrics
	m := &handlerMetrics{
		orgs:  make(map[string]*orgMetrics, len(orgIDs)),
		store: newStoreHandles(p),
	}
	for _, id := range orgIDs {
		if _, seen := m.orgs[id]; !seen {
			p.retainOrg(id)
		}
		m.orgs[id] = p.resolveOrg(id)
	}
	// an org the configuration does not name gets its series only if
	// it ever shows up
	m.other = sync.OnceValue(func() *orgMetrics {
		return p.resolveOrg(otherOrg)
	})
	for i, label := range sessionResultLabels {
		m.session[i] = p.sessionCheck.WithLabelValues(label)
	}
	if reg == nil {
		return m, nil
	}

	for _, c := range p.all() {
		if _, err := register(reg, c); err != nil {
			return nil, err
		}
	}
	gauges, err := register(reg, newGaugeCollector(time.Now))
	if err != nil {
		return nil, err
	}
	m.gauges = gauges
	return m, nil
}

func (p *processCollectors) resolveOrg(id string) *orgMetrics {
	o := &orgMetrics{
		signIns:      p.signIns.WithLabelValues(id),
		assertions:   make(map[string]prometheus.Counter),
		provisioning: make(map[string]prometheus.Counter),
		acs:          p.acs.WithLabelValues(id),
		fetchErrors:  p.fetchErrors.WithLabelValues(id),
	}
	for _, r := range assertionResults {
		o.assertions[r] = p.assertions.WithLabelValues(id, r)
	}
	for _, out := range provisionOutcomes {
		o.provisioning[out] = p.provisioning.WithLabelValues(id, out)
	}
	return o
}

// release gives up the handler's hold on its orgs' series. Cleanup calls
// it once.
func (m *handlerMetrics) release() {
	if m == nil {
		return
	}
	m.released.Do(func() {
		for id := range m.orgs {
			processMetrics.releaseOrg(id)
		}
	})
}

// org returns the handles of a configured org, or those of "other".
func (m *handlerMetrics) org(id string) *orgMetrics {
	if o, ok := m.orgs[id]; ok {
		return o
	}
	return m.other()
}

// provisionMetrics resolves the handler's label handles, registers the
// metrics on the configuration's registry and times the store's calls.
func (h *Handler) provisionMetrics(ctx caddy.Context) error {
	ids := make([]string, 0, len(h.Orgs))
	for _, oc := range h.Orgs {
		ids = append(ids, oc.ID)
	}
	m, err := newHandlerMetrics(ctx.GetMetricsRegistry(), ids)
	if err != nil {
		return err
	}
	h.metrics = m
	h.store = m.store.instrument(h.store)
	return nil
}

// exportGauges lets the scrape-time gauges see this handler's orgs and
// store. Provision calls it once the orgs are loaded.
func (h *Handler) exportGauges() {
	if h.metrics == nil || h.metrics.gauges == nil {
		return
	}
	store, ok := h.store.(activeSessionReader)
	if !ok {
		return
	}
	h.metrics.gauges.add(gaugeSource{
		orgs:     h.orgs,
		store:    store,
		storeKey: h.storeKey,
		idle:     time.Duration(h.SessionIdle),
		logger:   h.logger,
	})
}

// checkSession is currentSession, timed for the session check histogram.
func (h *Handler) checkSession(r *http.Request) (provisioner.Session,
	error) {
	if h.metrics == nil {
		return h.currentSession(r)
	}
	start := time.Now()
	sess, err := h.currentSession(r)
	result := sessionValid
	switch {
	case errors.Is(err, provisioner.ErrNotFound):
		result = sessionNone
	case err != nil:
		result = sessionError
	}
	h.metrics.session[result].Observe(time.Since(start).Seconds())
	return sess, err
}

// signInStarted counts a person sent to their identity provider.
func (m *handlerMetrics) signInStarted(org string) {
	if m == nil {
		return
	}
	m.org(org).signIns.Inc()
}

// assertionAccepted counts an identity provider's answer that passed
// every check.
func (m *handlerMetrics) assertionAccepted(org string) {
	m.assertionRejected(org, "ok")
}

// assertionRejected counts an answer refused for reason, one of the
// rejection reasons of acs.go; any other reason counts as invalid.
func (m *handlerMetrics) assertionRejected(org, reason string) {
	if m == nil {
		return
	}
	o := m.org(org)
	c, ok := o.assertions[reason]
	if !ok {
		c = o.assertions["invalid"]
	}
	c.Inc()
}

// signedIn counts what the plan's rules decided for a valid assertion:
// the outcome of the provisioner, or why it refused or failed.
func (m *handlerMetrics) signedIn(org string, outcome provisioner.Outcome,
	err error) {
	if m == nil {
		return
	}
	label := string(outcome)
	switch {
	case errors.Is(err, provisioner.ErrOutOfSeats):
		label = "out_of_seats"
	case errors.Is(err, provisioner.ErrNotInvited):
		label = "not_invited"
	case err != nil:
		label = "store_error"
	}
	if c, ok := m.org(org).provisioning[label]; ok {
		c.Inc()
	}
}

// acsDone records the time the ACS took for an answer, from start.
func (m *handlerMetrics) acsDone(org string, start time.Time) {
	if m == nil {
		return
	}
	m.org(org).acs.Observe(time.Since(start).Seconds())
}

// metadataFetchFailed counts a failed fetch of an org's identity
// provider metadata.
func (m *handlerMetrics) metadataFetchFailed(org string) {
	if m == nil {
		return
	}
	m.org(org).fetchErrors.Inc()
}
