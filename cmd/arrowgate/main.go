// Command arrowgate is Caddy with the Arrowgate single-sign-on gateway
// built in. It takes every command Caddy takes: run, adapt, validate,
// reload, list-modules and the rest.
//
// The build also holds the demo identity provider and the stand-in Arrow
// app (arrow_demo_idp, arrow_demo_app) so that the top-level Caddyfile
// runs a whole demo with nothing else installed. They are only active
// where a Caddyfile names them.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// Caddy's standard modules, the gateway and the demo's parts
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/arrowgate/arrowgate/caddymodule"
	_ "github.com/arrowgate/arrowgate/examples/demoapp"
	_ "github.com/arrowgate/arrowgate/examples/demoidp"
)

func main() {
	caddycmd.Main()
}
