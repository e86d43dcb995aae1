package caddymodule

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	"go.uber.org/zap"

	"github.com/arrowgate/arrowgate/provisioner"
)

// metadataTimeout bounds one fetch of an identity provider's metadata.
const metadataTimeout = 10 * time.Second

// requestFetchTimeout bounds the fetch a sign-in tries when there is no
// metadata yet: the person waits for it.
const requestFetchTimeout = 3 * time.Second

// metadataRefresh is how often metadata that was fetched is fetched again.
const metadataRefresh = time.Hour

// spIdentity is the service provider's key pair, the same for every org.
type spIdentity struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// orgState is an organization with its identity provider's metadata,
// which may arrive after start-up.
type orgState struct {
	provisioner.Org
	cfg OrgConfig

	idp       atomic.Pointer[saml.EntityDescriptor]
	fetchedAt atomic.Int64  // unix seconds of the last successful fetch
	fetching  chan struct{} // holds a token while a fetch runs
}

// keyLoad guards the one successful load of the keys.
type keyLoad struct {
	mu   sync.Mutex
	done atomic.Bool
}

// loadKeys loads the service provider's key pair and the cookie key once.
// After the first success it costs one atomic load.
func (h *Handler) loadKeys(ctx context.Context) error {
	if h.keys.done.Load() {
		return nil
	}
	h.keys.mu.Lock()
	defer h.keys.mu.Unlock()
	if h.keys.done.Load() {
		return nil
	}
	if err := h.loadServiceProvider(ctx); err != nil {
		return err
	}
	key, err := h.store.Secret(ctx, "cookie-key", func() ([]byte, error) {
		k, err := randomToken(32)
		return []byte(k), err
	})
	if err != nil {
		return fmt.Errorf("loading cookie key: %w", err)
	}
	h.cookies = cookieSigner{key: key}
	h.keys.done.Store(true)
	return nil
}

// loadServiceProvider reads the configured key pair, or the one kept in
// the store, making it on first use.
func (h *Handler) loadServiceProvider(ctx context.Context) error {
	var certPEM, keyPEM []byte
	if h.SPCert != "" {
		var err error
		if certPEM, err = os.ReadFile(h.SPCert); err != nil {
			return fmt.Errorf("sp_cert: %w", err)
		}
		if keyPEM, err = os.ReadFile(h.SPKey); err != nil {
			return fmt.Errorf("sp_key: %w", err)
		}
	} else {
		bundle, err := h.store.Secret(ctx, "sp-keypair", newKeyPairPEM)
		if err != nil {
			return fmt.Errorf("loading service provider key: %w", err)
		}
		certPEM, keyPEM = bundle, bundle
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("service provider key pair: %w", err)
	}
	key, ok := pair.PrivateKey.(*rsa.PrivateKey)
	if !ok {
		return errors.New("service provider key: want an RSA key")
	}
	h.sp = spIdentity{key: key, cert: pair.Leaf}
	return nil
}

// newKeyPairPEM makes an RSA key and a ten-year self-signed certificate,
// PEM-encoded one after the other.
func newKeyPairPEM() ([]byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("generating serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Arrowgate service provider"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl,
		&key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating certificate: %w", err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	out = append(out, pem.EncodeToMemory(&pem.Block{
		Type:  "RSA PRIVATE KEY",
		Bytes: x509.MarshalPKCS1PrivateKey(key),
	})...)
	return out, nil
}

// loadOrgs prepares every organization. Metadata files must be readable
// now; metadata URLs are fetched in the background.
func (h *Handler) loadOrgs(ctx context.Context) error {
	h.orgs = make(map[string]*orgState, len(h.Orgs))
	for _, oc := range h.Orgs {
		o, _ := h.dir.Org(oc.ID)
		st := &orgState{Org: o, cfg: oc, fetching: make(chan struct{}, 1)}
		if oc.IDPMetadataFile != "" {
			if err := st.loadFile(); err != nil {
				return err
			}
		}
		h.orgs[o.ID] = st
	}
	return nil
}

func (st *orgState) loadFile() error {
	data, err := os.ReadFile(st.cfg.IDPMetadataFile)
	if err != nil {
		return fmt.Errorf("org %s: idp_metadata_file: %w", st.ID, err)
	}
	ed, err := samlsp.ParseMetadata(data)
	if err != nil {
		return fmt.Errorf("org %s: idp_metadata_file %s: %w", st.ID,
			st.cfg.IDPMetadataFile, err)
	}
	st.idp.Store(ed)
	st.fetchedAt.Store(time.Now().Unix())
	return nil
}

// errFetching means another fetch of the same metadata is still under
// way after the caller's wait.
var errFetching = errors.New("identity provider metadata is being " +
	"fetched")

// fetch gets the metadata from its URL once, after any fetch already
// under way.
func (st *orgState) fetch(ctx context.Context, client *http.Client,
	timeout time.Duration) error {
	st.fetching <- struct{}{}
	defer func() { <-st.fetching }()
	return st.fetchLocked(ctx, client, timeout)
}

