package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipwayhq/slipway/pkg/oidctest"
	"github.com/slipwayhq/slipway/pkg/testenv"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

type imageJSON struct {
	Name, Version, Reference, Digest string
}

// TestImages records images through REST against the environment's real
// OCI registry (private: htpasswd): the digest is resolved with the org's
// registry credential and is the pushed one; a digest reference is
// verified; a missing tag, or a registry the org has no login for, is 422
// and writes nothing; a duplicate is 409 even with another reference; and
// another org sees none of it.
func TestImages(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real stack")
	}
	env := testenv.Get(t, "vault", "kube", "registry")
	iss := oidctest.NewIssuer(t)
	s := startStack(t, env, "SLIPWAY_GATEWAY_OIDC_ISSUER="+iss.URL())
	owner := s.owner()
	deployer := s.token(localrun.BootstrapOrg, owner, "DEPLOYER")
	org := "/orgs/" + localrun.BootstrapOrg
	host, user, pass := env["OCI_REGISTRY"], env["OCI_REGISTRY_USERNAME"], env["OCI_REGISTRY_PASSWORD"]

	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/e2e/api:2.0.0"
	tag, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := remote.Write(tag, img, remote.WithContext(ctx), remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: user, Password: pass}))); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}

	create := func(token, path, version, reference string) answer {
		return s.do(http.MethodPost, path+"/images", token, map[string]any{"name": "api", "version": version, "reference": reference})
	}
	// No login for the registry yet: it needs one.
	a := create(deployer, org, "2.0.0", ref)
	if a.status != http.StatusUnprocessableEntity || a.code(t) != "unprocessable" || !strings.Contains(string(a.body), "add a registry credential for "+host) {
		t.Errorf("without the org's login: %d %s; want 422 naming the credential to add", a.status, a.body)
	}
	s.expect(s.do(http.MethodGet, org+"/images/api/versions/2.0.0", deployer, nil), http.StatusNotFound, "nothing written")

	s.expect(s.do(http.MethodPost, org+"/credentials", owner, map[string]any{"name": "local-registry", "endpoint": host,
		"registry": map[string]string{"username": user, "password": pass}}), http.StatusOK, "record the registry's login")
	var got struct{ Image imageJSON }
	s.expect(create(deployer, org, "2.0.0", ref), http.StatusOK, "create with the org's login").decode(t, &got)
	if got.Image.Digest != digest.String() || got.Image.Reference != ref {
		t.Errorf("created %+v; want digest %s", got.Image, digest)
	}
	s.expect(create(deployer, org, "2.0.0-pinned", host+"/e2e/api@"+digest.String()), http.StatusOK, "create by digest")
	zero := "sha256:" + strings.Repeat("0", 64)
	for _, tc := range []struct{ what, version, ref, says string }{
		{"missing tag", "9.9.9", host + "/e2e/api:9.9.9", "tag 9.9.9 of e2e/api not found"},
		{"missing digest", "9.9.8", host + "/e2e/api@" + zero, "not found"},
	} {
		a := create(deployer, org, tc.version, tc.ref)
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(string(a.body), tc.says) {
			t.Errorf("%s: %d %s; want 422 saying %q", tc.what, a.status, a.body, tc.says)
		}
	}
	if a := create(deployer, org, "2.0.0", host+"/e2e/other:1"); a.status != http.StatusConflict || a.code(t) != "already_exists" {
		t.Errorf("same version, other reference: %d %s; want 409", a.status, a.body)
	}
	s.expect(s.do(http.MethodGet, org+"/images/api/versions/2.0.0", deployer, nil), http.StatusOK, "get").decode(t, &got)
	if got.Image.Reference != ref {
		t.Errorf("after the refused overwrite the image is %+v", got.Image)
	}
	for _, bad := range []map[string]any{
		{"name": "API", "version": "1", "reference": ref},
		{"name": "api", "version": "-1", "reference": ref},
		{"name": "api", "version": "1", "reference": "UPPER/Case:1"},
		{"name": "api", "version": "1"},
	} {
		if a := s.do(http.MethodPost, org+"/images", deployer, bad); a.status != http.StatusBadRequest || a.code(t) != "invalid_argument" {
			t.Errorf("create %v: %d %s; want 400", bad, a.status, a.body)
		}
	}

	// Where it runs: nowhere yet (TestApplicationDeploy deploys one), so
	// nothing keeps it from being deleted.
	for _, path := range []string{"/images/api/versions/2.0.0/deployments", "/digests/" + digest.String() + "/deployments"} {
		if a := s.do(http.MethodGet, org+path, deployer, nil); a.status != http.StatusOK || strings.Contains(string(a.body), "release") {
			t.Errorf("GET %s: %d %s; want 200 and no deployment", path, a.status, a.body)
		}
	}
	if a := s.do(http.MethodGet, org+"/digests/sha256:nothex/deployments", deployer, nil); a.status != http.StatusBadRequest {
		t.Errorf("digest deployments of a bad digest: %d %s; want 400", a.status, a.body)
	}
	s.expect(s.do(http.MethodDelete, org+"/images/api/versions/2.0.0-pinned", deployer, nil), http.StatusOK, "delete an image no release is known to run")

	// Another org: sees nothing, and has no login for the registry.
	bob := iss.Token(t, "bob-sub", "bob@example.com", "slipway", time.Hour)
	s.expect(s.do(http.MethodPost, "/orgs", bob, map[string]any{"name": "globex"}), http.StatusOK, "bob creates globex")
	for _, path := range []string{"/images/api/versions/2.0.0", "/images/api/versions/2.0.0/deployments"} {
		if a := s.do(http.MethodGet, "/orgs/globex"+path, bob, nil); a.status != http.StatusNotFound {
			t.Errorf("globex GET %s: %d %s", path, a.status, a.body)
		}
	}
	if a := s.do(http.MethodDelete, "/orgs/globex/images/api/versions/2.0.0", bob, nil); a.status != http.StatusNotFound {
		t.Errorf("globex DELETE: %d %s", a.status, a.body)
	}
	var list struct{ Images []imageJSON }
	s.expect(s.do(http.MethodGet, "/orgs/globex/images", bob, nil), http.StatusOK, "globex lists").decode(t, &list)
	if len(list.Images) != 0 {
		t.Errorf("globex lists %+v", list.Images)
	}
	if a := create(bob, "/orgs/globex", "2.0.0", ref); a.status != http.StatusUnprocessableEntity {
		t.Errorf("globex records default's private image without a login of its own: %d %s", a.status, a.body)
	}
	if strings.Contains(s.seen(), pass) {
		t.Error("the registry password appears in an answer or a log line")
	}
}
