package demoapp

import (
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// serve sends a GET for target with headers to the handler.
func serve(t *testing.T, target string,
	headers map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	if err := (Handler{}).ServeHTTP(rec, r, nil); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	return rec
}

var alice = map[string]string{
	HeaderEmail:    "alice@acme.test",
	HeaderOrg:      "acme",
	HeaderMemberID: "m_42",
	HeaderName:     "Alice Martin",
	HeaderCSRF:     "tok-123",
}

func TestPageShowsIdentity(t *testing.T) {
	t.Parallel()
	rec := serve(t, "/vault/items?folder=work&sort=name", alice)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct,
		"text/html") {
		t.Errorf("Content-Type %q", ct)
	}
	body := rec.Body.String()
	golden := filepath.Join("testdata", "signed-in.html")
	if *update {
		if err := os.WriteFile(golden, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if body != string(want) {
		t.Errorf("page differs from %s (run with -update to accept):\n%s",
			golden, body)
	}
	for _, part := range []string{"alice@acme.test", "acme", "m_42",
		"Alice Martin", "/vault/items?folder=work&amp;sort=name",
		`<form method="post" action="/.arrow/logout">`,
		`<input type="hidden" name="csrf" value="tok-123">`} {
		if !strings.Contains(body, part) {
			t.Errorf("page lacks %q", part)
		}
	}
}

func TestPageEscapesHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		header  string
		value   string
		target  string
		want    string
		notWant string
	}{
		{"markup in name", HeaderName, `<script>alert(1)</script>`, "/",
			"&lt;script&gt;alert(1)&lt;/script&gt;", "<script>"},
		{"apostrophe in name", HeaderName, "Dave O'Brien", "/",
			"Dave O&#39;Brien", "O'Brien"},
		{"quote in CSRF token", HeaderCSRF, `x"><b>y`, "/",
			`value="x&#34;&gt;&lt;b&gt;y"`, "<b>"},
		{"markup in org", HeaderOrg, "<i>acme</i>", "/",
			"&lt;i&gt;acme&lt;/i&gt;", "<i>"},
		{"markup in query", "", "", "/?q=%3Cb%3Ehi%3C/b%3E",
			"q=%3Cb%3Ehi%3C/b%3E", "<b>hi"},
	}
	for _, tt := range tests {
		headers := map[string]string{}
		for k, v := range alice {
			headers[k] = v
		}
		if tt.header != "" {
			headers[tt.header] = tt.value
		}
		body := serve(t, tt.target, headers).Body.String()
		if !strings.Contains(body, tt.want) {
			t.Errorf("%s: page lacks %q:\n%s", tt.name, tt.want, body)
		}
		if strings.Contains(body, tt.notWant) {
			t.Errorf("%s: page holds unescaped %q", tt.name, tt.notWant)
		}
	}
}

func TestJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		accept  string
		headers map[string]string
		want    Identity
	}{
		{"signed in", "application/json", alice, Identity{
			Email: "alice@acme.test", Org: "acme", MemberID: "m_42",
			Name: "Alice Martin", Path: "/api/me?x=1",
		}},
		{"among other types", "text/plain;q=0.5, application/json;q=0.9",
			alice, Identity{
				Email: "alice@acme.test", Org: "acme", MemberID: "m_42",
				Name: "Alice Martin", Path: "/api/me?x=1",
			}},
		{"no headers", "application/json", nil, Identity{
			Path: "/api/me?x=1", Error: NoIdentity,
		}},
	}
	for _, tt := range tests {
		headers := map[string]string{"Accept": tt.accept}
		for k, v := range tt.headers {
			headers[k] = v
		}
		rec := serve(t, "/api/me?x=1", headers)
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", tt.name, ct)
		}
		var got Identity
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("%s: %v in %s", tt.name, err, rec.Body.String())
		}
		if got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestJSONKeys(t *testing.T) {
	t.Parallel()
	rec := serve(t, "/", map[string]string{"Accept": "application/json",
		HeaderEmail: "a@b.test"})
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"email", "org", "member_id", "name",
		"path"} {
		if _, ok := got[key]; !ok {
			t.Errorf("JSON lacks %q: %s", key, rec.Body.String())
		}
	}
}

func TestMissingHeaders(t *testing.T) {
	t.Parallel()
	headers := map[string]string{HeaderOrg: "acme", HeaderCSRF: "tok"}
	body := serve(t, "/inbox", headers).Body.String()
	if !strings.Contains(body, NoIdentity) {
		t.Errorf("page does not say the headers are missing:\n%s", body)
	}
	if strings.Contains(body, "<form") {
		t.Error("page offers to sign out without a signed-in person")
	}
	if !strings.Contains(body, "/inbox") {
		t.Error("page does not show the path")
	}
}
