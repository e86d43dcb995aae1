// Package e2e runs the outside world of an end-to-end test on this machine:
// SimpleSAMLphp as an identity provider that shares no code with ours, and
// headless Chromium to walk through a sign-in as a person would.
//
// It is test support, imported only from _test.go files. A test starts an
// identity provider with [StartSimpleSAMLphp], hands its metadata to the
// service provider under test, opens a browser with [StartBrowser] and
// drives it with chromedp. Everything started is stopped by t.Cleanup.
//
// The tools come from Debian packages that .ci/install-e2e.sh installs. When
// one is missing, a test fails under CI=true, so that CI cannot go green
// without running it, and is skipped with a loud message elsewhere.
//
// The identity provider listens on 127.0.0.2, not 127.0.0.1. The browser
// treats the two addresses as different sites, so its POST of the SAML
// response to a service provider on 127.0.0.1 is a cross-site request, as
// it is in production, and the cookies of the two do not mix.
package e2e
