package caddymodule

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
)

//go:embed pages
var pageFiles embed.FS

// pageTemplates holds one template per page, each with the layout.
var pageTemplates = parsePages()

func parsePages() map[string]*template.Template {
	names := []string{"login", "out_of_seats", "not_invited",
		"unavailable", "denied", "logout"}
	out := make(map[string]*template.Template, len(names))
	for _, n := range names {
		out[n] = template.Must(template.ParseFS(pageFiles,
			"pages/layout.html", "pages/"+n+".html"))
	}
	return out
}

// page is what every page template may show.
type page struct {
	Base        string
	Title       string
	OrgName     string
	Contact     string
	BuySeatsURL string
	Message     string
	Email       string
	ReturnTo    string
	Reference   string
	CSRF        string
	SignedOut   bool
}

// securityHeaders are set on every page the gateway serves itself.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; "+
		"style-src 'self'; img-src 'self'; base-uri 'none'; "+
		"frame-ancestors 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

// renderPage writes the named page with the status code.
func (h *Handler) renderPage(w http.ResponseWriter, status int,
	name string, p page) {
	p.Base = h.BasePath
	var buf bytes.Buffer
	if err := pageTemplates[name].ExecuteTemplate(&buf, "layout",
		p); err != nil {
		// the templates are fixed, so this is a programming error
		h.logger.Error("rendering page: " + err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	securityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// problem is an RFC 9457 problem document with Arrowgate's extensions.
type problem struct {
	Type        string `json:"type,omitempty"`
	Title       string `json:"title"`
	Status      int    `json:"status"`
	Detail      string `json:"detail,omitempty"`
	Code        string `json:"code"`
	LoginURL    string `json:"login_url,omitempty"`
	Org         string `json:"org,omitempty"`
	Contact     string `json:"admin_contact,omitempty"`
	BuySeatsURL string `json:"buy_seats_url,omitempty"`
	Reference   string `json:"reference,omitempty"`
}

func writeProblem(w http.ResponseWriter, p problem) {
	if p.Type == "" {
		p.Type = "https://arrowgate.dev/problems/" + p.Code
	}
	securityHeaders(w.Header())
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// wantsJSON reports whether the client asked for JSON rather than a page.
func wantsJSON(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "json") &&
		!strings.Contains(accept, "text/html")
}

// newReference returns an ID shown to the person and written to the log,
// which joins what they saw to what happened.
func newReference() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	var b [10]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, len(b))
	for i, v := range b {
		out[i] = alphabet[int(v)%len(alphabet)]
	}
	return "ARW-" + string(out)
}

func (h *Handler) serveStatic(w http.ResponseWriter, name string) {
	data, err := pageFiles.ReadFile("pages/" + name)
	if err != nil || !strings.HasSuffix(name, ".css") {
		http.NotFound(w, nil)
		return
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(data)
}
