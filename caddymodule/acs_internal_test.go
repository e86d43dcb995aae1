package caddymodule

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/arrowgate/arrowgate/internal/samlfixture"
	"github.com/arrowgate/arrowgate/provisioner"
	"github.com/arrowgate/arrowgate/provisioner/sqlite"
)

// replayCacheDown is a working store whose replay cache is out of reach,
// as when the database fails between a login and its answer.
type replayCacheDown struct{ provisioner.Store }

func (replayCacheDown) ConsumeOnce(context.Context, string,
	time.Time) error {
	return fmt.Errorf("consuming key: %w", provisioner.ErrUnavailable)
}

// TestReplayCacheOutOfReachSignsNobodyIn checks that an answer the store
// cannot check for replay is not accepted: the person sees 503 and may
// try again, and no session starts. Accepted unchecked, the same answer
// could be posted again. The same answer signs its person in while the
// replay cache works.
func TestReplayCacheOutOfReachSignsNobodyIn(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "arrow.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })

	err = replayCache{replayCacheDown{db}}.Consume("_a",
		time.Now().Add(time.Minute))
	if !errors.Is(err, provisioner.ErrUnavailable) {
		t.Errorf("Consume with the store out of reach: %v, want "+
			"ErrUnavailable", err)
	}

	for _, c := range []struct {
		name    string
		store   provisioner.Store
		status  int
		session bool
	}{
		{"replay_cache_works", db, http.StatusSeeOther, true},
		{"replay_cache_out_of_reach", replayCacheDown{db},
			http.StatusServiceUnavailable, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := postToACS(t, c.store, "eve@acme.test")
			var session bool
			for _, k := range w.Result().Cookies() {
				session = session || (k.Name == "__Host-arrow_session" &&
					k.MaxAge > 0)
			}
			if w.Code != c.status || session != c.session {
				t.Fatalf("got %d, session %v; want %d, session %v",
					w.Code, session, c.status, c.session)
			}
			if c.status == http.StatusServiceUnavailable &&
				w.Header().Get("Retry-After") == "" {
				t.Fatal("the 503 does not say when to try again")
			}
		})
	}
}

// postToACS posts a correct, signed answer for email to acme's ACS, on
// a handler that keeps its members, sessions and replay cache in store.
func postToACS(t *testing.T, store provisioner.Store,
	email string) *httptest.ResponseRecorder {
	t.Helper()
	acs := newFuzzACS(t)
	h, st := acs.h, acs.st
	h.store = store
	h.logger, h.auditLog = zap.NewNop(), zap.NewNop()
	h.prov = &provisioner.Provisioner{Store: store, Now: h.now}
	h.sessions = provisioner.NewSessions(store,
		provisioner.SessionConfig{CacheSize: 10})
	h.SessionLifetime = caddy.Duration(time.Hour)
	st.Plan, st.Seats, st.JIT = provisioner.Business, 5, true

	idp, err := samlfixture.LoadIDP(samlfixture.Acme)
	if err != nil {
		t.Fatal(err)
	}
	b := samlfixture.Builder{IDP: idp, Now: time.Now, Seed: t.Name()}
	resp := b.Response(samlfixture.Request{ID: fuzzRequestID,
		ACSURL:     fuzzACSURL,
		Audience:   strings.TrimSuffix(fuzzACSURL, "acs") + "metadata",
		RelayState: fuzzRelay}, email)
	doc, err := resp.XML()
	if err != nil {
		t.Fatal(err)
	}
	s := samlfixture.DsigSigner{IDP: idp}
	for _, id := range []string{resp.Assertion.ID, resp.ID} {
		if doc, err = s.Sign(context.Background(), doc, id); err != nil {
			t.Fatal(err)
		}
	}

	body := url.Values{"RelayState": {fuzzRelay}, "SAMLResponse": {
		base64.StdEncoding.EncodeToString(doc)}}.Encode()
	r := httptest.NewRequest(http.MethodPost, fuzzACSURL,
		strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(acs.cookie)
	w := httptest.NewRecorder()
	h.serveACS(w, r, st)
	return w
}
