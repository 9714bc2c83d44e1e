// Package oidc verifies OpenID Connect ID tokens presented to the gateway as
// bearer credentials. It discovers the issuer once at start-up and checks each
// token's signature against the issuer's JWKS, which go-oidc caches and
// refetches when it meets a key id it has not seen (key rotation).
package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
)

const (
	// DefaultDiscoveryTimeout bounds issuer discovery in New, so a gateway
	// pointed at an unreachable issuer fails its start-up instead of hanging.
	DefaultDiscoveryTimeout = 10 * time.Second
	// fetchTimeout bounds every request to the issuer, including the JWKS
	// refetches go-oidc makes in the background with no deadline of its own.
	fetchTimeout = 10 * time.Second
	// maxResponseBytes bounds a discovery document or JWKS; real ones are a
	// few KiB.
	maxResponseBytes = 1 << 20
	// maxTokenBytes rejects absurd bearer values before any parsing; ID
	// tokens, even with large group claims, stay well below it.
	maxTokenBytes     = 64 << 10
	defaultEmailClaim = "email"
)

// ErrInvalidToken is returned, wrapped with a short reason that is safe to
// log, for every token that does not verify.
var ErrInvalidToken = errors.New("invalid token")

// signingAlgs are the asymmetric algorithms go-oidc supports. Listing them
// keeps "none" and the HMAC algorithms (a public key used as a shared secret)
// out, whatever the discovery document advertises.
var signingAlgs = []string{
	gooidc.RS256, gooidc.RS384, gooidc.RS512,
	gooidc.PS256, gooidc.PS384, gooidc.PS512,
	gooidc.ES256, gooidc.ES384, gooidc.ES512,
	gooidc.EdDSA,
}

// Config names the issuer the gateway trusts.
type Config struct {
	// IssuerURL must equal the issuer's "iss" exactly (mind trailing
	// slashes). It must be https; plain http is accepted only on loopback.
	IssuerURL string
	// Audience is the client id tokens must be issued to (one of "aud").
	Audience string
	// EmailClaim names the claim carrying the user's email; empty means
	// "email". When it names another claim (Entra ID's "upn", say),
	// Claims.EmailVerified is always false: "email_verified" vouches only
	// for the standard claim.
	EmailClaim string
	// DiscoveryTimeout bounds discovery in New; 0 means
	// DefaultDiscoveryTimeout.
	DiscoveryTimeout time.Duration
}

