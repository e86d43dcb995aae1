package caddymodule

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// gaugeCacheTTL is how long counts read from the store serve later
// scrapes, so that several Prometheus servers scraping often ask the
// database at most once in that time.
const gaugeCacheTTL = 5 * time.Second

// gaugeReadTimeout bounds the store reads of one scrape.
const gaugeReadTimeout = 3 * time.Second

var (
	descPlanSeats       = famPlanSeats.desc()
	descSeatsUsed       = famSeatsUsed.desc()
	descSessions        = famSessions.desc()
	descMetadataFetched = famMetadataFetched.desc()
)

// gaugeSource is what one handler lends the gauges: its orgs and the
// store that holds their seats and sessions.
type gaugeSource struct {
	orgs     map[string]*orgState
	store    activeSessionReader
	storeKey string // handlers on one database share it
	idle     time.Duration
	logger   *zap.Logger
}

// activeSessionReader is the instrumented store: the store's calls, and
// the count of live sessions when the store can tell.
type activeSessionReader interface {
	SeatsUsed(ctx context.Context, orgID string) (int, error)
	activeSessions(ctx context.Context, now,
		idleCutoff time.Time) (map[string]int, bool, error)
}

// sourcedOrg is an org and the source that configures it.
type sourcedOrg struct {
	*orgState
	src *gaugeSource
}

// gaugeCollector reports the gauges of state when Prometheus scrapes:
// plan seats and metadata times from the handlers, seats used and live
// sessions from the store. Each configuration registers one; every
// handler of the configuration adds itself as a source. An org named by
// several handlers is reported once, as the first one configures it.
type gaugeCollector struct {
	now func() time.Time
	ttl time.Duration

	mu       sync.Mutex
	sources  []*gaugeSource
	readAt   time.Time      // zero: nothing read yet
	seats    map[string]int // seats used by org; absent if unreadable
	sessions map[string]int // live sessions by org label
}

func newGaugeCollector(now func() time.Time) *gaugeCollector {
	return &gaugeCollector{now: now, ttl: gaugeCacheTTL}
}

// add makes a handler's orgs part of the next scrape.
func (c *gaugeCollector) add(s gaugeSource) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sources = append(c.sources, &s)
	c.readAt = time.Time{}
}

// Describe sends the descriptors of the four gauges.
func (c *gaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPlanSeats
	ch <- descSeatsUsed
	ch <- descSessions
	ch <- descMetadataFetched
}

// Collect reads the store unless the last read is recent, and sends the
// gauges. A count the store could not give is left out rather than
// reported wrong; the failure shows in arrowgate_store_errors_total.
func (c *gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	orgs := c.orgs()
	if c.readAt.IsZero() || c.now().Sub(c.readAt) >= c.ttl {
		c.read(orgs)
	}

	for _, o := range orgs {
		ch <- gauge(descPlanSeats, o.Seats, o.ID)
		if n, ok := c.seats[o.ID]; ok {
			ch <- gauge(descSeatsUsed, n, o.ID)
		}
		// metadata from a file is read once and never goes stale
		at := o.fetchedAt.Load()
		if at > 0 && o.cfg.IDPMetadataURL != "" {
			ch <- gauge(descMetadataFetched, at, o.ID)
		}
	}
	for org, n := range c.sessions {
		ch <- gauge(descSessions, n, org)
	}
}

func gauge[N int | int64](d *prometheus.Desc, v N,
	org string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue,
		float64(v), org)
}

// orgs lists every configured org once, sorted within each source.
func (c *gaugeCollector) orgs() []sourcedOrg {
	var out []sourcedOrg
	seen := make(map[string]bool)
	for _, src := range c.sources {
		ids := make([]string, 0, len(src.orgs))
		for id := range src.orgs {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				out = append(out, sourcedOrg{src.orgs[id], src})
			}
		}
	}
	return out
}

// read asks the store for seats used and live sessions.
func (c *gaugeCollector) read(orgs []sourcedOrg) {
	ctx, cancel := context.WithTimeout(context.Background(),
		gaugeReadTimeout)
	defer cancel()

	c.seats = make(map[string]int, len(orgs))
	for _, o := range orgs {
		n, err := o.src.store.SeatsUsed(ctx, o.ID)
		if err != nil {
			o.src.logger.Warn("reading seats used for metrics",
				zap.String("org", o.ID), zap.Error(err))
			continue
		}
		c.seats[o.ID] = n
	}
	c.sessions = c.readSessions(ctx, orgs)
	c.readAt = c.now()
}

// readSessions counts live sessions once per database. Sessions of an
// org no handler configures count as "other".
func (c *gaugeCollector) readSessions(ctx context.Context,
	orgs []sourcedOrg) map[string]int {
	configured := make(map[string]bool, len(orgs))
	for _, o := range orgs {
		configured[o.ID] = true
	}
	out := make(map[string]int)
	asked := make(map[string]bool)
	for _, src := range c.sources {
		if asked[src.storeKey] {
			continue
		}
		asked[src.storeKey] = true
		now := c.now()
		counts, ok, err := src.store.activeSessions(ctx, now,
			now.Add(-src.idle))
		if err != nil {
			src.logger.Warn("counting active sessions for metrics",
				zap.Error(err))
		}
		if !ok || err != nil {
			continue
		}
		c.addSessions(out, counts, configured, src.storeKey)
	}
	return out
}

// addSessions adds one database's counts to out: every org configured
// on that database gets a value, zero included.
func (c *gaugeCollector) addSessions(out, counts map[string]int,
	configured map[string]bool, storeKey string) {
	for _, src := range c.sources {
		if src.storeKey != storeKey {
			continue
		}
		for id := range src.orgs {
			if _, ok := out[id]; !ok {
				out[id] = 0
			}
		}
	}
	for org, n := range counts {
		if !configured[org] {
			org = otherOrg
		}
		out[org] += n
	}
}

// Interface guards
var _ prometheus.Collector = (*gaugeCollector)(nil)
