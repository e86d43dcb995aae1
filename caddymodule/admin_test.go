package caddymodule_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/arrowgate/arrowgate/internal/gatewaytest"
)

func adminDo(t *testing.T, method, url, payload string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(payload))
	if payload != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func TestAdminAPIRemovesAndInvites(t *testing.T) {
	admin := fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))
	e := startEnv(t, envOptions{seats: 2, admin: admin})
	api := "http://" + admin + "/arrowgate/orgs"

	alice := gatewaytest.NewBrowser(t)
	alice.SignIn(t, e.gw, "/", "alice@acme.test")

	status, body := adminDo(t, http.MethodGet, api, "")
	if status != 200 || !strings.Contains(body, `"id":"acme"`) ||
		!strings.Contains(body, `"seats":2,"seats_used":1`) {
		t.Fatalf("GET orgs: %d %s", status, body)
	}

	status, body = adminDo(t, http.MethodPost, api+"/acme/invitations",
		`{"email":"Bob@ACME.test"}`)
	if status != http.StatusCreated ||
		!strings.Contains(body, "bob@acme.test") {
		t.Fatalf("invite bob: %d %s", status, body)
	}
	status, body = adminDo(t, http.MethodPost, api+"/acme/invitations",
		`{"email":"carol@acme.test"}`)
	if status != http.StatusConflict ||
		!strings.Contains(body, "no free seat") {
		t.Fatalf("invite on a full plan: want 409, got %d %s", status, body)
	}
	status, _ = adminDo(t, http.MethodPost, api+"/acme/invitations",
		`{"email":"eve@evil.test"}`)
	if status != http.StatusBadRequest {
		t.Fatalf("invite outside the org's domains: want 400, got %d",
			status)
	}

	status, body = adminDo(t, http.MethodDelete,
		api+"/acme/members/alice@acme.test", "")
	if status != http.StatusNoContent {
		t.Fatalf("remove alice: %d %s", status, body)
	}
	if r := alice.Get(t, e.gw+"/"); r.StatusCode != http.StatusFound {
		t.Fatalf("removed member still gets in: %d", r.StatusCode)
	}
	status, _ = adminDo(t, http.MethodDelete,
		api+"/acme/members/alice@acme.test", "")
	if status != http.StatusNotFound {
		t.Fatalf("removing a non-member: want 404, got %d", status)
	}
	if ms := e.members(t, "acme"); len(ms) != 0 {
		t.Fatalf("members after removal: %v", ms)
	}
}
