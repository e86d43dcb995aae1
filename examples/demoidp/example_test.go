package demoidp_test

import (
	"fmt"
	"log"
	"net/http"

	"github.com/arrowgate/arrowgate/examples/demoidp"
)

// A demo identity provider for the gateway's acme organization, with
// the default accounts and a new signing key.
func ExampleNew() {
	idp, err := demoidp.New(demoidp.Options{
		BaseURL: "http://localhost:8081",
		ServiceProviders: []string{
			"http://localhost:8080/.arrow/saml/acme/metadata",
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(idp.MetadataURL())
	fmt.Println(idp.Handles("/sso"), idp.Handles("/users/"))

	// serve it with net/http:
	_ = &http.Server{Addr: "localhost:8081", Handler: idp}
	// Output:
	// http://localhost:8081/metadata
	// true false
}
