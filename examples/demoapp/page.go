package demoapp

import "html/template"

// page is what the HTML page is rendered with.
type page struct {
	Identity
	CSRF   string // the token the sign-out form must carry
	Logout string // where the sign-out form posts to
}

// pageTemplate is the page of the demo app. html/template escapes every
// value: the identity headers are text, never markup.
var pageTemplate = template.Must(template.New("app").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Arrow (demo)</title>
<style>
body { font-family: system-ui, sans-serif; line-height: 1.5;
  max-width: 42rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }
h1 { font-size: 1.6rem; }
dl { display: grid; grid-template-columns: max-content 1fr;
  gap: .25rem 1rem; }
dt { font-weight: 600; }
dd { margin: 0; word-break: break-all; }
.warning { background: #fde4e2; border: 1px solid #c9403a;
  padding: .5rem 1rem; border-radius: 6px; }
button { padding: .5rem 1.25rem; font-size: 1rem; }
</style>
</head>
<body>
<h1>Arrow (demo)</h1>
{{- if .Error}}
<p class="warning" role="alert">{{.Error}}</p>
<dl>
<dt>Path</dt><dd><code>{{.Path}}</code></dd>
</dl>
{{- else}}
<p>Signed in as
<strong>{{if .Name}}{{.Name}}{{else}}{{.Email}}{{end}}</strong>.</p>
<dl>
<dt>Email</dt><dd>{{.Email}}</dd>
<dt>Name</dt><dd>{{.Name}}</dd>
<dt>Organization</dt><dd>{{.Org}}</dd>
<dt>Member ID</dt><dd><code>{{.MemberID}}</code></dd>
<dt>Path</dt><dd><code>{{.Path}}</code></dd>
</dl>
<form method="post" action="{{.Logout}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit">Sign out</button>
</form>
{{- end}}
</body>
</html>
`))
