package demoidp

import (
	"bytes"
	"crypto/rand"
	"errors"
	"net/http"

	"github.com/crewjam/saml"
	"go.uber.org/zap"
)

// errorPage is what the error page is rendered with.
type errorPage struct {
	Status    int
	Title     string
	Advice    string
	Reference string
}

// serveError answers a request the SAML library could not complete: the
// detail goes to the log under a reference the page shows.
func (idp *IDP) serveError(w http.ResponseWriter, r *http.Request,
	status int, err error) {
	page := errorPage{
		Status:    status,
		Title:     http.StatusText(status),
		Advice:    adviceFor(err),
		Reference: rand.Text()[:10],
	}
	idp.logger.Warn("sign-in request refused",
		zap.String("reference", page.Reference), zap.Int("status", status),
		zap.String("path", r.URL.Path), zap.Error(err))

	var body bytes.Buffer
	if err := errorTemplate.Execute(&body, page); err != nil {
		http.Error(w, page.Title, status)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = body.WriteTo(w)
}

// adviceFor tells the person at the browser what can be done about err.
func adviceFor(err error) string {
	switch {
	case errors.Is(err, saml.ErrUnknownServiceProvider):
		return "The service that sent you here is not one this identity " +
			"provider knows, or its metadata could not be fetched. Check " +
			"that it is running and listed with service_provider, then " +
			"try again in a few seconds."
	case errors.Is(err, saml.ErrExpired), errors.Is(err, saml.ErrNotYetValid):
		return "The sign-in request is too old. Go back to the service " +
			"and sign in again."
	case errors.Is(err, saml.ErrInvalidSignature):
		return "The sign-in request's signature does not verify. If the " +
			"service was restarted with a new key, try again in a minute."
	}
	return "The sign-in request could not be handled. Go back to the " +
		"service and sign in again."
}

// serveIndex shows what the identity provider is and who can sign in.
func (idp *IDP) serveIndex(w http.ResponseWriter, r *http.Request) {
	data := struct {
		MetadataURL      string
		SSOURL           string
		LogoutURL        string
		Users            []User
		ServiceProviders []string
	}{
		MetadataURL:      idp.endpoint("/metadata"),
		SSOURL:           idp.endpoint("/sso"),
		LogoutURL:        idp.endpoint("/logout"),
		Users:            idp.users,
		ServiceProviders: idp.providers.urls,
	}

	var body bytes.Buffer
	if err := indexTemplate.Execute(&body, data); err != nil {
		idp.serveError(w, r, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = body.WriteTo(w)
}

var errorTemplate = pageTemplate("error", `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Demo identity provider</title>
`+pageStyle+`
</head>
<body>
<h1>Demo identity provider</h1>
<p class="toast" role="alert">{{.Status}} {{.Title}}</p>
<p>{{.Advice}}</p>
<p>Reference: <code>{{.Reference}}</code> (the log has the details)</p>
</body>
</html>
`, nil)

var indexTemplate = pageTemplate("index", `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo identity provider</title>
`+pageStyle+`
</head>
<body>
<h1>Demo identity provider</h1>
<p class="banner">For demonstrations only: these accounts are fake and
their passwords are shown on purpose.</p>
<p>Metadata and entity ID:
<a href="{{.MetadataURL}}"><code>{{.MetadataURL}}</code></a><br>
Single sign-on service: <code>{{.SSOURL}}</code></p>
<p>Sign-ins start at a service provider; this page only describes the
identity provider. <a href="{{.LogoutURL}}">Sign out of it</a>.</p>
<h2>Demo accounts</h2>
<table>
<thead><tr><th>Email</th><th>Password</th><th>Name</th></tr></thead>
<tbody>
{{- range .Users}}
<tr><td><code>{{.Username}}</code></td>
<td><code>{{.Password}}</code></td><td>{{.Name}}</td></tr>
{{- end}}
</tbody>
</table>
<h2>Service providers</h2>
{{- if .ServiceProviders}}
<ul>
{{- range .ServiceProviders}}
<li><code>{{.}}</code></li>
{{- end}}
</ul>
{{- else}}
<p>None: no sign-in request will be answered.</p>
{{- end}}
</body>
</html>
`, nil)
