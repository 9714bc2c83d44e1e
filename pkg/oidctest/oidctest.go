// Package oidctest runs a real OpenID Connect issuer on loopback for tests:
// a discovery document, a JWKS, and ID tokens signed with the published key.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Signing algorithms an Issuer can use.
const (
	RS256 = "RS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// Issuer is an OpenID Connect issuer serving /.well-known/openid-configuration
// and /jwks over plain http on loopback.
type Issuer struct {
	srv *httptest.Server
	alg string

	mu          sync.Mutex
	key         crypto.Signer
	kid         string
	keys        int // keys generated so far, for distinct key ids
	jwksFetches int
}

// Option configures an Issuer.
type Option func(*Issuer)

// WithAlgorithm makes the issuer sign with alg (RS256, the default; ES256;
// EdDSA).
func WithAlgorithm(alg string) Option {
	return func(i *Issuer) { i.alg = alg }
}

// NewIssuer starts an issuer, stopped when t's test ends.
func NewIssuer(t testing.TB, opts ...Option) *Issuer {
	t.Helper()
	i := &Issuer{alg: RS256}
	for _, o := range opts {
		o(i)
	}
	i.key, i.kid = i.newKey(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", i.serveDiscovery)
	mux.HandleFunc("GET /jwks", i.serveJWKS)
	i.srv = httptest.NewServer(mux)
	t.Cleanup(i.srv.Close)
	return i
}

// URL is the issuer identifier, the "iss" of its tokens.
func (i *Issuer) URL() string { return i.srv.URL }

// Close stops the issuer early, to test a verifier whose issuer went away.
func (i *Issuer) Close() { i.srv.Close() }

// PublicKey is the key currently published.
func (i *Issuer) PublicKey() crypto.PublicKey {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.key.Public()
}

// JWKSFetches counts the requests served on /jwks.
func (i *Issuer) JWKSFetches() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.jwksFetches
}

// RotateKey replaces the signing key: the new one is published under a new
// key id and the old one is removed from the JWKS.
func (i *Issuer) RotateKey(t testing.TB) {
	t.Helper()
	key, kid := i.newKey(t)
	i.mu.Lock()
	defer i.mu.Unlock()
	i.key, i.kid = key, kid
}

// Sign returns a compact JWS of claims, signed with the current key and
// naming its key id.
func (i *Issuer) Sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	i.mu.Lock()
	key, kid := i.key, i.kid
	i.mu.Unlock()
	return sign(t, i.alg, key, kid, claims)
}

// Token returns an ID token for sub issued to aud, valid for ttl from now; a
// negative ttl gives a token that has already expired.
func (i *Issuer) Token(t testing.TB, sub, email, aud string, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	exp := now.Add(ttl)
	iat := now
	if exp.Before(iat) {
		// Once valid, now expired.
		iat = exp.Add(-time.Hour)
	}
	return i.Sign(t, map[string]any{
		"iss":            i.URL(),
		"sub":            sub,
		"aud":            aud,
		"email":          email,
		"email_verified": true,
		"iat":            iat.Unix(),
		"exp":            exp.Unix(),
	})
}

// SignWithForeignKey signs claims with a fresh RSA key no issuer has
// published.
func SignWithForeignKey(t testing.TB, claims map[string]any) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("oidctest: generate foreign key: %v", err)
	}
	return sign(t, RS256, key, "foreign", claims)
}

func (i *Issuer) newKey(t testing.TB) (crypto.Signer, string) {
	t.Helper()
	var key crypto.Signer
	var err error
	switch i.alg {
	case RS256:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("oidctest: unsupported algorithm %q", i.alg)
	}
	if err != nil {
		t.Fatalf("oidctest: generate %s key: %v", i.alg, err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys++
	return key, fmt.Sprintf("key-%d", i.keys)
}

func sign(t testing.TB, alg string, key crypto.Signer, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		t.Fatalf("oidctest: new signer: %v", err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatalf("oidctest: sign token: %v", err)
	}
	return raw
}

func (i *Issuer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"issuer":                                i.URL(),
		"jwks_uri":                              i.URL() + "/jwks",
		"authorization_endpoint":                i.URL() + "/authorize",
		"token_endpoint":                        i.URL() + "/token",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{i.alg},
	})
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	i.mu.Lock()
	i.jwksFetches++
	jwk := jose.JSONWebKey{Key: i.key.Public(), KeyID: i.kid, Algorithm: i.alg, Use: "sig"}
	i.mu.Unlock()
	writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	// The client hanging up is the only way this fails; nothing to do then.
	_ = json.NewEncoder(w).Encode(v)
}
