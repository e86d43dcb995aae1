package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/arrowgate/arrowgate/provisioner"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI adds organization administration to Caddy's admin endpoint
// (localhost:2019 by default), for operators and their tooling:
//
//	GET    /arrowgate/orgs                          plans and seats
//	GET    /arrowgate/orgs/<org>/members            members
//	DELETE /arrowgate/orgs/<org>/members/<email>    remove a member
//	POST   /arrowgate/orgs/<org>/invitations        {"email": "..."}
//
// Removing a member ends their sessions at once on this instance, and on
// every instance sharing a PostgreSQL store within a second.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.arrowgate",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes returns the admin routes.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{
		Pattern: "/arrowgate/",
		Handler: caddy.AdminHandlerFunc(serveAdmin),
	}}
}

// handlers finds the running handler of each organization; the newest
// configuration wins during a reload.
var handlers = struct {
	sync.Mutex
	byOrg map[string]*Handler
}{byOrg: map[string]*Handler{}}

func (h *Handler) register() {
	handlers.Lock()
	defer handlers.Unlock()
	for id := range h.orgs {
		handlers.byOrg[id] = h
	}
}

func (h *Handler) unregister() {
	handlers.Lock()
	defer handlers.Unlock()
	for id := range h.orgs {
		if handlers.byOrg[id] == h {
			delete(handlers.byOrg, id)
		}
	}
}

func handlerOf(org string) (*Handler, bool) {
	handlers.Lock()
	defer handlers.Unlock()
	h, ok := handlers.byOrg[org]
	return h, ok
}

// orgSummary is one organization as the admin API lists it.
type orgSummary struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Plan      string `json:"plan"`
	Seats     int    `json:"seats"`
	SeatsUsed int    `json:"seats_used"`
	JIT       bool   `json:"jit"`
}

func serveAdmin(w http.ResponseWriter, r *http.Request) error {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path,
		"/arrowgate/"), "/"), "/")
	if parts[0] != "orgs" {
		return adminErr(http.StatusNotFound, "no such resource")
	}
	if len(parts) == 1 {
		return listOrgs(w, r)
	}
	h, ok := handlerOf(parts[1])
	if !ok {
		return adminErr(http.StatusNotFound, "no org "+parts[1])
	}
	st := h.orgs[parts[1]]
	switch {
	case len(parts) == 3 && parts[2] == "members" &&
		r.Method == http.MethodGet:
		return h.adminMembers(w, r, st)
	case len(parts) == 4 && parts[2] == "members" &&
		r.Method == http.MethodDelete:
		return h.adminRemove(w, r, st, parts[3])
	case len(parts) == 3 && parts[2] == "invitations" &&
		r.Method == http.MethodPost:
		return h.adminInvite(w, r, st)
	}
	return adminErr(http.StatusNotFound, "no such resource or method")
}

func listOrgs(w http.ResponseWriter, r *http.Request) error {
	handlers.Lock()
	byOrg := make(map[string]*Handler, len(handlers.byOrg))
	for k, v := range handlers.byOrg {
		byOrg[k] = v
	}
	handlers.Unlock()

	out := make([]orgSummary, 0, len(byOrg))
	for id, h := range byOrg {
		st := h.orgs[id]
		used, err := h.store.SeatsUsed(r.Context(), id)
		if err != nil {
			return adminErr(http.StatusServiceUnavailable, err.Error())
		}
		out = append(out, orgSummary{ID: id, Name: st.DisplayName(),
			Plan: string(st.Plan), Seats: st.Seats, SeatsUsed: used,
			JIT: st.JIT})
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) adminMembers(w http.ResponseWriter, r *http.Request,
	st *orgState) error {
	ms, err := h.store.Members(r.Context(), st.ID)
	if err != nil {
		return adminErr(http.StatusServiceUnavailable, err.Error())
	}
	type member struct {
		ID, Email, Name, Source string
		CreatedAt, LastSignInAt string
	}
	out := make([]member, 0, len(ms))
	for _, m := range ms {
		last := ""
		if !m.LastSignInAt.IsZero() {
			last = m.LastSignInAt.Format("2006-01-02T15:04:05Z07:00")
		}
		out = append(out, member{ID: m.ID, Email: m.Email, Name: m.Name,
			Source: string(m.Source), LastSignInAt: last,
			CreatedAt: m.CreatedAt.Format("2006-01-02T15:04:05Z07:00")})
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) adminRemove(w http.ResponseWriter, r *http.Request,
	st *orgState, email string) error {
	email, _, err := provisioner.NormalizeEmail(email)
	if err != nil {
		return adminErr(http.StatusBadRequest, "not an email address")
	}
	m, err := h.store.Member(r.Context(), st.ID, email)
	if errors.Is(err, provisioner.ErrNotFound) {
		return adminErr(http.StatusNotFound, email+" is not a member")
	}
	if err == nil {
		err = h.sessions.RemoveMember(r.Context(), m.ID)
	}
	if err != nil {
		return adminErr(http.StatusServiceUnavailable, err.Error())
	}
	h.auditMemberRemoved(r, st.ID, email, m.ID, "admin api")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) adminInvite(w http.ResponseWriter, r *http.Request,
	st *orgState) error {
	var body struct {
		Email string `json:"email"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body,
		4096)).Decode(&body); err != nil {
		return adminErr(http.StatusBadRequest, "want {\"email\": ...}")
	}
	email, domain, err := provisioner.NormalizeEmail(body.Email)
	if err != nil || !st.HasDomain(domain) {
		return adminErr(http.StatusBadRequest, fmt.Sprintf(
			"%q is not an address in org %s's domains", body.Email, st.ID))
	}
	err = h.prov.Invite(r.Context(), st.Org, email)
	switch {
	case errors.Is(err, provisioner.ErrOutOfSeats):
		return adminErr(http.StatusConflict, "org "+st.ID+
			" has no free seat")
	case errors.Is(err, provisioner.ErrExists):
		return adminErr(http.StatusConflict, email+
			" is already a member or invited")
	case err != nil:
		return adminErr(http.StatusServiceUnavailable, err.Error())
	}
	h.audit().Info("member invited", zap.String("org", st.ID),
		zap.String("email", email), zap.String("by", "admin api"),
		zap.String("remote_ip", clientIP(r)))
	return writeJSON(w, http.StatusCreated, map[string]string{
		"org": st.ID, "email": email})
}

func adminErr(status int, msg string) error {
	return caddy.APIError{HTTPStatus: status, Message: msg}
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// Interface guards
var _ caddy.AdminRouter = AdminAPI{}
