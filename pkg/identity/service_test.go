package identity

import (
	"crypto/ed25519"
	"errors"
	"testing"
)

func mustKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestServiceIdentities(t *testing.T) {
	gatewayKey, releasesKey, catalogKey := mustKey(t), mustKey(t), mustKey(t)
	v, err := NewVerifier(gatewayKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.TrustService("releases", releasesKey.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	releases, err := NewServiceSigner("releases", releasesKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	// catalog signs with its own key, which v does not trust.
	catalog, err := NewServiceSigner("catalog", catalogKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	// releases' key claiming to be catalog.
	impostor, err := NewServiceSigner("catalog", releasesKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A service key can't pass for the gateway: its tokens name its issuer.
	asGateway := NewSigner(releasesKey, 0)
	gateway := NewSigner(gatewayKey, 0)

	sign := func(s *Signer, id Identity) string {
		t.Helper()
		tok, err := s.Sign(id)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	user := Identity{Subject: "user:alice", Org: "acme", Role: RoleOwner}

	t.Run("service identity verifies with Service set", func(t *testing.T) {
		id, err := v.Verify(sign(releases, Identity{Subject: "user:alice", Org: "acme", Role: RoleViewer}))
		if err != nil {
			t.Fatal(err)
		}
		want := Identity{Subject: "service:releases", Org: "acme", Role: RoleViewer, Service: "releases"}
		if id != want {
			t.Fatalf("got %+v, want %+v", id, want)
		}
	})
	t.Run("gateway identity has no Service", func(t *testing.T) {
		id, err := v.Verify(sign(gateway, user))
		if err != nil || id.Service != "" {
			t.Fatalf("got %+v, %v", id, err)
		}
	})
	for name, tok := range map[string]string{
		"untrusted service":          sign(catalog, user),
		"service key claiming other": sign(impostor, user),
		"service key as gateway":     sign(asGateway, user),
	} {
		t.Run(name+" refused", func(t *testing.T) {
			if _, err := v.Verify(tok); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %v, want ErrInvalidToken", err)
			}
		})
	}
	t.Run("gateway cannot mint a service identity", func(t *testing.T) {
		if _, err := gateway.Sign(Identity{Subject: "x", Org: "acme", Role: RoleViewer, Service: "releases"}); err == nil {
			t.Fatal("gateway signed a service identity")
		}
	})
	t.Run("bad service names", func(t *testing.T) {
		for _, n := range []string{"", "gateway", "Releases", "re-leases"} {
			if _, err := NewServiceSigner(n, releasesKey, 0); err == nil {
				t.Errorf("NewServiceSigner(%q) accepted", n)
			}
		}
	})
	t.Run("caller reuses its token per org", func(t *testing.T) {
		c, err := NewServiceCaller(releases)
		if err != nil {
			t.Fatal(err)
		}
		a1, _ := c.Context(t.Context(), "acme")
		a2, _ := c.Context(t.Context(), "acme")
		b, _ := c.Context(t.Context(), "globex")
		t1, _ := TokenFromContext(a1)
		t2, _ := TokenFromContext(a2)
		t3, _ := TokenFromContext(b)
		if t1 != t2 || t1 == t3 {
			t.Fatal("tokens not reused per org")
		}
		id, err := v.Verify(t3)
		if err != nil || id.Org != "globex" || id.Service != "releases" {
			t.Fatalf("got %+v, %v", id, err)
		}
		if got, _ := FromContext(b); got != id {
			t.Fatalf("context identity %+v, verified %+v", got, id)
		}
	})
}
