package identity

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var alice = Identity{Subject: "user:alice", Org: "acme", Role: RoleDeployer, RequestID: "req-1", TokenID: "tok-1"}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func newVerifier(t *testing.T, keys ...ed25519.PrivateKey) *Verifier {
	t.Helper()
	pubs := make([]ed25519.PublicKey, len(keys))
	for i, k := range keys {
		pubs[i] = pub(k)
	}
	v, err := NewVerifier(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sign(t *testing.T, s *Signer, id Identity) string {
	t.Helper()
	tok, err := s.Sign(id)
	if err != nil {
		t.Fatalf("Sign(%+v): %v", id, err)
	}
	return tok
}

// craft signs arbitrary claims, as an attacker or a buggy minter would.
func craft(t *testing.T, m jwt.SigningMethod, key any, c jwt.Claims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatalf("craft token: %v", err)
	}
	return tok
}

// validClaims are the claims Sign would produce for alice now; cases mutate a copy.
func validClaims() claims {
	now := time.Now()
	return claims{
		Org:  alice.Org,
		Role: alice.Role,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   alice.Subject,
			Audience:  jwt.ClaimStrings{audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
		},
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	key := newKey(t)
	s, v := NewSigner(key, 0), newVerifier(t, key)
	tests := []struct {
		name string
		id   Identity
	}{
		{name: "with request id", id: alice},
		{name: "without request id", id: Identity{Subject: "token:ci", Org: "globex", Role: RoleViewer}},
		{name: "owner", id: Identity{Subject: "user:bob", Org: "acme", Role: RoleOwner}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Verify(sign(t, s, tc.id))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got != tc.id {
				t.Errorf("Verify = %+v, want %+v", got, tc.id)
			}
		})
	}
}

func TestSignerDefaultTTL(t *testing.T) {
	key := newKey(t)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		ttl  time.Duration
		want time.Duration
	}{
		{name: "zero", ttl: 0, want: DefaultTTL},
		{name: "negative", ttl: -time.Second, want: DefaultTTL},
		{name: "explicit", ttl: 30 * time.Second, want: 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSigner(key, tc.ttl)
			s.now = func() time.Time { return now }
			var c claims
			if _, _, err := jwt.NewParser().ParseUnverified(sign(t, s, alice), &c); err != nil {
				t.Fatal(err)
			}
			if got := c.ExpiresAt.Sub(c.IssuedAt.Time); got != tc.want {
				t.Errorf("token lifetime = %v, want %v", got, tc.want)
			}
			if !c.IssuedAt.Equal(now) || !c.NotBefore.Equal(now) {
				t.Errorf("iat/nbf = %v/%v, want %v", c.IssuedAt, c.NotBefore, now)
			}
		})
	}
}

