package caddymodule

import (
	"fmt"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func TestSignInLimiterRefillsAndForgets(t *testing.T) {
	h := &Handler{RateLimit: &RateLimitConfig{Requests: 2,
		Window: caddy.Duration(time.Minute), MaxClients: 3}}
	if err := h.provisionRateLimit(); err != nil {
		t.Fatal(err)
	}
	l := h.limiter
	t0 := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

	for i := 0; i < 2; i++ {
		if wait, _ := l.take("a", t0); wait != 0 {
			t.Fatalf("attempt %d within the burst waited %s", i, wait)
		}
	}
	wait, first := l.take("a", t0)
	if wait != 30*time.Second || !first {
		t.Fatalf("third attempt: wait %s first %v, want 30s (2 a minute) "+
			"and first", wait, first)
	}
	if _, first := l.take("a", t0); first {
		t.Fatalf("a second refusal in a row was reported as the first")
	}
	if wait, _ := l.take("a", t0.Add(30*time.Second)); wait != 0 {
		t.Fatalf("after 30s one attempt should be back, wait %s", wait)
	}

	// memory is bounded: past MaxClients the oldest address is dropped
	for i := 0; i < 10; i++ {
		l.take(fmt.Sprintf("10.0.0.%d", i), t0)
	}
	if n := l.clients.Len(); n != 3 {
		t.Fatalf("%d addresses remembered, want at most 3", n)
	}
}

func TestRateLimitConfigChecks(t *testing.T) {
	off := &Handler{RateLimit: &RateLimitConfig{Off: true}}
	if err := off.provisionRateLimit(); err != nil || off.limiter != nil {
		t.Fatalf("off: limiter %v, err %v", off.limiter, err)
	}
	bad := &Handler{RateLimit: &RateLimitConfig{Requests: -1}}
	if err := bad.provisionRateLimit(); err == nil {
		t.Fatalf("negative requests accepted")
	}
	def := &Handler{}
	if err := def.provisionRateLimit(); err != nil || def.limiter == nil ||
		def.limiter.burst != 300 {
		t.Fatalf("default: %+v, %v", def.limiter, err)
	}
}

func TestRateKeyGroupsIPv6By64(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"not an ip", "not an ip"},
	} {
		if got := rateKey(c.in); got != c.want {
			t.Errorf("rateKey(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
