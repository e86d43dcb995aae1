package caddymodule_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/arrowgate/arrowgate/internal/gatewaytest"
)

// auditEntry is one JSON line of the audit log.
type auditEntry map[string]any

func (e auditEntry) get(key string) string {
	v, ok := e[key]
	if !ok {
		return "<absent>"
	}
	return fmt.Sprint(v)
}

// readAudit waits until the audit log holds n entries and returns them
// with the raw text of the file.
func readAudit(t *testing.T, path string, n int) ([]auditEntry, string) {
	t.Helper()
	var entries []auditEntry
	var raw string
	gatewaytest.WaitFor(t, 5*time.Second, func() error {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		raw = string(data)
		entries = nil
		sc := bufio.NewScanner(strings.NewReader(raw))
		for sc.Scan() {
			var e auditEntry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				return fmt.Errorf("audit line %q: %w", sc.Text(), err)
			}
			entries = append(entries, e)
		}
		if len(entries) < n {
			return fmt.Errorf("%d audit entries, want %d", len(entries), n)
		}
		return nil
	})
	return entries, raw
}

func TestAuditTrailOfSignInSequence(t *testing.T) {
	m := startMonitored(t)
	s := runSequence(t, m)

	// alice signs out
	alice := gatewaytest.NewBrowser(t)
	gw, _ := url.Parse(m.gw)
	alice.Client.Jar.SetCookies(gw, []*http.Cookie{{
		Name: "arrow_session", Value: s.aliceSession}})
	page := alice.Get(t, m.gw+"/.arrow/logout")
	action, form := gatewaytest.FormOf(t, page.Body)
	if r := alice.PostForm(t, m.gw+action, form); r.StatusCode != 200 {
		t.Fatalf("logout: %d", r.StatusCode)
	}

	const (
		info = "info"
		warn = "warn"
	)
	type fields map[string]string
	want := []struct {
		level, msg string
		fields     fields
	}{
		{info, "sign-in started", fields{"org": "acme",
			"email": "alice@acme.test"}},
		{info, "member provisioned", fields{"org": "acme",
			"email": "alice@acme.test", "how": "provisioned"}},
		{warn, "assertion rejected", fields{"org": "acme", "email": "",
			"reason": "replay", "reference": s.replayRef}},
		{info, "sign-in started", fields{"org": "acme",
			"email": "bob@acme.test"}},
		{info, "member provisioned", fields{"org": "acme",
			"email": "bob@acme.test", "how": "provisioned"}},
		{info, "sign-in started", fields{"org": "acme",
			"email": "carol@acme.test"}},
		{info, "seat denied", fields{"org": "acme",
			"email": "carol@acme.test", "seats": "2",
			"reference": s.seatRef}},
		{info, "sign-in started", fields{"org": "globex",
			"email": "erin@globex.test"}},
		{warn, "assertion rejected", fields{"org": "acme", "email": "",
			"reason": "unsolicited", "reference": s.crossRef}},
		{info, "session ended", fields{"org": "acme",
			"email": "alice@acme.test"}},
	}

	entries, raw := readAudit(t, m.auditLog, len(want))
	if len(entries) != len(want) {
		t.Errorf("%d audit entries, want %d:\n%s", len(entries), len(want),
			raw)
	}
	for i := range min(len(entries), len(want)) {
		e, w := entries[i], want[i]
		if e.get("logger") != "http.handlers.arrow_sso.audit" ||
			e.get("level") != w.level || e.get("msg") != w.msg {
			t.Errorf("entry %d: %s %s %q, want %s %q", i, e.get("logger"),
				e.get("level"), e.get("msg"), w.level, w.msg)
			continue
		}
		w.fields["remote_ip"] = "127.0.0.1"
		for k, v := range w.fields {
			if got := e.get(k); got != v {
				t.Errorf("entry %d (%s): %s = %q, want %q", i, w.msg, k,
					got, v)
			}
		}
	}

	// nothing that would let a reader of the log sign in as someone
	secrets := append([]string{"SAMLResponse", s.aliceSession},
		s.responses...)
	for _, secret := range secrets {
		if strings.Contains(raw, secret) {
			t.Errorf("the audit log contains %.20q...", secret)
		}
	}
}