func TestSignRejectsIncompleteIdentity(t *testing.T) {
	s := NewSigner(newKey(t), 0)
	tests := []struct {
		name string
		id   Identity
	}{
		{name: "no subject", id: Identity{Org: "acme", Role: RoleAdmin}},
		{name: "no org", id: Identity{Subject: "user:alice", Role: RoleAdmin}},
		{name: "no role", id: Identity{Subject: "user:alice", Org: "acme"}},
		{name: "unknown role", id: Identity{Subject: "user:alice", Org: "acme", Role: "root"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tok, err := s.Sign(tc.id); err == nil {
				t.Fatalf("Sign(%+v) = %q, want an error", tc.id, tok)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	key, other := newKey(t), newKey(t)
	v := newVerifier(t, key)
	good := sign(t, NewSigner(key, 0), alice)

	expired := NewSigner(key, time.Minute)
	expired.now = func() time.Time { return time.Now().Add(-10 * time.Minute) }
	future := NewSigner(key, time.Minute)
	future.now = func() time.Time { return time.Now().Add(10 * time.Minute) }

	mutate := func(f func(*claims)) string {
		c := validClaims()
		f(&c)
		return craft(t, jwt.SigningMethodEdDSA, key, c)
	}

	// The crafted baseline verifies, so each case fails for its own reason.
	if _, err := v.Verify(mutate(func(*claims) {})); err != nil {
		t.Fatalf("baseline crafted token: %v", err)
	}

	tests := []struct {
		name  string
		token string
	}{
		{name: "empty", token: ""},
		{name: "garbage", token: "not.a.jwt"},
		{name: "expired", token: sign(t, expired, alice)},
		{name: "not yet valid", token: sign(t, future, alice)},
		{name: "other key", token: sign(t, NewSigner(other, 0), alice)},
		{name: "tampered payload", token: tamperPayload(t, good, func(m map[string]any) { m["org"] = "globex" })},
		{name: "tampered role", token: tamperPayload(t, good, func(m map[string]any) { m["role"] = string(RoleOwner) })},
		{name: "tampered signature", token: tamperSignature(t, good)},
		{name: "signature stripped", token: good[:strings.LastIndex(good, ".")+1]},
		{name: "alg none", token: craft(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validClaims())},
		// Key confusion: the public key used as an HMAC secret.
		{name: "HS256 with public key", token: craft(t, jwt.SigningMethodHS256, []byte(pub(key)), validClaims())},
		{name: "wrong audience", token: mutate(func(c *claims) { c.Audience = jwt.ClaimStrings{"slipway-public"} })},
		{name: "no audience", token: mutate(func(c *claims) { c.Audience = nil })},
		{name: "wrong issuer", token: mutate(func(c *claims) { c.Issuer = "someone-else" })},
		{name: "no issuer", token: mutate(func(c *claims) { c.Issuer = "" })},
		{name: "no expiry", token: mutate(func(c *claims) { c.ExpiresAt = nil })},
		{name: "issued in the future", token: mutate(func(c *claims) { c.IssuedAt = jwt.NewNumericDate(time.Now().Add(time.Hour)) })},
		{name: "missing org", token: mutate(func(c *claims) { c.Org = "" })},
		{name: "missing subject", token: mutate(func(c *claims) { c.Subject = "" })},
		{name: "unknown role", token: mutate(func(c *claims) { c.Role = "root" })},
		{name: "missing role", token: mutate(func(c *claims) { c.Role = "" })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := v.Verify(tc.token)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", id, err)
			}
			if id != (Identity{}) {
				t.Errorf("Verify returned identity %+v with the error", id)
			}
		})
	}
}

func TestVerifyLeeway(t *testing.T) {
	key := newKey(t)
	// Expired one second ago: within the clock-skew leeway.
	s := NewSigner(key, time.Minute)
	s.now = func() time.Time { return time.Now().Add(-time.Minute - time.Second) }
	if _, err := newVerifier(t, key).Verify(sign(t, s, alice)); err != nil {
		t.Fatalf("Verify of a token expired within leeway: %v", err)
	}
}

func TestVerifierKeyRotation(t *testing.T) {
	oldKey, current, stranger := newKey(t), newKey(t), newKey(t)
	v := newVerifier(t, oldKey, current)
	tests := []struct {
		name   string
		key    ed25519.PrivateKey
		wantOK bool
	}{
		{name: "old key", key: oldKey, wantOK: true},
		{name: "new key", key: current, wantOK: true},
		{name: "unknown key", key: stranger, wantOK: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Verify(sign(t, NewSigner(tc.key, 0), alice))
			if tc.wantOK {
				if err != nil || got != alice {
					t.Fatalf("Verify = %+v, %v; want %+v", got, err, alice)
				}
				return
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", got, err)
			}
		})
	}
}

func TestNewVerifierNeedsAKey(t *testing.T) {
	if _, err := NewVerifier(); err == nil {
		t.Fatal("NewVerifier() succeeded without keys")
	}
}

func TestLoadOrCreateKeyPair(t *testing.T) {
	dir := t.TempDir()
	privPath := filepath.Join(dir, "keys", "identity.pem") // the folder is created too
	pubPath := filepath.Join(dir, "keys", "identity.pub.pem")

	created, err := LoadOrCreateKeyPair(privPath, pubPath)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if fi, err := os.Stat(privPath); err != nil {
		t.Fatal(err)
	} else if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("private key mode = %v, want -rw-------", got)
	}
	// The public key is world-readable unless the umask says otherwise.
	if fi, err := os.Stat(pubPath); err != nil {
		t.Fatal(err)
	} else if got := fi.Mode().Perm(); got&^0o644 != 0 || got&0o400 == 0 {
		t.Errorf("public key mode = %v, want at most -rw-r--r--", got)
	}

	reloaded, err := LoadOrCreateKeyPair(privPath, pubPath)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !created.Equal(reloaded) {
		t.Fatal("second LoadOrCreateKeyPair returned a different key")
	}

	pubs, err := LoadPublicKeys(pubPath)
	if err != nil {
		t.Fatalf("LoadPublicKeys: %v", err)
	}
	if len(pubs) != 1 || !pubs[0].Equal(created.Public()) {
		t.Fatalf("LoadPublicKeys = %v, want the created key's public half", pubs)
	}
	v, err := NewVerifier(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := v.Verify(sign(t, NewSigner(reloaded, 0), alice)); err != nil || got != alice {
		t.Fatalf("Verify with loaded keys = %+v, %v", got, err)
	}
}

func TestLoadKeysErrors(t *testing.T) {
	dir := t.TempDir()
	privPath, pubPath := filepath.Join(dir, "id.pem"), filepath.Join(dir, "id.pub.pem")
	if _, err := LoadOrCreateKeyPair(privPath, pubPath); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPubDER, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ecPrivDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	ecPub := write("ec.pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecPubDER}))
	ecPriv := write("ec.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecPrivDER}))
	notPEM := write("garbage.pem", []byte("not a key"))
	badDER := write("bad.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")}))
	missing := filepath.Join(dir, "missing.pem")

	t.Run("public", func(t *testing.T) {
		tests := []struct {
			name  string
			paths []string
		}{
			{name: "missing file", paths: []string{missing}},
			{name: "not PEM", paths: []string{notPEM}},
			{name: "private key instead", paths: []string{privPath}},
			{name: "bad DER", paths: []string{badDER}},
			{name: "not ed25519", paths: []string{ecPub}},
			{name: "one bad of two", paths: []string{pubPath, missing}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if keys, err := LoadPublicKeys(tc.paths...); err == nil {
					t.Fatalf("LoadPublicKeys(%v) = %v, want an error", tc.paths, keys)
				}
			})
		}
	})
	t.Run("private", func(t *testing.T) {
		tests := []struct {
			name string
			path string
		}{
			{name: "missing file", path: missing},
			{name: "not PEM", path: notPEM},
			{name: "public key instead", path: pubPath},
			{name: "not ed25519", path: ecPriv},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := LoadPrivateKey(tc.path); err == nil {
					t.Fatalf("LoadPrivateKey(%s) succeeded, want an error", tc.name)
				}
			})
		}
	})
	t.Run("two public keys", func(t *testing.T) {
		other := filepath.Join(dir, "other.pem")
		otherPub := filepath.Join(dir, "other.pub.pem")
		if _, err := LoadOrCreateKeyPair(other, otherPub); err != nil {
			t.Fatal(err)
		}
		keys, err := LoadPublicKeys(pubPath, otherPub)
		if err != nil || len(keys) != 2 || keys[0].Equal(keys[1]) {
			t.Fatalf("LoadPublicKeys(two) = %d keys, %v; want two distinct", len(keys), err)
		}
	})
}

