package demoidp

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("arrow_demo_idp", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("arrow_demo_idp",
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

// UnmarshalCaddyfile reads the arrow_demo_idp directive. Every part is
// optional; with none, the defaults of Handler apply. Syntax:
//
//	arrow_demo_idp [<base_url>] {
//	    base_url         <url>
//	    user             <email> <password> [<display name>]
//	    service_provider <metadata url>...
//	}
//
// user and service_provider may be repeated. Any user line replaces the
// default accounts, any service_provider line the default service
// providers.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		if err := h.setBaseURL(d); err != nil {
			return err
		}
	}
	if d.NextArg() {
		return d.ArgErr()
	}

	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "base_url":
			err = h.parseBaseURL(d)
		case "user":
			err = h.parseUser(d)
		case "service_provider":
			err = h.parseServiceProviders(d)
		default:
			err = d.Errf("unknown subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parseBaseURL reads "base_url <url>".
func (h *Handler) parseBaseURL(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	if err := h.setBaseURL(d); err != nil {
		return err
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// setBaseURL sets the base URL from the current token.
func (h *Handler) setBaseURL(d *caddyfile.Dispenser) error {
	if h.BaseURL != "" {
		return d.Err("base URL given twice")
	}
	if _, err := parseBaseURL(d.Val()); err != nil {
		return d.WrapErr(err)
	}
	h.BaseURL = d.Val()
	return nil
}

// parseUser reads "user <email> <password> [<display name>]".
func (h *Handler) parseUser(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) < 2 || len(args) > 3 {
		return d.Errf("user needs <email> <password> [<display name>], "+
			"got %d arguments", len(args))
	}
	u := User{Email: args[0], Password: args[1]}
	if len(args) == 3 {
		u.Name = args[2]
	}
	n := normalizeUser(u)
	if err := checkUser(n); err != nil {
		return d.WrapErr(err)
	}
	for _, other := range h.Users {
		if normalizeUser(other).Username == n.Username {
			return d.Errf("user %s is given twice", n.Username)
		}
	}
	h.Users = append(h.Users, u)
	return nil
}

// parseServiceProviders reads "service_provider <metadata url>...".
func (h *Handler) parseServiceProviders(d *caddyfile.Dispenser) error {
	urls := d.RemainingArgs()
	if len(urls) == 0 {
		return d.ArgErr()
	}
	if err := checkServiceProviders(urls); err != nil {
		return d.WrapErr(err)
	}
	h.ServiceProviders = append(h.ServiceProviders, urls...)
	return nil
}
