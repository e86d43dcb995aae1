package demoidp

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlidp"
	"go.uber.org/zap"
)

// sessionProvider is samlidp's cookie sessions with the login hint
// honoured: when the AuthnRequest names a subject, a session of someone
// else is not reused, and only that person may sign in. samlidp would
// answer both cases with an error Response, which is no help in a demo
// where people switch accounts all the time.
//
// The other methods of samlidp.Server, which single logout needs, are
// promoted unchanged.
type sessionProvider struct {
	*samlidp.Server
	idp *IDP
}

// GetSession returns the session of the person signing in, or nil once it
// has answered the request with the login page.
func (p *sessionProvider) GetSession(w http.ResponseWriter, r *http.Request,
	req *saml.IdpAuthnRequest) *saml.Session {
	hint := requestedEmail(&req.Request)
	if r.Method == http.MethodPost && r.ParseForm() == nil &&
		r.PostForm.Get("user") != "" {
		return p.signIn(w, r, req, hint)
	}

	if hint != "" && p.sessionEmail(r) != hint {
		// show the login page even if someone else has a session
		forced, saved := true, req.Request.ForceAuthn
		req.Request.ForceAuthn = &forced
		defer func() { req.Request.ForceAuthn = saved }()
	}
	return p.Server.GetSession(w, r, req)
}

// signIn checks the posted username against the hint, then lets samlidp
// check the password and start the session.
func (p *sessionProvider) signIn(w http.ResponseWriter, r *http.Request,
	req *saml.IdpAuthnRequest, hint string) *saml.Session {
	name := strings.ToLower(strings.TrimSpace(r.PostForm.Get("user")))
	r.PostForm.Set("user", name)

	u, err := p.idp.userByName(name)
	if err == nil && hint != "" && u.Email != hint {
		p.idp.logger.Info("sign-in as another person than requested",
			zap.String("user", u.Email), zap.String("requested", hint))
		toast := fmt.Sprintf("This sign-in was requested for %s. Sign in "+
			"as that person, or go back and type another email.", hint)
		p.idp.renderLogin(w, req, toast)
		return nil
	}

	session := p.Server.GetSession(w, r, req)
	if session != nil {
		p.idp.logger.Info("signed in", zap.String("user", session.NameID))
	}
	return session
}

// sessionEmail returns the email of the person whose samlidp session
// cookie r carries, or "" if there is none. samlidp names its cookie
// "session" and keeps the sessions under /sessions/ in its store.
func (p *sessionProvider) sessionEmail(r *http.Request) string {
	c, err := r.Cookie("session")
	if err != nil {
		return ""
	}
	var s saml.Session
	if err := p.Store.Get("/sessions/"+c.Value, &s); err != nil {
		return ""
	}
	return s.NameID
}

// requestedEmail returns the lower-case NameID of the subject an
// AuthnRequest names, or "".
func requestedEmail(req *saml.AuthnRequest) string {
	if req.Subject == nil || req.Subject.NameID == nil {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(req.Subject.NameID.Value))
}

// loginForm is what the login page is rendered with. samlidp renders it
// with a struct of the same fields.
type loginForm struct {
	Toast       string // an error to show, or ""
	URL         string // where the form posts to
	SAMLRequest string // the AuthnRequest, base64-encoded
	RelayState  string
}