func TestRoleAtLeast(t *testing.T) {
	order := []Role{RoleViewer, RoleDeployer, RoleAdmin, RoleOwner}
	for i, r := range order {
		for j, min := range order {
			t.Run(string(r)+">="+string(min), func(t *testing.T) {
				if got, want := r.AtLeast(min), i >= j; got != want {
					t.Errorf("%s.AtLeast(%s) = %v, want %v", r, min, got, want)
				}
			})
		}
	}
	// An unknown role grants nothing, whatever it is compared with.
	for _, r := range []Role{"", "root", "Owner", "OWNER"} {
		for _, min := range []Role{RoleViewer, r, "root"} {
			t.Run("invalid "+string(r)+">="+string(min), func(t *testing.T) {
				if r.AtLeast(min) {
					t.Errorf("invalid role %q is AtLeast(%q)", r, min)
				}
			})
		}
	}
}

func TestParseRole(t *testing.T) {
	tests := []struct {
		in      string
		want    Role
		wantErr bool
	}{
		{in: "viewer", want: RoleViewer},
		{in: "deployer", want: RoleDeployer},
		{in: "admin", want: RoleAdmin},
		{in: "owner", want: RoleOwner},
		{in: "", wantErr: true},
		{in: "Admin", wantErr: true},
		{in: "root", wantErr: true},
	}
	for _, tc := range tests {
		t.Run("role "+tc.in, func(t *testing.T) {
			got, err := ParseRole(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseRole(%q) = %q, %v; want %q, wantErr %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// tamperPayload rewrites the claims of tok and keeps its signature.
func tamperPayload(t *testing.T, tok string, f func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	raw, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// tamperSignature flips one bit of the signature.
func tamperSignature(t *testing.T, tok string) string {
	t.Helper()
	i := strings.LastIndex(tok, ".")
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	sig[0] ^= 1
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

func TestAtLeastRefusesInvalidMinimum(t *testing.T) {
	for _, min := range []Role{"", "root"} {
		if RoleOwner.AtLeast(min) {
			t.Errorf("RoleOwner.AtLeast(%q) = true, want false for an unknown minimum", min)
		}
	}
}

func TestVerifyCacheHonoursExpiry(t *testing.T) {
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := NewSigner(key, time.Minute).Sign(alice)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second call is served from the cache
		if got, err := v.Verify(tok); err != nil || got != alice {
			t.Fatalf("Verify = %+v, %v", got, err)
		}
	}
	if len(v.verified) != 1 {
		t.Fatalf("cache holds %d tokens, want 1", len(v.verified))
	}
	// Past expiry plus leeway, the cached entry must not keep it alive.
	v.now = func() time.Time { return time.Now().Add(time.Minute + 2*leeway) }
	if _, err := v.Verify(tok); err == nil {
		t.Fatal("an expired token verified from the cache")
	}
}
