package demoapp

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("arrow_demo_app", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("arrow_demo_app",
		httpcaddyfile.Before, "respond")
}

// parseCaddyfile sets up the handler from Caddyfile tokens.
func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler,
	error) {
	m := new(Handler)
	if err := m.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return m, nil
}

// UnmarshalCaddyfile reads the arrow_demo_app directive, which takes no
// arguments and no block. Syntax:
//
//	arrow_demo_app
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.Errf("arrow_demo_app takes no arguments, got %q", d.Val())
	}
	if d.NextBlock(0) {
		return d.Err("arrow_demo_app takes no block")
	}
	return nil
}