// renderLogin writes the login page for req with toast.
func (idp *IDP) renderLogin(w http.ResponseWriter,
	req *saml.IdpAuthnRequest, toast string) {
	form := loginForm{
		Toast:       toast,
		URL:         idp.endpoint("/sso"),
		SAMLRequest: base64.StdEncoding.EncodeToString(req.RequestBuffer),
		RelayState:  req.RelayState,
	}
	var page bytes.Buffer
	if err := idp.server.LoginFormTemplate.Execute(&page, form); err != nil {
		idp.serveError(w, req.HTTPRequest, http.StatusInternalServerError,
			fmt.Errorf("rendering the login page: %w", err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = page.WriteTo(w)
}

// requestSummary is what the login page shows of an AuthnRequest.
type requestSummary struct {
	Issuer string // the service provider's entity ID
	Hint   string // the email of the requested subject, lower-case
}

// summarizeRequest decodes the base64 AuthnRequest the login page carries.
// It returns an empty summary for anything it cannot read: the request was
// already checked by samlidp, the page only shows it.
func summarizeRequest(encoded string) requestSummary {
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil || len(raw) == 0 {
		return requestSummary{}
	}
	var req saml.AuthnRequest
	if err := xml.Unmarshal(raw, &req); err != nil {
		return requestSummary{}
	}
	s := requestSummary{Hint: requestedEmail(&req)}
	if req.Issuer != nil {
		s.Issuer = req.Issuer.Value
	}
	return s
}

// loginTemplate returns the login page, which knows the demo accounts.
func (idp *IDP) loginTemplate() *template.Template {
	return pageTemplate("login", loginPage, template.FuncMap{
		"users":   func() []User { return idp.users },
		"request": summarizeRequest,
	})
}

// pageStyle is the style sheet of every page of the identity provider.
const pageStyle = `<style>
body { font-family: system-ui, sans-serif; line-height: 1.5;
  max-width: 42rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }
h1 { font-size: 1.6rem; margin-bottom: .25rem; }
.banner { background: #fff5d6; border: 1px solid #d9b44a;
  padding: .5rem 1rem; border-radius: 6px; }
.toast { background: #fde4e2; border: 1px solid #c9403a;
  padding: .5rem 1rem; border-radius: 6px; }
label { display: block; margin-top: .75rem; font-weight: 600; }
input[type=text], input[type=password] { width: 100%; font-size: 1rem;
  padding: .5rem; box-sizing: border-box; }
button { margin-top: 1rem; padding: .5rem 1.25rem; font-size: 1rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem;
  border-bottom: 1px solid #ddd; }
tr.requested { background: #e8f1ff; }
td form button { margin: 0; padding: .2rem .75rem; font-size: .9rem; }
code { font-size: .95em; word-break: break-all; }
</style>`

// loginPage is the login page. It is rendered by samlidp with the fields
// of loginForm, and by renderLogin.
const loginPage = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Demo identity provider</title>
` + pageStyle + `
</head>
<body>
{{- $req := request .SAMLRequest}}{{$form := .}}
<h1>Demo identity provider</h1>
<p class="banner">For demonstrations only: these accounts are fake and
their passwords are shown on purpose.</p>
{{- if $req.Issuer}}
<p>Signing in to <code>{{$req.Issuer}}</code></p>
{{- end}}
{{- if .Toast}}
<p class="toast" role="alert">{{.Toast}}</p>
{{- end}}
<form method="post" action="{{.URL}}">
<label for="user">Email</label>
<input id="user" type="text" name="user" value="{{$req.Hint}}"
  autocomplete="username" required{{if not $req.Hint}} autofocus{{end}}>
<label for="password">Password</label>
<input id="password" type="password" name="password"
  autocomplete="current-password" required{{if $req.Hint}} autofocus{{end}}>
<input type="hidden" name="SAMLRequest" value="{{.SAMLRequest}}">
<input type="hidden" name="RelayState" value="{{.RelayState}}">
<button type="submit">Sign in</button>
</form>
<h2>Demo accounts</h2>
<table>
<thead><tr><th>Email</th><th>Password</th><th>Name</th><th></th></tr></thead>
<tbody>
{{- range users}}
<tr{{if eq .Email $req.Hint}} class="requested"{{end}}>
<td><code>{{.Username}}</code></td>
<td><code>{{.Password}}</code></td>
<td>{{.Name}}</td>
<td><form method="post" action="{{$form.URL}}">
<input type="hidden" name="user" value="{{.Username}}">
<input type="hidden" name="password" value="{{.Password}}">
<input type="hidden" name="SAMLRequest" value="{{$form.SAMLRequest}}">
<input type="hidden" name="RelayState" value="{{$form.RelayState}}">
<button type="submit" aria-label="Sign in as {{.Name}}">Sign in</button>
</form></td>
</tr>
{{- end}}
</tbody>
</table>
</body>
</html>
`
