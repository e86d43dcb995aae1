// Command arrowgate is Caddy with the Arrowgate single-sign-on gateway
// built in. It takes every command Caddy takes: run, adapt, validate,
// reload, list-modules and the rest.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// plug in Caddy's standard modules and the gateway
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/arrowgate/arrowgate/caddymodule"
)

func main() {
	caddycmd.Main()
}
