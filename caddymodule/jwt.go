package caddymodule

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/golang-jwt/jwt/v5"

	"github.com/arrowgate/arrowgate/provisioner"
)

// The signed identity header, and how long one is valid. It is made for
// each request, so a short life costs nothing and limits what a leaked
// one is worth.
const (
	headerAssertion     = "X-Arrow-Assertion"
	identityJWTLifetime = 60 * time.Second
)

// jwtKeyName is the store secret holding the ES256 key, so that every
// instance on the store signs with the same key and serves the same
// JWKS.
const jwtKeyName = "jwt-es256-key"

// identityClaims are the claims of an X-Arrow-Assertion token.
type identityClaims struct {
	jwt.RegisteredClaims
	Email    string `json:"email"`
	Org      string `json:"org"`
	MemberID string `json:"member_id"`
	Name     string `json:"name,omitempty"`
}

// jwtKey is the loaded signing key and its key ID (the RFC 7638
// thumbprint of its public key).
type jwtKey struct {
	priv *ecdsa.PrivateKey
	jwk  jsonWebKey
}

// jwtKeys loads the signing key from the store once.
type jwtKeys struct {
	mu  sync.Mutex
	key atomic.Pointer[jwtKey]
}

// jsonWebKey is the public part of an ES256 key as JWKS lists it.
type jsonWebKey struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// signingKey returns the ES256 key, loading or making it on first use.
func (h *Handler) signingKey(ctx context.Context) (*jwtKey, error) {
	if k := h.jwt.key.Load(); k != nil {
		return k, nil
	}
	h.jwt.mu.Lock()
	defer h.jwt.mu.Unlock()
	if k := h.jwt.key.Load(); k != nil {
		return k, nil
	}
	data, err := h.store.Secret(ctx, jwtKeyName, newES256KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading identity JWT key: %w", err)
	}
	k, err := parseES256Key(data)
	if err != nil {
		return nil, err
	}
	h.jwt.key.Store(k)
	return k, nil
}

// newES256KeyPEM makes a P-256 key, PKCS #8 in PEM.
func newES256KeyPEM() ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating identity JWT key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encoding identity JWT key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY",
		Bytes: der}), nil
}

var errJWTKey = errors.New("identity JWT key in the store is not a " +
	"P-256 key")

func parseES256Key(data []byte) (*jwtKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errJWTKey
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errJWTKey, err)
	}
	priv, ok := k.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errJWTKey
	}
	return &jwtKey{priv: priv, jwk: publicJWK(&priv.PublicKey)}, nil
}

// publicJWK describes pub as a JWK whose kid is its RFC 7638 thumbprint.
func publicJWK(pub *ecdsa.PublicKey) jsonWebKey {
	raw, _ := pub.Bytes() // 0x04 || X || Y, 32 bytes each for P-256
	b64 := base64.RawURLEncoding.EncodeToString
	k := jsonWebKey{Kty: "EC", Crv: "P-256", X: b64(raw[1:33]),
		Y: b64(raw[33:65]), Use: "sig", Alg: "ES256"}
	// the members in lexical order, no spaces, as RFC 7638 wants
	thumb := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` +
		k.X + `","y":"` + k.Y + `"}`))
	k.Kid = b64(thumb[:])
	return k
}

// setIdentityJWT adds X-Arrow-Assertion for the upstream when
// identity_jwt is on: who is calling, signed, valid for a minute.
func (h *Handler) setIdentityJWT(r *http.Request,
	s provisioner.Session) error {
	if !h.IdentityJWT {
		return nil
	}
	k, err := h.signingKey(r.Context())
	if err != nil {
		return err
	}
	now := h.now()
	site := origin(r)
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, identityClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    site + h.BasePath,
			Audience:  jwt.ClaimStrings{site},
			Subject:   s.MemberID,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(identityJWTLifetime)),
		},
		Email: s.Email, Org: s.OrgID, MemberID: s.MemberID, Name: s.Name,
	})
	tok.Header["kid"] = k.jwk.Kid
	signed, err := tok.SignedString(k.priv)
	if err != nil {
		return fmt.Errorf("signing identity JWT: %w", err)
	}
	r.Header.Set(headerAssertion, signed)
	return nil
}

// serveJWKS publishes the public key of X-Arrow-Assertion tokens at
// <base_path>/jwks.json, for upstreams to verify them.
func (h *Handler) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if !h.IdentityJWT {
		h.renderPage(w, http.StatusNotFound, "denied", page{
			Title:   "Page not found",
			Message: "identity_jwt is off, so there are no keys.",
		})
		return
	}
	k, err := h.signingKey(r.Context())
	if err != nil {
		h.unavailable(w, r, "", err)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_ = json.NewEncoder(w).Encode(struct {
		Keys []jsonWebKey `json:"keys"`
	}{[]jsonWebKey{k.jwk}})
}

// onOffArg reads one argument, on or off, into dst.
func onOffArg(d *caddyfile.Dispenser, dst *bool) error {
	name := d.Val()
	var v string
	if err := oneArg(d, &v); err != nil {
		return err
	}
	switch v {
	case "on":
		*dst = true
	case "off":
		*dst = false
	default:
		return d.Errf("%s takes on or off, not %q", name, v)
	}
	return nil
}
