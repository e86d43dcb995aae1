package e2e

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sspWebRoot is where Debian's simplesamlphp package keeps the pages.
const sspWebRoot = "/usr/share/simplesamlphp/www"

// defaultSSPHost is the loopback address the identity provider listens on
// unless told otherwise: another site than 127.0.0.1 for the browser.
const defaultSSPHost = "127.0.0.2"

// sspStartTimeout bounds how long SimpleSAMLphp may take to answer.
const sspStartTimeout = 20 * time.Second

// SSPUser is a person who can sign in at the test identity provider.
type SSPUser struct {
	// Username is what the person types in the login form. It must not be
	// empty nor contain a colon.
	Username string

	// Password is what the person types in the login form.
	Password string

	// Email is sent as the NameID, in the emailAddress format, and as the
	// email attribute.
	Email string

	// Name is sent as the displayName attribute.
	Name string
}

// SSPServiceProvider is a service provider the identity provider answers.
type SSPServiceProvider struct {
	// EntityID names the service provider, as its AuthnRequests do.
	EntityID string

	// ACSURL is where the browser posts the signed SAML response
	// (HTTP-POST binding). SimpleSAMLphp refuses a request that asks for
	// any other address.
	ACSURL string
}

// SSPConfig says what the test identity provider knows.
type SSPConfig struct {
	// Users can sign in with exampleauth:UserPass.
	Users []SSPUser

	// ServiceProviders are the only ones it answers.
	ServiceProviders []SSPServiceProvider

	// Host is the loopback address it listens on. Empty means 127.0.0.2,
	// another site than 127.0.0.1 for the browser, as a real identity
	// provider is.
	Host string
}

// SSP is a running SimpleSAMLphp identity provider, stopped when the test
// that started it ends.
type SSP struct {
	// BaseURL is its root, such as http://127.0.0.2:41234/, with the slash.
	BaseURL string

	// EntityID names it in its metadata and its responses; it is the same
	// as MetadataURL.
	EntityID string

	// MetadataURL serves its SAML metadata, for idp_metadata_url.
	MetadataURL string

	// SSOURL receives AuthnRequests. The metadata offers it with the
	// HTTP-Redirect binding only.
	SSOURL string

	metadata []byte
	logDir   string
}

// StartSimpleSAMLphp writes a private configuration for SimpleSAMLphp
// under t.TempDir, with a fresh signing key, serves it with PHP's built-in
// web server on a free port, and returns once its metadata answers. It
// stops the server when the test ends, and logs the tail of its logs then
// if the test failed.
//
// Without php or SimpleSAMLphp the test fails under CI=true and is skipped
// elsewhere.
func StartSimpleSAMLphp(t testing.TB, cfg SSPConfig) *SSP {
	t.Helper()
	php := requireSimpleSAMLphp(t)
	if err := cfg.validate(); err != nil {
		t.Fatalf("e2e: SimpleSAMLphp configuration: %v", err)
	}
	site, err := newSSPSite(t.TempDir(), cfg)
	if err != nil {
		t.Fatalf("e2e: preparing SimpleSAMLphp: %v", err)
	}
	host := cmp.Or(cfg.Host, defaultSSPHost)

	ssp, srv, err := serveSSP(t.Context(), php, site, host)
	if err != nil {
		t.Fatalf("e2e: starting SimpleSAMLphp: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("SimpleSAMLphp logs:\n%s", ssp.LogTail())
		}
		srv.stop()
	})
	return ssp
}

// MetadataXML returns the identity provider's SAML metadata, as fetched
// when it started. The caller may keep or change the slice.
func (s *SSP) MetadataXML() []byte {
	return append([]byte(nil), s.metadata...)
}

// LogTail returns the last lines of SimpleSAMLphp's log, PHP's error log
// and the web server's request log, for a failure message.
func (s *SSP) LogTail() string {
	var b strings.Builder
	for _, name := range []string{sspLogName, phpErrorLogName,
		phpServerLogName} {
		fmt.Fprintf(&b, "--- %s ---\n", name)
		b.WriteString(tail(filepath.Join(s.logDir, name), 30))
	}
	return b.String()
}

