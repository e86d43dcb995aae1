package caddymodule

import (
	"encoding/xml"
	"errors"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/arrowgate/arrowgate/provisioner"
)

// maxFormBytes caps a form body before anything decodes it. A SAML
// response of a large organization stays well below it.
const maxFormBytes = 256 << 10

// serveOwn serves the gateway's own paths; p is relative to BasePath.
func (h *Handler) serveOwn(w http.ResponseWriter, r *http.Request,
	p string) {
	if h.rateLimited(w, r, p) {
		return
	}
	switch {
	case p == "/login":
		h.serveLogin(w, r)
	case p == "/logout":
		h.serveLogout(w, r)
	case p == "/jwks.json":
		h.serveJWKS(w, r)
	case strings.HasPrefix(p, "/static/"):
		h.serveStatic(w, strings.TrimPrefix(p, "/static/"))
	case strings.HasPrefix(p, "/saml/"):
		h.serveSAML(w, r, strings.TrimPrefix(p, "/saml/"))
	default:
		h.renderPage(w, http.StatusNotFound, "denied", page{
			Title:   "Page not found",
			Message: "There is no such page.",
		})
	}
}

// serveSAML routes /saml/<org>/metadata and /saml/<org>/acs.
func (h *Handler) serveSAML(w http.ResponseWriter, r *http.Request,
	rest string) {
	orgID, endpoint, _ := strings.Cut(rest, "/")
	st, ok := h.orgs[orgID]
	if !ok {
		h.renderPage(w, http.StatusNotFound, "denied", page{
			Title:   "Page not found",
			Message: "There is no such organization.",
		})
		return
	}
	switch endpoint {
	case "metadata":
		h.serveMetadata(w, r, st)
	case "acs":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			h.renderPage(w, http.StatusMethodNotAllowed, "denied", page{
				Title:   "Sign-in could not be completed",
				Message: "Your identity provider must post its answer here.",
			})
			return
		}
		h.serveACS(w, r, st)
	default:
		h.renderPage(w, http.StatusNotFound, "denied", page{
			Title:   "Page not found",
			Message: "There is no such page.",
		})
	}
}

// serveMetadata publishes the organization's service provider metadata,
// which its identity provider administrator loads.
func (h *Handler) serveMetadata(w http.ResponseWriter, r *http.Request,
	st *orgState) {
	sp := h.serviceProvider(st, origin(r), st.idp.Load())
	data, err := xml.MarshalIndent(sp.Metadata(), "", "  ")
	if err != nil {
		h.logger.Error("encoding metadata", zap.String("org", st.ID),
			zap.Error(err))
		http.Error(w, "metadata unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(data)
}

// origin is the scheme and host the browser used to reach the gateway.
func origin(r *http.Request) string {
	scheme := "http"
	if isHTTPS(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// serveLogout shows a sign-out button (GET) or ends the session (POST
// with the session's CSRF token).
func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) {
	sess, err := h.currentSession(r)
	if err != nil && !errors.Is(err, provisioner.ErrNotFound) {
		h.unavailable(w, r, "", err)
		return
	}
	signedIn := err == nil

	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if !signedIn {
			h.renderPage(w, http.StatusOK, "logout", page{
				Title: "Signed out", SignedOut: true,
			})
			return
		}
		h.renderPage(w, http.StatusOK, "logout", page{
			Title: "Sign out", Email: sess.Email,
			CSRF: h.cookies.csrfToken(sess.IDHash),
		})
	case http.MethodPost:
		h.logout(w, r, sess, signedIn)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request,
	sess provisioner.Session, signedIn bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if !signedIn {
		h.clearSessionCookie(w, r)
		h.renderPage(w, http.StatusOK, "logout", page{
			Title: "Signed out", SignedOut: true,
		})
		return
	}
	token := r.PostFormValue("csrf")
	if token == "" || token != h.cookies.csrfToken(sess.IDHash) {
		h.logger.Warn("logout refused: missing or wrong csrf token",
			zap.String("org", sess.OrgID), zap.String("remote_ip",
				clientIP(r)))
		h.renderPage(w, http.StatusForbidden, "denied", page{
			Title:   "Sign-out was not confirmed",
			Message: "Use the sign-out button of the page you were on.",
		})
		return
	}
	c, _ := r.Cookie(sessionCookieName(r))
	if err := h.sessions.End(r.Context(), c.Value); err != nil {
		h.unavailable(w, r, "", err)
		return
	}
	h.audit().Info("session ended", zap.String("org", sess.OrgID),
		zap.String("email", sess.Email),
		zap.String("remote_ip", clientIP(r)))
	h.clearSessionCookie(w, r)
	h.renderPage(w, http.StatusOK, "logout", page{
		Title: "Signed out", SignedOut: true,
	})
}

// unavailable answers 503 when the store or an identity provider cannot
// be reached; the cause goes to the log under the reference.
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request,
	orgName string, cause error) {
	ref := newReference()
	h.logger.Error("sign-in unavailable", zap.String("reference", ref),
		zap.String("org", orgName), zap.Error(cause))
	w.Header().Set("Retry-After", "30")
	if wantsJSON(r) {
		writeProblem(w, problem{
			Status:    http.StatusServiceUnavailable,
			Code:      "unavailable",
			Title:     "Sign-in is temporarily unavailable",
			Reference: ref,
		})
		return
	}
	title := "Sign-in is temporarily unavailable"
	if orgName != "" {
		title = "Sign-in for " + orgName + " is temporarily unavailable"
	}
	h.renderPage(w, http.StatusServiceUnavailable, "unavailable", page{
		Title: title, OrgName: orgName, Reference: ref,
	})
}

// clientIP is the address of the client as Caddy determined it,
// trusting only the proxies the operator configured.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(),
		caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}
