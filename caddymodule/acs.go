package caddymodule

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"go.uber.org/zap"

	"github.com/arrowgate/arrowgate/provisioner"
)

// rejection is why an identity provider's answer was refused. Its reason
// is one of a small fixed set, fit for a log field or a metric label.
type rejection struct {
	reason string
	err    error
}

func (e *rejection) Error() string { return e.reason + ": " + e.err.Error() }
func (e *rejection) Unwrap() error { return e.err }

func reject(reason string, err error) *rejection {
	return &rejection{reason: reason, err: err}
}

// samlReasons maps crewjam/saml's error classes to rejection reasons, the
// most specific first.
var samlReasons = []struct {
	err    error
	reason string
}{
	{saml.ErrAssertionReplayed, "replay"},
	{saml.ErrRequestIDMismatch, "unsolicited"},
	{saml.ErrExpired, "expired"},
	{saml.ErrNotYetValid, "not_yet_valid"},
	{saml.ErrAudienceMismatch, "audience"},
	{saml.ErrDestinationMismatch, "destination"},
	{saml.ErrIssuerMismatch, "issuer"},
	{saml.ErrUntrustedCertificate, "signature"},
	{saml.ErrInvalidSignature, "signature"},
	{saml.ErrDecryptionFailed, "decryption"},
	{saml.ErrUnsupported, "unsupported"},
	{saml.ErrMalformedMessage, "malformed"},
	{saml.ErrMissingElement, "malformed"},
}

func samlReason(err error) string {
	var bad saml.ErrBadStatus
	if errors.As(err, &bad) {
		return "idp_status"
	}
	for _, s := range samlReasons {
		if errors.Is(err, s.err) {
			return s.reason
		}
	}
	return "invalid"
}

// serveACS is the assertion consumer service of one organization.
func (h *Handler) serveACS(w http.ResponseWriter, r *http.Request,
	st *orgState) {
	defer h.metrics.acsDone(st.ID, time.Now())
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)

	email, name, relayState, t, err := h.verify(r, st)
	if err != nil {
		h.refuse(w, r, st, email, err)
		return
	}
	h.metrics.assertionAccepted(st.ID)
	h.clearTrackingCookie(w, r, relayState)
	h.signIn(w, r, st, email, name, t.ReturnTo)
}

// verify checks the identity provider's answer and returns who it
// vouches for.
func (h *Handler) verify(r *http.Request, st *orgState) (email,
	name, relayState string, t tracked, err error) {
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			err = fmt.Errorf("the form is over %d bytes", tooLarge.Limit)
		}
		return "", "", "", t, reject("malformed",
			fmt.Errorf("reading form: %w", err))
	}
	form := r.PostForm
	if form.Has("SAMLart") || r.URL.Query().Has("SAMLResponse") {
		return "", "", "", t, reject("unsupported_binding",
			errors.New("only the HTTP-POST binding is accepted"))
	}

	// the answer must belong to a login this browser started for this
	// org: without it, anyone could sign a victim into their account
	relayState = form.Get("RelayState")
	t, err = h.readTrackingCookie(r, relayState, h.now())
	if err != nil {
		return "", "", "", t, reject("unsolicited", err)
	}
	if t.Org != st.ID {
		return "", "", "", t, reject("unsolicited",
			fmt.Errorf("login was started for org %s", t.Org))
	}

	idp := st.idp.Load()
	if idp == nil {
		return "", "", "", t, errNoMetadata
	}
	raw, err := base64.StdEncoding.DecodeString(form.Get("SAMLResponse"))
	if err != nil || len(raw) == 0 {
		return "", "", "", t, reject("malformed",
			errors.New("SAMLResponse is not base64"))
	}
	if err := checkResponseShape(raw); err != nil {
		return "", "", "", t, err
	}
	sp := h.serviceProvider(st, origin(r), idp)
	here, _ := url.Parse(origin(r) + r.URL.Path)
	assertion, err := sp.ParseXMLResponse(raw, []string{t.RequestID}, *here)
	if err != nil {
		return "", "", "", t, reject(samlReason(err), err)
	}

	email, name, err = identity(assertion, st.cfg.EmailAttribute)
	if err != nil {
		return "", "", "", t, reject("no_email", err)
	}
	email, domain, err := provisioner.NormalizeEmail(email)
	if err != nil {
		return email, "", "", t, reject("bad_email", err)
	}
	if !st.HasDomain(domain) {
		return email, "", "", t, reject("domain_not_allowed",
			fmt.Errorf("domain %s is not one of org %s's domains",
				domain, st.ID))
	}
	return email, name, relayState, t, nil
}

var errNoMetadata = errors.New("no identity provider metadata yet")

// identity reads the email (from the NameID, or the named attribute) and
// the display name from a verified assertion.
func identity(a *saml.Assertion, emailAttr string) (email, name string,
	err error) {
	if emailAttr == "" {
		if a.Subject == nil || a.Subject.NameID == nil {
			return "", "", errors.New("the assertion has no NameID")
		}
		email = a.Subject.NameID.Value
	} else {
		email = attribute(a, emailAttr)
	}
	if email == "" {
		return "", "", errors.New("the assertion carries no email")
	}
	for _, n := range []string{"displayName", "name",
		"http://schemas.microsoft.com/identity/claims/displayname",
		"urn:oid:2.16.840.1.113730.3.1.241"} {
		if name = attribute(a, n); name != "" {
			break
		}
	}
	return email, name, nil
}

