package oidc_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/slipwayhq/slipway/gateway/internal/oidc"
	"github.com/slipwayhq/slipway/pkg/oidctest"
)

const (
	audience = "slipway"
	email    = "alice@example.com"
)

func newVerifier(t *testing.T, iss *oidctest.Issuer) *oidc.Verifier {
	t.Helper()
	v, err := oidc.New(t.Context(), oidc.Config{IssuerURL: iss.URL(), Audience: audience})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

// idClaims returns valid claims from iss for alice, with overrides applied; a
// nil override removes the claim.
func idClaims(iss *oidctest.Issuer, overrides map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss":            iss.URL(),
		"sub":            "alice",
		"aud":            audience,
		"email":          email,
		"email_verified": true,
		"iat":            now.Unix(),
		"exp":            now.Add(time.Hour).Unix(),
	}
	for k, v := range overrides {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// b64 encodes v as JSON in unpadded base64url, a JWS header or payload.
func b64(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// wantInvalid fails t unless err is ErrInvalidToken for reason and leaks
// nothing of raw.
func wantInvalid(t *testing.T, err error, reason, raw string) {
	t.Helper()
	if !errors.Is(err, oidc.ErrInvalidToken) {
		t.Fatalf("err = %v, want ErrInvalidToken", err)
	}
	if want := "invalid token: " + reason; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if len(raw) >= 8 && strings.Contains(err.Error(), raw) {
		t.Errorf("err %q contains the raw token", err)
	}
}

func TestVerify(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	other := oidctest.NewIssuer(t)
	v := newVerifier(t, iss)
	alice := oidc.Claims{Subject: "alice", Email: email, EmailVerified: true}
	now := time.Now()

	tests := []struct {
		name  string
		token func(t *testing.T) string
		want  oidc.Claims
		// reason is the expected rejection; empty means the token verifies.
		reason string
	}{
		{
			name:  "valid",
			token: func(t *testing.T) string { return iss.Token(t, "alice", email, audience, time.Hour) },
			want:  alice,
		},
		{
			name: "audience list containing ours",
			token: func(t *testing.T) string {
				return iss.Sign(t, idClaims(iss, map[string]any{"aud": []string{"other-client", audience}}))
			},
			want: alice,
		},
		{
			name:  "email_verified as a string",
			token: func(t *testing.T) string { return iss.Sign(t, idClaims(iss, map[string]any{"email_verified": "true"})) },
			want:  alice,
		},
		{
			name:  "email unverified",
			token: func(t *testing.T) string { return iss.Sign(t, idClaims(iss, map[string]any{"email_verified": false})) },
			want:  oidc.Claims{Subject: "alice", Email: email},
		},
		{
			name: "no email",
			token: func(t *testing.T) string {
				return iss.Sign(t, idClaims(iss, map[string]any{"email": nil, "email_verified": nil}))
			},
			want: oidc.Claims{Subject: "alice"},
		},
		{
			name: "nbf within the five-minute skew go-oidc allows",
			token: func(t *testing.T) string {
				return iss.Sign(t, idClaims(iss, map[string]any{"nbf": now.Add(time.Minute).Unix()}))
			},
			want: alice,
		},
		// go-oidc does not check iat, so a token "issued in the future" has no
		// case here: it verifies as long as exp and nbf allow.
		{
			name:   "expired",
			token:  func(t *testing.T) string { return iss.Token(t, "alice", email, audience, -time.Minute) },
			reason: "expired",
		},
		{
			name:   "no exp",
			token:  func(t *testing.T) string { return iss.Sign(t, idClaims(iss, map[string]any{"exp": nil})) },
			reason: "missing expiry",
		},
		{
			name: "not yet valid",
			token: func(t *testing.T) string {
				return iss.Sign(t, idClaims(iss, map[string]any{"nbf": now.Add(time.Hour).Unix()}))
			},
			reason: "not yet valid",
		},
		{
			name:   "wrong audience",
			token:  func(t *testing.T) string { return iss.Token(t, "alice", email, "someone-else", time.Hour) },
			reason: "wrong audience",
		},
		{
			// Its key is not in our issuer's JWKS, so the signature fails
			// before the issuer is compared.
			name:   "minted by another issuer",
			token:  func(t *testing.T) string { return other.Token(t, "alice", email, audience, time.Hour) },
			reason: "bad signature",
		},
		{
			name:   "our key, another issuer's iss",
			token:  func(t *testing.T) string { return iss.Sign(t, idClaims(iss, map[string]any{"iss": other.URL()})) },
			reason: "wrong issuer",
		},
		{
			name:   "foreign key",
			token:  func(t *testing.T) string { return oidctest.SignWithForeignKey(t, idClaims(iss, nil)) },
			reason: "bad signature",
		},
		{
			name: "tampered payload",
			token: func(t *testing.T) string {
				parts := strings.Split(iss.Sign(t, idClaims(iss, nil)), ".")
				parts[1] = b64(t, idClaims(iss, map[string]any{"sub": "mallory"}))
				return strings.Join(parts, ".")
			},
			reason: "bad signature",
		},
		{
			name: "alg none",
			token: func(t *testing.T) string {
				return b64(t, map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64(t, idClaims(iss, nil)) + "."
			},
			reason: "unsupported signing algorithm",
		},
		{
			// The classic key confusion: the public key as an HMAC secret.
			name: "HS256 keyed with the public key",
			token: func(t *testing.T) string {
				der, err := x509.MarshalPKIXPublicKey(iss.PublicKey())
				if err != nil {
					t.Fatal(err)
				}
				secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
				signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, nil)
				if err != nil {
					t.Fatal(err)
				}
				raw, err := jwt.Signed(signer).Claims(idClaims(iss, nil)).Serialize()
				if err != nil {
					t.Fatal(err)
				}
				return raw
			},
			reason: "unsupported signing algorithm",
		},
		{
			name:   "no subject",
			token:  func(t *testing.T) string { return iss.Sign(t, idClaims(iss, map[string]any{"sub": nil})) },
			reason: "missing subject",
		},
		{
			name:   "exp not a number",
			token:  func(t *testing.T) string { return iss.Sign(t, idClaims(iss, map[string]any{"exp": "tomorrow"})) },
			reason: "malformed claims",
		},
		{
			name:   "email not a string",
			token:  func(t *testing.T) string { return iss.Sign(t, idClaims(iss, map[string]any{"email": 42})) },
			reason: "malformed email claim",
		},
		{
			name:   "email_verified not a boolean",
			token:  func(t *testing.T) string { return iss.Sign(t, idClaims(iss, map[string]any{"email_verified": "yes"})) },
			reason: "malformed email_verified claim",
		},
		{name: "empty", token: func(*testing.T) string { return "" }, reason: "malformed token"},
		{name: "garbage", token: func(*testing.T) string { return "not a token at all" }, reason: "malformed token"},
		{name: "API token", token: func(*testing.T) string { return "slp_0123456789abcdef" }, reason: "malformed token"},
		{name: "JWT shape, not base64 JSON", token: func(*testing.T) string { return "abc.def.ghi" }, reason: "malformed token"},
		{
			name:   "too large",
			token:  func(*testing.T) string { return strings.Repeat("a", 70_000) + ".b.c" },
			reason: "token too large",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.token(t)
			got, err := v.Verify(t.Context(), raw)
			if tc.reason != "" {
				wantInvalid(t, err, tc.reason, raw)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got != tc.want {
				t.Errorf("claims = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestVerifyAlgorithms(t *testing.T) {
	for _, alg := range []string{oidctest.RS256, oidctest.ES256, oidctest.EdDSA} {
		t.Run(alg, func(t *testing.T) {
			iss := oidctest.NewIssuer(t, oidctest.WithAlgorithm(alg))
			v := newVerifier(t, iss)
			got, err := v.Verify(t.Context(), iss.Token(t, "alice", email, audience, time.Hour))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Subject != "alice" {
				t.Errorf("subject = %q, want alice", got.Subject)
			}
		})
	}
}

func TestVerifyKeyRotation(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	v := newVerifier(t, iss)

	old := iss.Token(t, "alice", email, audience, time.Hour)
	if _, err := v.Verify(t.Context(), old); err != nil {
		t.Fatalf("Verify before rotation: %v", err)
	}
	fetches := iss.JWKSFetches()

	iss.RotateKey(t)
	// The new key id is not cached: go-oidc must refetch the JWKS.
	if _, err := v.Verify(t.Context(), iss.Token(t, "alice", email, audience, time.Hour)); err != nil {
		t.Fatalf("Verify with the new key: %v", err)
	}
	if got := iss.JWKSFetches(); got <= fetches {
		t.Errorf("JWKS fetches = %d after rotation, want more than %d", got, fetches)
	}
	// The old key is gone from the JWKS, so its tokens no longer verify.
	_, err := v.Verify(t.Context(), old)
	wantInvalid(t, err, "bad signature", old)
}

func TestVerifyEmailClaim(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	v, err := oidc.New(t.Context(), oidc.Config{IssuerURL: iss.URL(), Audience: audience, EmailClaim: "upn"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	raw := iss.Sign(t, idClaims(iss, map[string]any{"upn": "alice@corp.example", "email_verified": true}))
	got, err := v.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// email_verified speaks for "email", not for the claim configured instead.
	if want := (oidc.Claims{Subject: "alice", Email: "alice@corp.example"}); got != want {
		t.Errorf("claims = %+v, want %+v", got, want)
	}
}

func TestVerifyIssuerGone(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	v := newVerifier(t, iss)
	raw := iss.Token(t, "alice", email, audience, time.Hour)
	iss.Close()
	_, err := v.Verify(t.Context(), raw)
	wantInvalid(t, err, "signing keys unavailable", raw)
}

func TestNew(t *testing.T) {
	iss := oidctest.NewIssuer(t)

	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	// hanging accepts discovery requests and never answers them.
	hanging := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(hanging.Close)

	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"issuer":"` + strings.Repeat("x", 2<<20) + `"}`))
	}))
	t.Cleanup(huge.Close)

	tests := []struct {
		name    string
		cfg     oidc.Config
		wantErr string // substring; empty means New succeeds
		wantIs  error
	}{
		{name: "discovers", cfg: oidc.Config{IssuerURL: iss.URL(), Audience: audience}},
		{name: "no audience", cfg: oidc.Config{IssuerURL: iss.URL()}, wantErr: "audience is required"},
		{name: "no issuer", cfg: oidc.Config{Audience: audience}, wantErr: "must be an absolute url"},
		{name: "issuer with query", cfg: oidc.Config{IssuerURL: iss.URL() + "?tenant=x", Audience: audience}, wantErr: "without query"},
		{name: "http off loopback", cfg: oidc.Config{IssuerURL: "http://idp.example.com", Audience: audience}, wantErr: "must be https"},
		{name: "other scheme", cfg: oidc.Config{IssuerURL: "ftp://127.0.0.1", Audience: audience}, wantErr: "must be https"},
		{name: "issuer mismatch", cfg: oidc.Config{IssuerURL: iss.URL() + "/", Audience: audience}, wantErr: "did not match the issuer"},
		{name: "issuer down", cfg: oidc.Config{IssuerURL: downURL, Audience: audience}, wantErr: "discover oidc issuer " + downURL},
		{name: "discovery document too large", cfg: oidc.Config{IssuerURL: huge.URL, Audience: audience}, wantErr: "response too large"},
		{
			name:    "issuer hangs",
			cfg:     oidc.Config{IssuerURL: hanging.URL, Audience: audience, DiscoveryTimeout: 100 * time.Millisecond},
			wantErr: "discover oidc issuer " + hanging.URL,
			wantIs:  context.DeadlineExceeded,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := oidc.New(t.Context(), tc.cfg)
			if tc.wantErr == "" {
				if err != nil || v == nil {
					t.Fatalf("New = %v, %v; want a verifier", v, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New error = %v, want one containing %q", err, tc.wantErr)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("New error = %v, want errors.Is %v", err, tc.wantIs)
			}
			if errors.Is(err, oidc.ErrInvalidToken) {
				t.Errorf("New error %v is ErrInvalidToken; it is not about a token", err)
			}
		})
	}
}

func TestLooksLikeJWT(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	tests := []struct {
		name string
		raw  string
		want bool
	}{
		{"signed token", iss.Token(t, "alice", email, audience, time.Hour), true},
		{"unsigned token", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.", true},
		{"empty", "", false},
		{"API token", "slp_0123456789abcdef", false},
		{"two parts", "abc.def", false},
		{"four parts", "a.b.c.d", false},
		{"empty header", ".b.c", false},
		{"empty payload", "a..c", false},
		{"padding", "YQ==.Yg.Yw", false},
		{"standard base64", "a+b.c/d.e", false},
		{"whitespace", "a.b.c ", false},
		{"bearer prefix left on", "Bearer a.b.c", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := oidc.LooksLikeJWT(tc.raw); got != tc.want {
				t.Errorf("LooksLikeJWT(%q) = %v, want %v", tc.raw, got, tc.want)
			}
		})
	}
}

// FuzzVerify checks that whatever a caller sends, Verify answers
// ErrInvalidToken without echoing it, and only accepts what LooksLikeJWT
// would route to it.
func FuzzVerify(f *testing.F) {
	iss := oidctest.NewIssuer(f)
	v, err := oidc.New(f.Context(), oidc.Config{IssuerURL: iss.URL(), Audience: audience})
	if err != nil {
		f.Fatal(err)
	}
	valid := iss.Sign(f, idClaims(iss, nil))
	f.Add(valid)
	parts := strings.Split(valid, ".")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + ".." + parts[2])
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := v.Verify(t.Context(), raw)
		if err == nil {
			if !oidc.LooksLikeJWT(raw) || got.Subject == "" {
				t.Fatalf("Verify(%q) accepted %+v", raw, got)
			}
			return
		}
		if !errors.Is(err, oidc.ErrInvalidToken) {
			t.Fatalf("Verify(%q) = %v, want ErrInvalidToken", raw, err)
		}
		if len(raw) >= 8 && strings.Contains(err.Error(), raw) {
			t.Fatalf("Verify error %q echoes the token", err)
		}
	})
}