func (c Config) validate() error {
	if c.Audience == "" {
		return errors.New("oidc audience is required")
	}
	u, err := url.Parse(c.IssuerURL)
	if err != nil {
		return fmt.Errorf("parse oidc issuer url: %w", err)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("oidc issuer url %q must be an absolute url without query or fragment", c.IssuerURL)
	}
	// Over plain http anyone on the path could serve their own JWKS and mint
	// tokens for any user.
	if u.Scheme != "https" && (u.Scheme != "http" || !isLoopback(u.Hostname())) {
		return fmt.Errorf("oidc issuer url %q must be https (http only on loopback)", c.IssuerURL)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Claims is what the gateway learns about the caller from a verified token.
type Claims struct {
	// Subject is the issuer's stable id for the user; never empty.
	Subject       string
	Email         string
	EmailVerified bool
}

// Verifier checks ID tokens from one issuer. It is safe for concurrent use.
type Verifier struct {
	idv        *gooidc.IDTokenVerifier
	emailClaim string
}

// New discovers cfg's issuer, waiting at most cfg.DiscoveryTimeout, and
// returns a Verifier for tokens issued to cfg.Audience.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	timeout := cfg.DiscoveryTimeout
	if timeout <= 0 {
		timeout = DefaultDiscoveryTimeout
	}
	// go-oidc takes its HTTP client from the context and keeps it for the
	// JWKS fetches that follow.
	ctx = gooidc.ClientContext(ctx, newHTTPClient())
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	provider, err := gooidc.NewProvider(ctx, cfg.IssuerURL)
	if err != nil {
		return nil, fmt.Errorf("discover oidc issuer %s: %w", cfg.IssuerURL, err)
	}
	emailClaim := cfg.EmailClaim
	if emailClaim == "" {
		emailClaim = defaultEmailClaim
	}
	return &Verifier{
		idv: provider.Verifier(&gooidc.Config{
			ClientID:             cfg.Audience,
			SupportedSigningAlgs: signingAlgs,
		}),
		emailClaim: emailClaim,
	}, nil
}

// Verify checks raw's signature, issuer, audience, expiry and not-before
// (go-oidc allows five minutes of clock skew on nbf, none on exp; it does not
// check iat) and returns its claims. Every failure wraps ErrInvalidToken.
func (v *Verifier) Verify(ctx context.Context, raw string) (Claims, error) {
	if len(raw) > maxTokenBytes {
		return Claims{}, invalid("token too large")
	}
	if !LooksLikeJWT(raw) {
		return Claims{}, invalid("malformed token")
	}
	tok, err := v.idv.Verify(ctx, raw)
	if err != nil {
		return Claims{}, invalid(reason(err))
	}
	if tok.Subject == "" {
		return Claims{}, invalid("missing subject")
	}
	var all map[string]json.RawMessage
	if err := tok.Claims(&all); err != nil {
		return Claims{}, invalid("malformed claims")
	}
	c := Claims{Subject: tok.Subject}
	if c.Email, err = stringClaim(all[v.emailClaim]); err != nil {
		return Claims{}, invalid("malformed email claim")
	}
	if v.emailClaim == defaultEmailClaim {
		if c.EmailVerified, err = boolClaim(all["email_verified"]); err != nil {
			return Claims{}, invalid("malformed email_verified claim")
		}
	}
	return c, nil
}

func invalid(reason string) error {
	return fmt.Errorf("%w: %s", ErrInvalidToken, reason)
}

// goOIDCReasons turns go-oidc's error text into a constant reason: its
// messages quote claims the caller chose (aud, iss, alg) and it formats causes
// with %v, so text is all there is to go on. Prefixes, not substrings, so a
// quoted claim cannot pose as another failure; first match wins. The tests
// pin every entry, so an upgrade that rewords a message fails a test instead
// of quietly degrading to "rejected". go-oidc's "not signed" and "multiple
// signatures" errors need the JSON serialization, which LooksLikeJWT keeps out.
var goOIDCReasons = []struct{ prefix, reason string }{
	{"malformed jwt: unexpected signature algorithm", "unsupported signing algorithm"},
	{"malformed jwt", "malformed token"},
	{"failed to verify signature: fetching keys", "signing keys unavailable"},
	{"failed to verify signature", "bad signature"},
	{"failed to unmarshal claims", "malformed claims"},
	{"id token issued by a different provider", "wrong issuer"},
	{"expected audience", "wrong audience"},
	{"current time", "not yet valid"},
}

func reason(err error) string {
	if expired, ok := errors.AsType[*gooidc.TokenExpiredError](err); ok {
		if expired.Expiry.IsZero() {
			return "missing expiry"
		}
		return "expired"
	}
	msg := strings.TrimPrefix(err.Error(), "oidc: ")
	for _, r := range goOIDCReasons {
		if strings.HasPrefix(msg, r.prefix) {
			return r.reason
		}
	}
	return "rejected"
}

// stringClaim decodes an optional string claim.
func stringClaim(raw json.RawMessage) (string, error) {
	if raw == nil {
		return "", nil
	}
	var s *string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	if s == nil {
		return "", nil
	}
	return *s, nil
}

// boolClaim decodes an optional boolean claim, accepting "true" and "false"
// as strings too: some issuers (AWS Cognito) send email_verified that way.
func boolClaim(raw json.RawMessage) (bool, error) {
	if raw == nil {
		return false, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, err
	}
	switch v := v.(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	case string:
		switch v {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, errors.New("not a boolean")
}

// LooksLikeJWT reports whether raw has the shape of a compact JWS: three
// dot-separated base64url parts, header and payload non-empty. It decodes
// nothing, so the edge can cheaply route "slp_..." API tokens and JWTs apart.
// An empty signature (alg "none") still looks like a JWT, so Verify rejects it
// with a precise reason.
func LooksLikeJWT(raw string) bool {
	header, rest, ok := strings.Cut(raw, ".")
	if !ok {
		return false
	}
	payload, sig, ok := strings.Cut(rest, ".")
	return ok && header != "" && payload != "" &&
		isBase64URL(header) && isBase64URL(payload) && isBase64URL(sig)
}

// isBase64URL reports whether s uses only the unpadded base64url alphabet.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