// attribute returns the first value of the named attribute, matched by
// Name or FriendlyName.
func attribute(a *saml.Assertion, name string) string {
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			if at.Name != name && at.FriendlyName != name {
				continue
			}
			for _, v := range at.Values {
				if s := strings.TrimSpace(v.Value); s != "" {
					return s
				}
			}
		}
	}
	return ""
}

// refuse answers an identity provider's answer that was not accepted:
// the person sees no detail, the log gets the reason under a reference.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request,
	st *orgState, email string, err error) {
	// the store holds the replay cache: while it is out of reach the
	// answer cannot be checked, which is no fault of the person's
	if errors.Is(err, errNoMetadata) ||
		errors.Is(err, provisioner.ErrUnavailable) {
		h.unavailable(w, r, st.DisplayName(), err)
		return
	}
	reason := "invalid"
	var rj *rejection
	if errors.As(err, &rj) {
		reason = rj.reason
	}
	h.metrics.assertionRejected(st.ID, reason)
	ref := newReference()
	h.audit().Warn("assertion rejected", zap.String("org", st.ID),
		zap.String("email", email), zap.String("reason", reason),
		zap.String("reference", ref), zap.String("remote_ip", clientIP(r)),
		zap.String("detail", privateDetail(err)))

	code, msg := "assertion_rejected", "Your sign-in could not be "+
		"completed. Start again from the Arrow sign-in page."
	if reason == "domain_not_allowed" {
		code = "domain_not_allowed"
		msg = "Your identity provider vouched for an address that " +
			st.DisplayName() + " does not own, so you were not signed in."
	}
	if wantsJSON(r) {
		writeProblem(w, problem{
			Status: http.StatusForbidden, Code: code,
			Title: "Sign-in refused", Detail: msg, Reference: ref,
		})
		return
	}
	h.renderPage(w, http.StatusForbidden, "denied", page{
		Title: "Sign-in refused", OrgName: st.DisplayName(),
		Message: msg, Reference: ref,
	})
}

// signIn applies the plan's rules to a verified person and starts their
// session.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request,
	st *orgState, email, name, returnTo string) {
	m, outcome, err := h.prov.SignIn(r.Context(), st.Org, email, name)
	h.metrics.signedIn(st.ID, outcome, err)
	switch {
	case errors.Is(err, provisioner.ErrOutOfSeats):
		h.outOfSeats(w, r, st, email)
		return
	case errors.Is(err, provisioner.ErrNotInvited):
		h.notInvited(w, r, st, email)
		return
	case err != nil:
		h.unavailable(w, r, st.DisplayName(), err)
		return
	}
	if outcome != provisioner.OutcomeMember {
		h.audit().Info("member provisioned", zap.String("org", st.ID),
			zap.String("email", email), zap.String("member_id", m.ID),
			zap.String("how", string(outcome)),
			zap.String("remote_ip", clientIP(r)))
	}

	id, _, err := h.sessions.Start(r.Context(), m)
	if err != nil {
		h.unavailable(w, r, st.DisplayName(), err)
		return
	}
	h.setSessionCookie(w, r, id)
	securityHeaders(w.Header())
	http.Redirect(w, r, safeReturnTo(returnTo), http.StatusSeeOther)
}

func (h *Handler) outOfSeats(w http.ResponseWriter, r *http.Request,
	st *orgState, email string) {
	ref := newReference()
	h.audit().Info("seat denied", zap.String("org", st.ID),
		zap.String("email", email), zap.Int("seats", st.Seats),
		zap.String("reference", ref), zap.String("remote_ip", clientIP(r)))
	if wantsJSON(r) {
		writeProblem(w, problem{
			Status: http.StatusForbidden, Code: "out_of_seats",
			Title: "No free seat",
			Detail: st.DisplayName() + "'s Arrow plan has no free seat. " +
				"Ask " + st.Contact() + ".",
			Org: st.ID, Contact: st.AdminContact,
			BuySeatsURL: st.BuySeatsURL, Reference: ref,
		})
		return
	}
	h.renderPage(w, http.StatusForbidden, "out_of_seats", page{
		Title:       "No free seat in " + st.DisplayName() + "'s plan",
		OrgName:     st.DisplayName(),
		Contact:     st.Contact(),
		BuySeatsURL: st.BuySeatsURL,
		Reference:   ref,
	})
}

func (h *Handler) notInvited(w http.ResponseWriter, r *http.Request,
	st *orgState, email string) {
	ref := newReference()
	h.audit().Info("not invited", zap.String("org", st.ID),
		zap.String("email", email), zap.String("reference", ref),
		zap.String("remote_ip", clientIP(r)))
	if wantsJSON(r) {
		writeProblem(w, problem{
			Status: http.StatusForbidden, Code: "not_invited",
			Title: "Invitation needed",
			Detail: "Ask " + st.Contact() + " for an invitation to " +
				st.DisplayName() + "'s Arrow plan.",
			Org: st.ID, Contact: st.AdminContact, Reference: ref,
		})
		return
	}
	h.renderPage(w, http.StatusForbidden, "not_invited", page{
		Title:     "Ask your admin for an invitation",
		OrgName:   st.DisplayName(),
		Contact:   st.Contact(),
		Reference: ref,
	})
}

// privateDetail is the cause of a refusal for the log. crewjam/saml hides
// it behind "Authentication failed" for the user; operators need it. It
// names what was wrong, never the assertion itself.
func privateDetail(err error) string {
	var ire *saml.InvalidResponseError
	if errors.As(err, &ire) && ire.PrivateErr != nil {
		return ire.PrivateErr.Error()
	}
	return err.Error()
}
