package caddymodule

import (
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// RateLimitConfig bounds how often one client address may post the login
// form or an identity provider's answer to an assertion consumer service.
// It slows down guessing which domains sign in here, and floods of forged
// answers, each of which costs the gateway a signature check.
type RateLimitConfig struct {
	// Requests is how many attempts an address may make per Window,
	// all at once or spread out. Default: 300, enough for an office of
	// people behind one NAT address signing in at nine o'clock.
	Requests int `json:"requests,omitempty"`

	// Window is the period Requests are counted over; the allowance
	// refills evenly across it. Default: 1m.
	Window caddy.Duration `json:"window,omitempty"`

	// MaxClients is how many addresses are remembered; past it the
	// least recently seen are forgotten, so memory stays bounded
	// whatever the number of attackers. Default: 10000.
	MaxClients int `json:"max_clients,omitempty"`

	// Off turns rate limiting off. Only for a gateway behind a proxy
	// that limits already: without it, one address may try without end.
	Off bool `json:"off,omitempty"`
}

// The defaults of RateLimitConfig.
const (
	defaultRateRequests = 300
	defaultRateWindow   = time.Minute
	defaultRateClients  = 10000
)

// signInLimiter is a token bucket per client address, in an LRU cache.
// IPv6 addresses share the bucket of their /64, which one client
// usually holds whole.
type signInLimiter struct {
	every   rate.Limit
	burst   int
	mu      sync.Mutex // makes get-or-add one step
	clients *lru.Cache[string, *clientBucket]
}

type clientBucket struct {
	lim    *rate.Limiter
	warned bool // logged since it last had tokens
}

// provisionRateLimit sets up the limiter from the configuration, with
// defaults for what is unset.
func (h *Handler) provisionRateLimit() error {
	var cfg RateLimitConfig
	if h.RateLimit != nil {
		cfg = *h.RateLimit
	}
	if cfg.Off {
		return nil
	}
	if cfg.Requests < 0 || cfg.Window < 0 || cfg.MaxClients < 0 {
		return fmt.Errorf("rate_limit: requests, window and max_clients " +
			"must not be negative")
	}
	if cfg.Requests == 0 {
		cfg.Requests = defaultRateRequests
	}
	if cfg.Window == 0 {
		cfg.Window = caddy.Duration(defaultRateWindow)
	}
	if cfg.MaxClients == 0 {
		cfg.MaxClients = defaultRateClients
	}
	clients, err := lru.New[string, *clientBucket](cfg.MaxClients)
	if err != nil {
		return fmt.Errorf("rate_limit: %w", err)
	}
	h.limiter = &signInLimiter{
		every: rate.Limit(float64(cfg.Requests) /
			time.Duration(cfg.Window).Seconds()),
		burst:   cfg.Requests,
		clients: clients,
	}
	return nil
}

// take spends one attempt of client at now. When none is left it returns
// how long until there is one, and whether this is the first refusal
// since the client last had one (worth a log line).
func (l *signInLimiter) take(client string, now time.Time) (
	wait time.Duration, first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.clients.Get(client)
	if !ok {
		b = &clientBucket{lim: rate.NewLimiter(l.every, l.burst)}
		l.clients.Add(client, b)
	}
	res := b.lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		first, b.warned = !b.warned, true
		return d, first
	}
	b.warned = false
	return 0, false
}

// rateKey is the bucket of a client address: the address, or its /64
// for IPv6.
func rateKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

// isSignInAttempt reports whether the request to the gateway's path p
// is one the limiter counts: a post of the login form or to an ACS.
func isSignInAttempt(r *http.Request, p string) bool {
	if r.Method != http.MethodPost {
		return false
	}
	return p == "/login" || (strings.HasPrefix(p, "/saml/") &&
		strings.HasSuffix(p, "/acs"))
}

// rateLimited answers 429 with Retry-After and reports true when the
// client has no attempt left.
func (h *Handler) rateLimited(w http.ResponseWriter, r *http.Request,
	p string) bool {
	if h.limiter == nil || !isSignInAttempt(r, p) {
		return false
	}
	client := clientIP(r)
	wait, first := h.limiter.take(rateKey(client), h.now())
	if wait == 0 {
		return false
	}
	if first {
		h.logger.Warn("sign-in attempts rate limited",
			zap.String("remote_ip", client), zap.Duration("retry_in", wait))
	}
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	msg := fmt.Sprintf("Too many sign-in attempts came from your "+
		"address. Try again in %d seconds.", secs)
	if wantsJSON(r) {
		writeProblem(w, problem{Status: http.StatusTooManyRequests,
			Code: "rate_limited", Title: "Too many sign-in attempts",
			Detail: msg})
		return true
	}
	h.renderPage(w, http.StatusTooManyRequests, "denied", page{
		Title: "Too many sign-in attempts", Message: msg,
	})
	return true
}

// unmarshalRateLimit reads rate_limit <n>/<duration> or rate_limit off.
func (h *Handler) unmarshalRateLimit(d *caddyfile.Dispenser) error {
	var v string
	if err := oneArg(d, &v); err != nil {
		return err
	}
	if v == "off" {
		h.RateLimit = &RateLimitConfig{Off: true}
		return nil
	}
	n, per, ok := strings.Cut(v, "/")
	requests, err := strconv.Atoi(n)
	if !ok || err != nil || requests < 1 {
		return d.Errf("rate_limit: want <n>/<duration> like 300/1m, or "+
			"off, not %q", v)
	}
	window, err := caddy.ParseDuration(per)
	if err != nil || window <= 0 {
		return d.Errf("rate_limit: %q is not a positive duration, "+
			"like 1m", per)
	}
	h.RateLimit = &RateLimitConfig{Requests: requests,
		Window: caddy.Duration(window)}
	return nil
}
