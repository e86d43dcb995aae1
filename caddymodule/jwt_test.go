package caddymodule_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/arrowgate/arrowgate/internal/gatewaytest"
	"github.com/arrowgate/arrowgate/internal/samlfixture"
)

// signedInBrowser signs email in through the fixture identity provider.
func (e *attackEnv) signedInBrowser(t *testing.T,
	email string) *gatewaytest.Browser {
	t.Helper()
	b := gatewaytest.NewBrowser(t)
	req := e.login(t, b, email)
	resp := e.valid(samlfixture.Acme, req, email)
	s := samlfixture.DsigSigner{IDP: e.idps[samlfixture.Acme]}
	r := e.post(t, b, req, sign(t, s, render(t, resp), resp.Assertion.ID,
		resp.ID))
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("signing in %s: %d\n%s", email, r.StatusCode, r.Body)
	}
	return b
}

// upstreamHeaders returns the headers the upstream saw for path.
func upstreamHeaders(t *testing.T, b *gatewaytest.Browser,
	u string) http.Header {
	t.Helper()
	r := b.Get(t, u)
	var h http.Header
	if err := json.Unmarshal([]byte(r.Body), &h); err != nil {
		t.Fatalf("upstream answer (%d): %v\n%s", r.StatusCode, err, r.Body)
	}
	return h
}

// jwks fetches the gateway's key set as an upstream would.
func jwks(t *testing.T, gw string) map[string]*ecdsa.PublicKey {
	t.Helper()
	r := gatewaytest.NewBrowser(t).Get(t, gw+"/.arrow/jwks.json")
	if r.StatusCode != http.StatusOK ||
		r.Header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("jwks.json: %d %s", r.StatusCode,
			r.Header.Get("Content-Type"))
	}
	var set struct {
		Keys []struct{ Kty, Crv, X, Y, Kid, Alg, Use string }
	}
	if err := json.Unmarshal([]byte(r.Body), &set); err != nil {
		t.Fatalf("jwks.json: %v\n%s", err, r.Body)
	}
	out := map[string]*ecdsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "EC" || k.Crv != "P-256" || k.Alg != "ES256" ||
			k.Use != "sig" || k.Kid == "" {
			t.Fatalf("unexpected key %+v", k)
		}
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		y, errY := base64.RawURLEncoding.DecodeString(k.Y)
		if errX != nil || errY != nil {
			t.Fatalf("key %s: bad coordinates", k.Kid)
		}
		out[k.Kid] = &ecdsa.PublicKey{Curve: elliptic.P256(),
			X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
	}
	return out
}

// verifyAssertion checks an X-Arrow-Assertion the way an upstream should:
// ES256 only, a key from the JWKS by kid, the issuer and audience of the
// site, and an expiry.
func verifyAssertion(token string, keys map[string]*ecdsa.PublicKey,
	site string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims,
		func(tok *jwt.Token) (any, error) {
			kid, _ := tok.Header["kid"].(string)
			if k, ok := keys[kid]; ok {
				return k, nil
			}
			return nil, fmt.Errorf("unknown kid %q", kid)
		},
		jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithIssuer(site+"/.arrow"),
		jwt.WithAudience(site),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt())
	return claims, err
}

func TestIdentityJWTVerifiesAsAnUpstreamWould(t *testing.T) {
	db := t.TempDir() + "/arrow.db"
	e := startAttackEnv(t, attackOptions{db: db,
		extra: "identity_jwt on"})
	b := e.signedInBrowser(t, attackerEmail)
	h := upstreamHeaders(t, b, e.gw+"/app")
	token := h.Get("X-Arrow-Assertion")
	if token == "" {
		t.Fatalf("identity_jwt on: the upstream got no X-Arrow-Assertion: "+
			"%v", h)
	}
	keys := jwks(t, e.gw)
	claims, err := verifyAssertion(token, keys, e.gw)
	if err != nil {
		t.Fatalf("the upstream cannot verify the assertion: %v", err)
	}
	if claims["email"] != attackerEmail || claims["org"] != "acme" ||
		claims["member_id"] != h.Get("X-Arrow-Member-Id") ||
		claims["sub"] != h.Get("X-Arrow-Member-Id") {
		t.Fatalf("claims %v do not match the identity headers %v", claims,
			h)
	}
	exp, _ := claims.GetExpirationTime()
	iat, _ := claims.GetIssuedAt()
	if life := exp.Sub(iat.Time); life <= 0 || life > time.Minute {
		t.Fatalf("the assertion lives %s, want at most a minute", life)
	}

	// what an upstream must refuse
	if _, err := verifyAssertion(token, keys, "https://other.example"); err == nil {
		t.Errorf("an assertion for %s verified for another audience",
			e.gw)
	}
	tampered := token[:len(token)-4] + "AAAA"
	if _, err := verifyAssertion(tampered, keys, e.gw); err == nil {
		t.Errorf("a tampered assertion verified")
	}
	forged := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"email": victimEmail, "iss": e.gw + "/.arrow", "aud": e.gw,
		"exp": time.Now().Add(time.Minute).Unix()})
	forgedToken, _ := forged.SignedString([]byte("guess"))
	if _, err := verifyAssertion(forgedToken, keys, e.gw); err == nil ||
		!errors.Is(err, jwt.ErrTokenSignatureInvalid) &&
			!errors.Is(err, jwt.ErrTokenUnverifiable) {
		t.Errorf("an HS256 forgery was not refused: %v", err)
	}

	// the key lives in the store: a restarted gateway on the same store
	// serves the same key, so tokens stay verifiable across instances
	e2 := startAttackEnv(t, attackOptions{db: db,
		extra: "identity_jwt on"})
	again := jwks(t, e2.gw)
	for kid := range keys {
		if again[kid] == nil || !again[kid].Equal(keys[kid]) {
			t.Fatalf("the key changed on restart: %v, was %v", again, keys)
		}
	}
}

func TestIdentityJWTOffByDefault(t *testing.T) {
	e := startAttackEnv(t, attackOptions{})
	b := e.signedInBrowser(t, attackerEmail)
	if h := upstreamHeaders(t, b, e.gw+"/app"); h.Get(
		"X-Arrow-Assertion") != "" {
		t.Fatalf("identity_jwt off, yet the upstream got an assertion")
	}
	r := b.Get(t, e.gw+"/.arrow/jwks.json")
	if r.StatusCode != http.StatusNotFound {
		t.Fatalf("identity_jwt off: jwks.json answered %d", r.StatusCode)
	}
}
