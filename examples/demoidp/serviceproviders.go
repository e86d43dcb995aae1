package demoidp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	"go.uber.org/zap"
)

const (
	// fetchTimeout bounds the fetch of one service provider's metadata.
	fetchTimeout = 5 * time.Second

	// metadataMaxAge is how long fetched metadata is used before it is
	// fetched again, so that a gateway restarted with a new key or
	// endpoint is picked up soon. Fetching is cheap: the gateway is
	// usually on the same machine.
	metadataMaxAge = 10 * time.Second

	// refreshInterval is the least time between two fetches of all the
	// metadata, so that requests naming unknown entity IDs cannot make
	// the identity provider fetch without end.
	refreshInterval = 5 * time.Second

	// maxMetadataSize is the largest metadata document read, in bytes.
	maxMetadataSize = 1 << 20
)

// serviceProviders finds the metadata of the service providers among the
// configured metadata URLs, fetching them when needed.
type serviceProviders struct {
	urls   []string
	client *http.Client
	now    func() time.Time
	logger *zap.Logger

	// refreshing is held while the metadata is fetched, so that one
	// request fetches and the others wait for its result.
	refreshing sync.Mutex

	mu          sync.RWMutex                      // protects the fields below
	metadata    map[string]*saml.EntityDescriptor // by metadata URL
	refreshedAt time.Time                         // the last fetch of all
}

// GetServiceProvider returns the metadata whose entity ID is id, fetching
// the metadata again if it is unknown or old. It returns os.ErrNotExist
// when none of the configured URLs declares id.
func (p *serviceProviders) GetServiceProvider(r *http.Request,
	id string) (*saml.EntityDescriptor, error) {
	md, fresh := p.find(id)
	if md != nil && fresh {
		return md, nil
	}
	p.refresh(r.Context())
	if md, _ = p.find(id); md != nil {
		return md, nil
	}
	p.logger.Warn("unknown service provider", zap.String("entity_id", id),
		zap.Strings("metadata_urls", p.urls))
	return nil, os.ErrNotExist
}

// find returns the metadata whose entity ID is id, if any, and whether
// it was fetched less than metadataMaxAge ago.
func (p *serviceProviders) find(id string) (*saml.EntityDescriptor, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	fresh := p.now().Sub(p.refreshedAt) < metadataMaxAge
	for _, md := range p.metadata {
		if md.EntityID == id {
			return md, fresh
		}
	}
	return nil, fresh
}

// refresh fetches the metadata of every configured URL, unless that was
// done less than refreshInterval ago. A URL that cannot be fetched keeps
// its previous metadata.
func (p *serviceProviders) refresh(ctx context.Context) {
	p.refreshing.Lock()
	defer p.refreshing.Unlock()
	if !p.dueForRefresh() {
		return
	}

	fetched := make(map[string]*saml.EntityDescriptor, len(p.urls))
	for _, u := range p.urls {
		md, err := p.fetch(ctx, u)
		if err != nil {
			p.logger.Warn("fetching service provider metadata",
				zap.String("url", u), zap.Error(err))
			continue
		}
		fetched[u] = md
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.metadata == nil {
		p.metadata = make(map[string]*saml.EntityDescriptor, len(p.urls))
	}
	for u, md := range fetched {
		p.metadata[u] = md
	}
	p.refreshedAt = p.now()
}

// dueForRefresh reports whether the last fetch is refreshInterval old.
func (p *serviceProviders) dueForRefresh() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.refreshedAt.IsZero() ||
		p.now().Sub(p.refreshedAt) >= refreshInterval
}

// fetch returns the service provider metadata at rawURL.
func (p *serviceProviders) fetch(ctx context.Context,
	rawURL string) (*saml.EntityDescriptor, error) {
	// the request that started the fetch may go away; the others wait
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx),
		fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("making request: %w", err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("unexpected status %s", resp.Status)
	}

	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading metadata: %w", err)
	}
	if len(data) > maxMetadataSize {
		return nil, fmt.Errorf("metadata is over %d bytes", maxMetadataSize)
	}
	md, err := samlsp.ParseMetadata(data)
	if err != nil {
		return nil, fmt.Errorf("parsing metadata: %w", err)
	}
	if len(md.SPSSODescriptors) == 0 {
		return nil, errors.New("metadata has no SPSSODescriptor")
	}
	return md, nil
}

// checkServiceProviders checks that each metadata URL is an absolute
// http(s) URL.
func checkServiceProviders(urls []string) error {
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("service provider metadata URL: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("service provider metadata URL %q is not "+
				"an absolute http(s) URL", raw)
		}
	}
	return nil
}
