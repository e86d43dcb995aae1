package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("arrow_sso", parseCaddyfile)
	// beside Caddy's own authentication, so that it guards everything
	// that comes after it, respond and file_server included
	httpcaddyfile.RegisterDirectiveOrder("arrow_sso", httpcaddyfile.Before,
		"basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler,
	error) {
	var m Handler
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return &m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	arrow_sso {
//		store sqlite <path>
//		store postgres <dsn> {
//			max_conns <n>       # default 10
//			schema    <name>    # default: the DSN's search_path
//		}
//		base_path        <path>      # default /.arrow
//		session_lifetime <duration>  # default 12h
//		session_idle     <duration>  # default 2h
//		member_cache_ttl <duration>  # default 5s
//		identity_jwt     on|off      # default off
//		rate_limit       <n>/<duration>|off  # default 300/1m
//		sp_cert <file>
//		sp_key  <file>
//		org <id> {
//			name              <display name>
//			plan              starter|team|business|omnix
//			seats             <n>
//			domains           <domain...>
//			idp_metadata_url  <url>
//			idp_metadata_file <path>
//			email_attribute   <attribute name>  # default: the NameID
//			jit               on|off            # default off
//			buy_seats_url     <url>
//			admin_contact     <who>
//		}
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		if err := h.unmarshalOption(d); err != nil {
			return err
		}
	}
	if _, err := h.directory(); err != nil {
		return d.Errf("%v", err)
	}
	return nil
}

func (h *Handler) unmarshalOption(d *caddyfile.Dispenser) error {
	switch opt := d.Val(); opt {
	case "store":
		return h.Store.unmarshal(d)
	case "base_path":
		return oneArg(d, &h.BasePath)
	case "sp_cert":
		return oneArg(d, &h.SPCert)
	case "sp_key":
		return oneArg(d, &h.SPKey)
	case "session_lifetime":
		return durationArg(d, &h.SessionLifetime)
	case "session_idle":
		return durationArg(d, &h.SessionIdle)
	case "identity_jwt":
		return onOffArg(d, &h.IdentityJWT)
	case "rate_limit":
		return h.unmarshalRateLimit(d)
	case "member_cache_ttl":
		return durationArg(d, &h.MemberCacheTTL)
	case "org":
		oc, err := unmarshalOrg(d)
		if err != nil {
			return err
		}
		h.Orgs = append(h.Orgs, oc)
		return nil
	default:
		return d.Errf("arrow_sso: unknown option %q", opt)
	}
}

func (s *StoreConfig) unmarshal(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.Err("store: want sqlite <path> or postgres <dsn>")
	}
	s.Type = d.Val()
	var target string
	if err := oneArg(d, &target); err != nil {
		return err
	}
	switch s.Type {
	case "sqlite":
		s.Path = target
	case "postgres":
		s.DSN = target
	default:
		return d.Errf("store: unknown type %q (want sqlite or postgres)",
			s.Type)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := s.unmarshalOption(d); err != nil {
			return err
		}
	}
	return nil
}

func (s *StoreConfig) unmarshalOption(d *caddyfile.Dispenser) error {
	switch opt := d.Val(); {
	case s.Type != "postgres":
		return d.Errf("store %s: unknown option %q", s.Type, opt)
	case opt == "schema":
		return oneArg(d, &s.Schema)
	case opt == "max_conns":
		err := intArg(d, "store postgres: max_conns", &s.MaxConns)
		if err == nil && s.MaxConns < 1 {
			err = d.Errf("store postgres: max_conns must be at least 1")
		}
		return err
	default:
		return d.Errf("store postgres: unknown option %q", opt)
	}
}

func unmarshalOrg(d *caddyfile.Dispenser) (OrgConfig, error) {
	var oc OrgConfig
	if !d.NextArg() {
		return oc, d.Err("org: want an id, like org acme { ... }")
	}
	oc.ID = d.Val()
	if d.NextArg() {
		return oc, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := oc.unmarshalField(d); err != nil {
			return oc, err
		}
	}
	if _, err := oc.org(); err != nil {
		return oc, d.Errf("%v", err)
	}
	return oc, nil
}

func (oc *OrgConfig) unmarshalField(d *caddyfile.Dispenser) error {
	switch field := d.Val(); field {
	case "name":
		return oneArg(d, &oc.Name)
	case "plan":
		return oneArg(d, &oc.Plan)
	case "seats":
		if err := intArg(d, "org "+oc.ID+": seats", &oc.Seats); err != nil {
			return err
		}
		if oc.Seats < 0 {
			return d.Errf("org %s: seats must not be negative, got %d",
				oc.ID, oc.Seats)
		}
		return nil
	case "domains":
		oc.Domains = append(oc.Domains, d.RemainingArgs()...)
		if len(oc.Domains) == 0 {
			return d.Errf("org %s: domains needs at least one domain",
				oc.ID)
		}
		return nil
	case "idp_metadata_url":
		return oneArg(d, &oc.IDPMetadataURL)
	case "idp_metadata_file":
		return oneArg(d, &oc.IDPMetadataFile)
	case "email_attribute":
		return oneArg(d, &oc.EmailAttribute)
	case "buy_seats_url":
		return oneArg(d, &oc.BuySeatsURL)
	case "admin_contact":
		return oneArg(d, &oc.AdminContact)
	case "jit":
		var v string
		if err := oneArg(d, &v); err != nil {
			return err
		}
		switch v {
		case "on":
			oc.JIT = true
		case "off":
			oc.JIT = false
		default:
			return d.Errf("org %s: jit takes on or off, not %q", oc.ID, v)
		}
		return nil
	default:
		return d.Errf("org %s: unknown field %q", oc.ID, field)
	}
}

// oneArg reads exactly one argument into dst.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	if !d.NextArg() {
		return d.Errf("%s: want one value", name)
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.Errf("%s: want one value, got more", name)
	}
	return nil
}

// intArg reads one whole number; what names the setting in errors.
func intArg(d *caddyfile.Dispenser, what string, dst *int) error {
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return d.Errf("%s: %q is not a whole number", what, s)
	}
	*dst = n
	return nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, err := caddy.ParseDuration(s)
	if err != nil || v <= 0 {
		return d.Errf("%s: %q is not a positive duration, like 12h",
			name, s)
	}
	*dst = caddy.Duration(v)
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