// fetchSoon is fetch for a person waiting: it waits at most timeout for
// a fetch under way (errFetching after that), and is done if that fetch
// brought the metadata.
func (st *orgState) fetchSoon(ctx context.Context, client *http.Client,
	timeout time.Duration) error {
	wait := time.NewTimer(timeout)
	defer wait.Stop()
	select {
	case st.fetching <- struct{}{}:
	case <-wait.C:
		return errFetching
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-st.fetching }()
	if st.idp.Load() != nil {
		return nil
	}
	return st.fetchLocked(ctx, client, timeout)
}

func (st *orgState) fetchLocked(ctx context.Context, client *http.Client,
	timeout time.Duration) error {
	u, err := url.Parse(st.cfg.IDPMetadataURL)
	if err != nil {
		return fmt.Errorf("parsing idp_metadata_url: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ed, err := samlsp.FetchMetadata(ctx, client, *u)
	if err != nil {
		return fmt.Errorf("fetching identity provider metadata: %w", err)
	}
	st.idp.Store(ed)
	st.fetchedAt.Store(time.Now().Unix())
	return nil
}

// ready returns the identity provider's metadata, trying one short fetch
// now if there is none yet.
func (h *Handler) ready(ctx context.Context, st *orgState) (
	*saml.EntityDescriptor, error) {
	if ed := st.idp.Load(); ed != nil {
		return ed, nil
	}
	if st.cfg.IDPMetadataURL == "" {
		return nil, errors.New("no identity provider metadata")
	}
	err := st.fetchSoon(ctx, http.DefaultClient, requestFetchTimeout)
	if errors.Is(err, errFetching) {
		return nil, err
	}
	if err != nil {
		h.metrics.metadataFetchFailed(st.ID)
		return nil, err
	}
	return st.idp.Load(), nil
}

// watchMetadata fetches an organization's metadata until ctx ends:
// retrying with backoff while it fails, hourly once it works.
func (h *Handler) watchMetadata(ctx context.Context, st *orgState) {
	backoff := time.Second
	for {
		wait := metadataRefresh
		err := st.fetch(ctx, http.DefaultClient, metadataTimeout)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			h.metrics.metadataFetchFailed(st.ID)
			h.logger.Warn("identity provider metadata unavailable",
				zap.String("org", st.ID),
				zap.String("url", st.cfg.IDPMetadataURL),
				zap.Duration("retry_in", backoff),
				zap.Error(err))
			wait = backoff
			backoff = min(backoff*2, time.Minute)
		} else {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// startBackground starts the metadata watchers and the session sweeper.
func (h *Handler) startBackground(ctx context.Context) {
	for _, st := range h.orgs {
		if st.cfg.IDPMetadataURL != "" {
			go h.watchMetadata(ctx, st)
		}
	}
	go h.sweep(ctx)
	if n, ok := h.store.(provisioner.Notifier); ok {
		go h.listen(ctx, n)
	}
}

func (h *Handler) sweep(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := h.sessions.Sweep(ctx); err != nil {
				h.logger.Error("sweeping sessions", zap.Error(err))
			}
		}
	}
}

func (h *Handler) listen(ctx context.Context, n provisioner.Notifier) {
	err := n.Listen(ctx, h.sessions.Invalidate)
	if err != nil && ctx.Err() == nil {
		h.logger.Error("listening for invalidations", zap.Error(err))
	}
}

// serviceProvider returns the SAML service provider of an organization
// as seen at origin (scheme and host of the request), hardened.
func (h *Handler) serviceProvider(st *orgState, origin string,
	idp *saml.EntityDescriptor) *saml.ServiceProvider {
	base := origin + h.BasePath + "/saml/" + st.ID
	metadataURL, _ := url.Parse(base + "/metadata")
	acsURL, _ := url.Parse(base + "/acs")
	return &saml.ServiceProvider{
		EntityID:                    metadataURL.String(),
		Key:                         h.sp.key,
		Certificate:                 h.sp.cert,
		MetadataURL:                 *metadataURL,
		AcsURL:                      *acsURL,
		IDPMetadata:                 idp,
		AuthnNameIDFormat:           saml.EmailAddressNameIDFormat,
		AllowIDPInitiated:           false,
		RejectUnknownConditions:     true,
		RejectSHA1Signatures:        true,
		RequireSignedResponseForCBC: true,
		LimitRelayStateLength:       true,
		ReplayCache:                 replayCache{h.store},
	}
}

// replayCache is the SAML replay cache kept in the store, so that every
// instance on the store refuses an assertion any of them accepted.
type replayCache struct{ store provisioner.Store }

func (c replayCache) Consume(id string, expires time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.store.ConsumeOnce(ctx, "saml:"+id, expires)
	if errors.Is(err, provisioner.ErrReplayed) {
		return saml.ErrAssertionReplayed
	}
	return err
}
