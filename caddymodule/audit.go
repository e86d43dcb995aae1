package caddymodule

import (
	"net/http"

	"go.uber.org/zap"
)

// The audit trail is the log of the logger named
// "http.handlers.arrow_sso.audit" (see Handler.audit): one entry for
// each sign-in started, member provisioned, seat denied, person not
// invited, assertion rejected, session ended and member removed. Every
// entry carries the org, the email when known, the client address in
// remote_ip and, when the person was shown an error page, its reference.
// None carries a session ID, a cookie or an assertion.

// auditMemberRemoved records that a member lost their seat and their
// sessions: who was removed, by what (such as "admin api"), and the
// address the removal came from.
func (h *Handler) auditMemberRemoved(r *http.Request, org, email,
	memberID, by string) {
	h.audit().Info("member removed", zap.String("org", org),
		zap.String("email", email), zap.String("member_id", memberID),
		zap.String("by", by), zap.String("remote_ip", clientIP(r)))
}