// validate refuses a configuration SimpleSAMLphp would misread.
func (c SSPConfig) validate() error {
	for _, u := range c.Users {
		if u.Username == "" || strings.Contains(u.Username, ":") {
			return fmt.Errorf("username %q: empty or with a colon",
				u.Username)
		}
	}
	for _, sp := range c.ServiceProviders {
		if sp.EntityID == "" || sp.ACSURL == "" {
			return fmt.Errorf("service provider %q: entity ID and ACS URL "+
				"are required", sp.EntityID)
		}
	}
	if c.Host != "" {
		ip := net.ParseIP(c.Host)
		if ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("host %q: not a loopback address", c.Host)
		}
	}
	return nil
}

// serveSSP starts PHP on a free port of host and waits for the metadata.
// Another process may take the port between the probe and PHP's bind, so
// a lost race is tried again on a new port.
func serveSSP(ctx context.Context, php string, site *sspSite,
	host string) (*SSP, *phpServer, error) {
	ctx, cancel := context.WithTimeout(ctx, sspStartTimeout)
	defer cancel()

	for attempt := 1; ; attempt++ {
		port, err := freePort(host)
		if err != nil {
			return nil, nil, err
		}
		addr := net.JoinHostPort(host, port)
		if err := site.writeConfig("http://" + addr + "/"); err != nil {
			return nil, nil, err
		}
		srv, err := startPHPServer(php, site, addr)
		if err != nil {
			return nil, nil, err
		}
		ssp := newSSP(site)
		err = ssp.waitReady(ctx, srv)
		if err == nil {
			return ssp, srv, nil
		}
		srv.stop()
		if attempt == 3 || !srv.lostPortRace() {
			return nil, nil, fmt.Errorf("%w\n%s", err, ssp.LogTail())
		}
	}
}

// newSSP describes the instance site configures.
func newSSP(site *sspSite) *SSP {
	return &SSP{
		BaseURL:     site.BaseURL,
		EntityID:    site.EntityID,
		MetadataURL: site.BaseURL + "saml2/idp/metadata.php",
		SSOURL:      site.BaseURL + "saml2/idp/SSOService.php",
		logDir:      site.LogDir,
	}
}

// waitReady polls the metadata URL until it serves metadata, the server
// exits or ctx ends.
func (s *SSP) waitReady(ctx context.Context, srv *phpServer) error {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		body, err := fetch(ctx, client, s.MetadataURL)
		if err == nil && strings.Contains(string(body), "EntityDescriptor") {
			s.metadata = body
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)",
				s.MetadataURL, ctx.Err(), err)
		case <-srv.exited:
			return errors.New("php exited before serving the metadata")
		case <-tick.C:
		}
	}
}

// fetch returns the body of a 200 answer to a GET of url.
func fetch(ctx context.Context, client *http.Client,
	url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}

// requireSimpleSAMLphp returns the path of php once it is sure php, its
// dom extension and SimpleSAMLphp are here; otherwise it stops the test.
func requireSimpleSAMLphp(t testing.TB) string {
	t.Helper()
	php, err := exec.LookPath("php")
	if err != nil {
		missingTool(t, "php", "Debian package php-cli")
	}
	_, err = os.Stat(filepath.Join(sspWebRoot, "_include.php"))
	if err != nil {
		missingTool(t, "SimpleSAMLphp", "Debian package simplesamlphp")
	}
	check := exec.Command(php, "-r",
		`exit(extension_loaded("dom") ? 0 : 3);`)
	if err := check.Run(); err != nil {
		missingTool(t, "PHP's dom extension", "Debian package php-xml")
	}
	return php
}

// freePort returns a TCP port of host that was free a moment ago.
func freePort(host string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("finding a free port on %s: %w", host, err)
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// tail returns the last n lines of the file at path, or a note that it
// cannot be read.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)\n", err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}
