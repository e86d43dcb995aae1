package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/crewjam/saml"
	"go.uber.org/zap"

	"github.com/arrowgate/arrowgate/provisioner"
)

// serveLogin shows the email form (GET) or starts the sign-in at the
// organization's identity provider (POST).
func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.renderPage(w, http.StatusOK, "login", page{
			Title:    "Sign in to Arrow",
			ReturnTo: safeReturnTo(r.URL.Query().Get("return_to")),
		})
	case http.MethodPost:
		h.startLogin(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// startLogin finds the organization of the typed email and sends the
// browser to its identity provider.
func (h *Handler) startLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.loginMessage(w, http.StatusBadRequest, "", "/",
			"The form could not be read. Please try again.")
		return
	}
	typed := r.PostForm.Get("email")
	returnTo := safeReturnTo(r.PostForm.Get("return_to"))

	email, domain, err := provisioner.NormalizeEmail(typed)
	if err != nil {
		h.loginMessage(w, http.StatusBadRequest, typed, returnTo,
			"That does not look like an email address. Type your "+
				"work email, like name@company.com.")
		return
	}
	org, ok := h.dir.ForDomain(domain)
	if !ok {
		h.loginMessage(w, http.StatusNotFound, typed, returnTo,
			fmt.Sprintf("No Arrow plan here signs in with SSO for %s. "+
				"Check the address, or ask your administrator how "+
				"your company signs in to Arrow.", domain))
		return
	}
	st := h.orgs[org.ID]

	idp, err := h.ready(r.Context(), st)
	if err != nil {
		h.unavailable(w, r, org.DisplayName(), err)
		return
	}
	h.redirectToIDP(w, r, st, idp, email, returnTo)
}

func (h *Handler) loginMessage(w http.ResponseWriter, status int,
	typed, returnTo, msg string) {
	h.renderPage(w, status, "login", page{
		Title:    "Sign in to Arrow",
		Message:  msg,
		Email:    typed,
		ReturnTo: returnTo,
	})
}

// redirectToIDP makes the AuthnRequest, remembers it in the tracking
// cookie and redirects to the identity provider.
func (h *Handler) redirectToIDP(w http.ResponseWriter, r *http.Request,
	st *orgState, idp *saml.EntityDescriptor, email, returnTo string) {
	sp := h.serviceProvider(st, origin(r), idp)
	req, err := sp.MakeAuthenticationRequest(
		sp.GetSSOBindingLocation(saml.HTTPRedirectBinding),
		saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		h.unavailable(w, r, st.DisplayName(),
			fmt.Errorf("making authn request: %w", err))
		return
	}
	// the email goes along as the requested subject and as login_hint,
	// so the identity provider can pre-fill its form
	req.Subject = &saml.Subject{NameID: &saml.NameID{
		Format: string(saml.EmailAddressNameIDFormat),
		Value:  email,
	}}
	relayState, err := randomToken(16)
	if err != nil {
		h.unavailable(w, r, st.DisplayName(), err)
		return
	}
	target, err := req.Redirect(relayState, sp)
	if err != nil {
		h.unavailable(w, r, st.DisplayName(),
			fmt.Errorf("encoding authn request: %w", err))
		return
	}
	// appended, so the signed part of the query stays as it was
	target.RawQuery += "&login_hint=" + url.QueryEscape(email)

	err = h.setTrackingCookie(w, r, relayState, tracked{
		Org:       st.ID,
		RequestID: req.ID,
		ReturnTo:  returnTo,
		Expires:   h.now().Add(trackingLifetime).Unix(),
	})
	if err != nil {
		h.unavailable(w, r, st.DisplayName(), err)
		return
	}
	h.audit().Info("sign-in started", zap.String("org", st.ID),
		zap.String("email", email), zap.String("remote_ip", clientIP(r)))
	h.metrics.signInStarted(st.ID)
	securityHeaders(w.Header())
	http.Redirect(w, r, target.String(), http.StatusFound)
}
