package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	issuer = "slipway-gateway"
	// serviceIssuerPrefix starts the issuer of a token a service mints for
	// itself ("slipway-releases").
	serviceIssuerPrefix = "slipway-"
	audience            = "slipway-internal"
	// leeway absorbs clock skew between the gateway and the services.
	leeway = 5 * time.Second
	// DefaultTTL is how long a minted identity stays valid: long enough for
	// one request and the calls it fans out to, short enough to be useless
	// if it leaks.
	DefaultTTL = 2 * time.Minute
)

// ErrInvalidToken is returned for every token that does not verify.
var ErrInvalidToken = errors.New("invalid identity token")

type claims struct {
	Org       string `json:"org"`
	Role      Role   `json:"role"`
	RequestID string `json:"rid,omitempty"`
	TokenID   string `json:"tid,omitempty"`
	jwt.RegisteredClaims
}

// Signer mints identity tokens. The gateway holds one for its callers;
// the releases, registry and catalog services each hold a service signer,
// with their own key, for the calls they make on their own behalf.
type Signer struct {
	key     ed25519.PrivateKey
	ttl     time.Duration
	now     func() time.Time
	issuer  string
	service string
}

// NewSigner returns a Signer minting tokens valid for ttl (DefaultTTL if 0).
func NewSigner(key ed25519.PrivateKey, ttl time.Duration) *Signer {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Signer{key: key, ttl: ttl, now: time.Now, issuer: issuer}
}

// NewServiceSigner returns a Signer with which service mints identities for
// itself: subject "service:<service>", Service set, verified only by
// Verifiers that TrustService(service, its public key).
func NewServiceSigner(service string, key ed25519.PrivateKey, ttl time.Duration) (*Signer, error) {
	if !validServiceName(service) {
		return nil, fmt.Errorf("service signer: bad service name %q", service)
	}
	s := NewSigner(key, ttl)
	s.issuer, s.service = serviceIssuerPrefix+service, service
	return s, nil
}

// Service is the service this Signer mints for ("" for the gateway).
func (s *Signer) Service() string { return s.service }

// validServiceName accepts lower-case service names; "gateway" is the
// gateway's issuer and never a service's.
func validServiceName(name string) bool {
	if name == "" || name == "gateway" || len(name) > 32 {
		return false
	}
	for _, r := range name {
		if r < 'a' || r > 'z' {
			return false
		}
	}
	return true
}

// TTL is how long the tokens this Signer mints stay valid.
func (s *Signer) TTL() time.Duration { return s.ttl }

// Sign returns a signed token for id.
func (s *Signer) Sign(id Identity) (string, error) {
	if s.service != "" {
		id.Subject, id.Service = ServiceSubject(s.service), s.service
	} else if id.Service != "" {
		return "", errors.New("sign identity: the gateway cannot mint a service identity")
	}
	if err := id.validate(); err != nil {
		return "", fmt.Errorf("sign identity: %w", err)
	}
	now := s.now()
	c := claims{
		Org:       id.Org,
		Role:      id.Role,
		RequestID: id.RequestID,
		TokenID:   id.TokenID,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.issuer,
			Subject:   id.Subject,
			Audience:  jwt.ClaimStrings{audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.ttl)),
		},
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign identity: %w", err)
	}
	return tok, nil
}

// Verifier checks identity tokens: the gateway's against one or more public
// keys (more than one while keys rotate), and each trusted service's against
// that service's own keys.
type Verifier struct {
	// byIssuer holds the keys and parser of each trusted issuer; it is
	// filled before the Verifier is used and only read afterwards.
	byIssuer map[string]issuerKeys
	now      func() time.Time

	// verified caches tokens already checked, until they expire: the
	// gateway reuses a caller's token for a while, and an EdDSA check
	// costs more than the rest of a small read.
	mu       sync.Mutex
	verified map[string]verifiedToken
}

type verifiedToken struct {
	id  Identity
	exp time.Time
}

// maxVerified bounds the cache; past it, the cache starts over.
const maxVerified = 10_000

type issuerKeys struct {
	service string // "" for the gateway
	keys    []ed25519.PublicKey
	parser  *jwt.Parser
}

