package e2e

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipwayhq/slipway/pkg/testenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/devenvtest"
	"github.com/slipwayhq/slipway/tools/internal/devenv/ociregistry"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// TestPushWebhook: a real OCI registry notifies Slipway of pushes with an
// org's deployer token; pushed tags become images with the pushed digest,
// a second push of the tag changes nothing, envelopes that are
// unauthenticated, for another org or malformed are refused, and a
// forged event for a tag the registry lacks records nothing.
func TestPushWebhook(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real stack")
	}
	env := testenv.Get(t, "vault", "kube", "registry")
	s := startStack(t, env)
	owner := s.owner()
	org := "/orgs/" + localrun.BootstrapOrg
	hook := s.token(localrun.BootstrapOrg, owner, "DEPLOYER")

	// A registry of the test's own, notifying the org's webhook route.
	reg := devenvtest.Start(t, ociregistry.Registry{
		Notify:        s.api + org + "/images:push",
		NotifyHeaders: map[string]string{"Authorization": "Bearer " + hook},
	}).Env()
	host, user, pass := reg[ociregistry.AddrEnv], reg[ociregistry.UsernameEnv], reg[ociregistry.PasswordEnv]
	s.expect(s.do(http.MethodPost, org+"/credentials", owner, map[string]any{"name": "hooked-registry", "endpoint": host,
		"registry": map[string]string{"username": user, "password": pass}}), http.StatusOK, "record the registry's login")

	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.ParseReference(host+"/team/web:3.1.0", name.StrictValidation)
	if err != nil {
		t.Fatal(err)
	}
	push := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := remote.Write(tag, img, remote.WithContext(ctx), remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: user, Password: pass}))); err != nil {
			t.Fatalf("push: %v", err)
		}
	}
	push()
	var got struct{ Image imageJSON }
	eventually(t, 30*time.Second, "the pushed tag recorded as web 3.1.0", func() bool {
		a := s.do(http.MethodGet, org+"/images/web/versions/3.1.0", owner, nil)
		if a.status == http.StatusOK {
			a.decode(t, &got)
		}
		return a.status == http.StatusOK
	})
	if got.Image.Digest != digest.String() || got.Image.Reference != host+"/team/web:3.1.0" {
		t.Errorf("recorded %+v; want %s at %s", got.Image, host+"/team/web:3.1.0", digest)
	}

	// A second push of the same tag is notified again and changes nothing.
	push()
	var list struct{ Images []imageJSON }
	s.expect(s.do(http.MethodGet, org+"/images?name=web", owner, nil), http.StatusOK, "list").decode(t, &list)
	if len(list.Images) != 1 {
		t.Errorf("after a replayed push the org has %+v", list.Images)
	}

	envelope := `{"events":[{"id":"x","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digest.String() +
		`","repository":"team/web","url":"http://` + host + `/v2/team/web/manifests/` + digest.String() + `","tag":"3.2.0"},"request":{"host":"` + host + `"},"actor":{},"source":{"instanceID":"i"}}]}`
	post := func(path, token, body string) int {
		req, err := http.NewRequest(http.MethodPost, s.api+path, bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/vnd.docker.distribution.events.v2+json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(org+"/images:push", "", envelope); code != http.StatusUnauthorized {
		t.Errorf("unauthenticated envelope: %d, want 401", code)
	}
	if code := post("/orgs/globex/images:push", hook, envelope); code != http.StatusNotFound {
		t.Errorf("envelope for another org with this org's token: %d, want 404", code)
	}
	for _, bad := range []string{`{"events":`, `{"events":[{"target":"not an object"}]}`, strings.Repeat("[", 10000)} {
		if code := post(org+"/images:push", hook, bad); code != http.StatusBadRequest {
			t.Errorf("malformed envelope %.20q: %d, want 400", bad, code)
		}
	}
	s.expect(s.do(http.MethodGet, org+"/images/web/versions/3.2.0", owner, nil), http.StatusNotFound, "nothing written by refused envelopes")
	// Well-formed, with fields Slipway does not read: accepted, but the
	// registry has no tag 3.2.0, so a payload alone records nothing.
	if code := post(org+"/images:push", hook, envelope); code != http.StatusOK {
		t.Errorf("a well-formed envelope with unknown fields: %d, want 200", code)
	}
	s.expect(s.do(http.MethodGet, org+"/images/web/versions/3.2.0", owner, nil), http.StatusNotFound, "a tag the registry does not have")
}
