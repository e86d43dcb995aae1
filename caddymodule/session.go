package caddymodule

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/arrowgate/arrowgate/provisioner"
)

// The identity headers the upstream receives. Clients cannot send them:
// every X-Arrow- header is removed first.
const (
	headerEmail    = "X-Arrow-Email"
	headerOrg      = "X-Arrow-Org"
	headerMemberID = "X-Arrow-Member-Id"
	headerName     = "X-Arrow-Name"
	headerCSRF     = "X-Arrow-Csrf"
)

// currentSession returns the live session of the request's cookie, or
// provisioner.ErrNotFound.
func (h *Handler) currentSession(r *http.Request) (provisioner.Session,
	error) {
	c, err := r.Cookie(sessionCookieName(r))
	if err != nil || c.Value == "" || len(c.Value) > 64 {
		return provisioner.Session{}, provisioner.ErrNotFound
	}
	return h.sessions.Check(r.Context(), c.Value)
}

// setIdentity tells the upstream, and Caddy's access log, who is calling.
func (h *Handler) setIdentity(r *http.Request, s provisioner.Session) {
	r.Header.Set(headerEmail, s.Email)
	r.Header.Set(headerOrg, s.OrgID)
	r.Header.Set(headerMemberID, s.MemberID)
	if s.Name != "" {
		r.Header.Set(headerName, s.Name)
	}
	r.Header.Set(headerCSRF, h.cookies.csrfToken(s.IDHash))

	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.auth.user.id", s.Email)
		repl.Set("http.auth.user.org", s.OrgID)
		repl.Set("http.auth.user.member_id", s.MemberID)
	}
}

// challenge answers a request without a session: navigations go to the
// login page, anything else gets a 401 problem document.
func (h *Handler) challenge(w http.ResponseWriter, r *http.Request) {
	login := h.BasePath + "/login?return_to=" +
		url.QueryEscape(r.URL.RequestURI())
	if isNavigation(r) {
		http.Redirect(w, r, login, http.StatusFound)
		return
	}
	writeProblem(w, problem{
		Status:   http.StatusUnauthorized,
		Code:     "login_required",
		Title:    "Sign-in required",
		Detail:   "This request needs an Arrow session.",
		LoginURL: h.BasePath + "/login",
	})
}

// isNavigation reports whether a browser is loading a page.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// safeReturnTo keeps return_to a local path: anything that a browser
// could read as another origin, a scheme, or that holds control
// characters becomes /.
func safeReturnTo(s string) string {
	if s == "" || len(s) > 2048 || s[0] != '/' {
		return "/"
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return "/"
	}
	if hasControlOrBackslash(s) {
		return "/"
	}
	// a percent-encoded slash or backslash at the start is read as one
	// by some browsers and proxies
	u, err := url.PathUnescape(s)
	if err != nil || strings.HasPrefix(u, "//") || hasControlOrBackslash(u) {
		return "/"
	}
	parsed, err := url.Parse(s)
	if err != nil || parsed.Scheme != "" || parsed.Host != "" ||
		parsed.User != nil {
		return "/"
	}
	return s
}

func hasControlOrBackslash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\' {
			return true
		}
	}
	return false
}