// NewVerifier returns a Verifier trusting the gateway's keys.
func NewVerifier(keys ...ed25519.PublicKey) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("identity verifier needs at least one public key")
	}
	v := &Verifier{now: time.Now, verified: map[string]verifiedToken{}, byIssuer: map[string]issuerKeys{}}
	v.byIssuer[issuer] = issuerKeys{keys: keys, parser: v.newParser(issuer)}
	return v, nil
}

// TrustService makes v accept the identities service mints for itself,
// signed with one of keys. Call it before v is used.
func (v *Verifier) TrustService(service string, keys ...ed25519.PublicKey) error {
	if !validServiceName(service) {
		return fmt.Errorf("trust service: bad service name %q", service)
	}
	if len(keys) == 0 {
		return fmt.Errorf("trust service %s: no public key", service)
	}
	iss := serviceIssuerPrefix + service
	v.byIssuer[iss] = issuerKeys{service: service, keys: keys, parser: v.newParser(iss)}
	return nil
}

func (v *Verifier) newParser(iss string) *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithAudience(audience),
		jwt.WithIssuer(iss),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
}

// Verify returns the identity in token, or ErrInvalidToken.
func (v *Verifier) Verify(token string) (Identity, error) {
	now := v.now()
	v.mu.Lock()
	hit, ok := v.verified[token]
	v.mu.Unlock()
	if ok && now.Before(hit.exp) {
		return hit.id, nil
	}
	// The issuer picks the keys; it is read before the signature is checked
	// and then checked again, signed, by the issuer's own parser.
	var unverified jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &unverified); err != nil {
		return Identity{}, ErrInvalidToken
	}
	trusted, ok := v.byIssuer[unverified.Issuer]
	if !ok {
		return Identity{}, ErrInvalidToken
	}
	for _, k := range trusted.keys {
		var c claims
		if _, err := trusted.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return k, nil }); err != nil {
			continue
		}
		id := Identity{Subject: c.Subject, Org: c.Org, Role: c.Role, RequestID: c.RequestID, TokenID: c.TokenID, Service: trusted.service}
		if id.validate() != nil || (id.Service != "" && id.Subject != ServiceSubject(id.Service)) {
			return Identity{}, ErrInvalidToken
		}
		v.mu.Lock()
		if len(v.verified) >= maxVerified {
			clear(v.verified)
		}
		// Not past the token's own expiry (the parser's leeway is not cached).
		v.verified[token] = verifiedToken{id: id, exp: c.ExpiresAt.Time}
		v.mu.Unlock()
		return id, nil
	}
	return Identity{}, ErrInvalidToken
}

// GenerateKey returns a new signing key.
func GenerateKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate identity key: %w", err)
	}
	return priv, nil
}

// LoadOrCreateKeyPair reads the PEM private key at privPath, creating it (and
// the public key beside it at pubPath) when it does not exist yet. It is meant
// for local runs; production keys come from a mounted secret.
func LoadOrCreateKeyPair(privPath, pubPath string) (ed25519.PrivateKey, error) {
	if _, err := os.Stat(privPath); err == nil {
		return LoadPrivateKey(privPath)
	}
	priv, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode identity key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("encode identity public key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(privPath), 0o700); err != nil {
		return nil, fmt.Errorf("create identity key folder: %w", err)
	}
	if err := os.WriteFile(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("write identity key: %w", err)
	}
	if err := os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return nil, fmt.Errorf("write identity public key: %w", err)
	}
	return priv, nil
}

// LoadPrivateKey reads a PEM (PKCS #8) Ed25519 private key.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse identity key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("identity key %s is %T, want ed25519", path, k)
	}
	return priv, nil
}

// LoadPublicKeys reads PEM (PKIX) Ed25519 public keys from each path.
func LoadPublicKeys(paths ...string) ([]ed25519.PublicKey, error) {
	keys := make([]ed25519.PublicKey, 0, len(paths))
	for _, p := range paths {
		der, err := readPEM(p, "PUBLIC KEY")
		if err != nil {
			return nil, err
		}
		k, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("parse identity public key %s: %w", p, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("identity public key %s is %T, want ed25519", p, k)
		}
		keys = append(keys, pub)
	}
	return keys, nil
}

func readPEM(path, typ string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read identity key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != typ {
		return nil, fmt.Errorf("identity key %s: no PEM %q block", path, typ)
	}
	return blk.Bytes, nil
}
