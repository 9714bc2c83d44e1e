package registry

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/slipwayhq/slipway/pkg/client"
	"github.com/slipwayhq/slipway/pkg/grpcerr"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/server"
	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
	registryv1 "github.com/slipwayhq/slipway/proto/slipway/registry/v1"
)

// harness is a registry served over real gRPC on a loopback port, the way
// slipway-registry serves it, with a signer standing in for the gateway.
type harness struct {
	client registryv1.RegistryServiceClient
	signer *identity.Signer
	deps   *memDeployments
}

// memDeployments stands in for the releases service: releases by org and
// digest, or "not tracked".
type memDeployments struct {
	mu         sync.Mutex
	notTracked bool
	running    map[string][]Deployment // org + " " + digest
}

func (m *memDeployments) Running(_ context.Context, org string, digests []string, _ PageRequest) (DeploymentPage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.notTracked {
		return DeploymentPage{}, ErrDeploymentsNotTracked
	}
	var p DeploymentPage
	for _, d := range digests {
		p.Deployments = append(p.Deployments, m.running[org+" "+d]...)
	}
	return p, nil
}

func (m *memDeployments) set(org, digest string, d ...Deployment) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.running[org+" "+digest] = d
}

func newHarness(t *testing.T, dsn string) *harness {
	t.Helper()
	ctx := context.Background()
	key, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := identity.NewVerifier(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	store, err := OpenStore(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	deps := &memDeployments{running: map[string][]Deployment{}}
	srv := server.NewGRPC(server.GRPCConfig{Logger: log, Registry: reg, TracerProvider: noop.NewTracerProvider(), Verifier: verifier})
	registryv1.RegisterRegistryServiceServer(srv, NewGRPCServer(MakeEndpoints(New(store, tagResolver{}, deps, Options{}, log, reg)), log))
	srv.Ready()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := client.Dial(lis.Addr().String(), client.Config{TracerProvider: noop.NewTracerProvider()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &harness{client: registryv1.NewRegistryServiceClient(conn), signer: identity.NewSigner(key, 0), deps: deps}
}

// tagResolver stands in for a registry (the real one is exercised in
// resolve_test.go): a digest reference resolves to its digest, a tag to a
// digest derived from the reference, and tags named "missing" to nothing.
type tagResolver struct{}

func (tagResolver) Resolve(_ context.Context, _, ref string) (string, error) {
	if _, d, ok := strings.Cut(ref, "@"); ok {
		return d, nil
	}
	if strings.HasSuffix(ref, ":missing") {
		return "", fmt.Errorf("%w: tag missing not found", ErrUnresolvable)
	}
	return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(ref))), nil
}

// as returns a context calling as subject with role in org.
func (h *harness) as(t *testing.T, org string, role identity.Role) context.Context {
	t.Helper()
	tok, err := h.signer.Sign(identity.Identity{Subject: "user:" + string(role), Org: org, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return identity.OutgoingContext(context.Background(), tok)
}

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("status = %v (%v), want %v", got, err, want)
	}
}

func TestImagesOverGRPC(t *testing.T) {
	h := newHarness(t, sqltest.SQLite(t))
	acme := h.as(t, "acme", identity.RoleDeployer)

	created, err := h.client.CreateImage(acme, &registryv1.CreateImageRequest{Org: "acme", Image: &registryv1.Image{
		Name: "billing-api", Version: "1.4.2", Reference: "registry.example.com/team/billing-api:1.4.2",
		Org: "globex", Creator: "user:mallory", Digest: "sha256:forged", // output-only: ignored
	}})
	if err != nil {
		t.Fatal(err)
	}
	img := created.GetImage()
	wantDigest, _ := tagResolver{}.Resolve(context.Background(), "acme", "registry.example.com/team/billing-api:1.4.2")
	if img.GetOrg() != "acme" || img.GetCreator() != "user:deployer" || img.GetDigest() != wantDigest || img.GetCreateTime() == nil {
		t.Errorf("created image = %v; want org acme, creator user:deployer, the resolved digest (not the forged one), a create time", img)
	}

	t.Run("a reference that resolves to nothing is refused, nothing written", func(t *testing.T) {
		_, err := h.client.CreateImage(acme, &registryv1.CreateImageRequest{Org: "acme", Image: &registryv1.Image{
			Name: "billing-api", Version: "0.0.1", Reference: "registry.example.com/team/billing-api:missing"}})
		wantCode(t, err, codes.FailedPrecondition)
		if grpcerr.Reason(status.Convert(err)) != grpcerr.ReasonUnprocessable {
			t.Errorf("unresolvable reference: %v, want the UNPROCESSABLE reason (422)", err)
		}
		_, err = h.client.GetImage(acme, &registryv1.GetImageRequest{Org: "acme", Name: "billing-api", Version: "0.0.1"})
		wantCode(t, err, codes.NotFound)
	})

	t.Run("duplicate is AlreadyExists and changes nothing", func(t *testing.T) {
		_, err := h.client.CreateImage(acme, &registryv1.CreateImageRequest{Org: "acme", Image: &registryv1.Image{
			Name: "billing-api", Version: "1.4.2", Reference: "registry.example.com/team/other:9",
		}})
		wantCode(t, err, codes.AlreadyExists)
		got, err := h.client.GetImage(acme, &registryv1.GetImageRequest{Org: "acme", Name: "billing-api", Version: "1.4.2"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(img, got.GetImage(), protocmp.Transform()); diff != "" {
			t.Errorf("image changed (-want +got):\n%s", diff)
		}
	})

	t.Run("digest reference records the digest", func(t *testing.T) {
		d := "sha256:" + strings.Repeat("ab", 32)
		got, err := h.client.CreateImage(acme, &registryv1.CreateImageRequest{Org: "acme", Image: &registryv1.Image{
			Name: "billing-api", Version: "1.4.3", Reference: "nginx@" + d,
		}})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetImage().GetDigest() != d || got.GetImage().GetReference() != "docker.io/library/nginx@"+d {
			t.Errorf("image = %v; want digest %s and a normalized reference", got.GetImage(), d)
		}
	})

	t.Run("list pages newest first", func(t *testing.T) {
		for i := range 5 {
			if _, err := h.client.CreateImage(acme, &registryv1.CreateImageRequest{Org: "acme", Image: &registryv1.Image{
				Name: "web", Version: fmt.Sprintf("v%d", i), Reference: fmt.Sprintf("ghcr.io/acme/web:v%d", i),
			}}); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		req := &registryv1.ListImagesRequest{Org: "acme", Name: "web", PageSize: 2}
		for {
			resp, err := h.client.ListImages(acme, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, img := range resp.GetImages() {
				got = append(got, img.GetVersion())
			}
			if resp.GetNextPageToken() == "" {
				break
			}
			req.PageToken = resp.GetNextPageToken()
		}
		if diff := cmp.Diff([]string{"v4", "v3", "v2", "v1", "v0"}, got); diff != "" {
			t.Errorf("versions (-want +got):\n%s", diff)
		}
		// A token only continues the query that produced it.
		first, err := h.client.ListImages(acme, &registryv1.ListImagesRequest{Org: "acme", Name: "web", PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.client.ListImages(acme, &registryv1.ListImagesRequest{Org: "acme", Name: "billing-api", PageToken: first.GetNextPageToken()})
		wantCode(t, err, codes.InvalidArgument)
	})

	t.Run("delete", func(t *testing.T) {
		if _, err := h.client.DeleteImage(acme, &registryv1.DeleteImageRequest{Org: "acme", Name: "web", Version: "v0"}); err != nil {
			t.Fatal(err)
		}
		_, err := h.client.GetImage(acme, &registryv1.GetImageRequest{Org: "acme", Name: "web", Version: "v0"})
		wantCode(t, err, codes.NotFound)
		_, err = h.client.DeleteImage(acme, &registryv1.DeleteImageRequest{Org: "acme", Name: "web", Version: "v0"})
		wantCode(t, err, codes.NotFound)
	})
}

// TestNoImageEnumeration checks, for every RPC, that another organization's
// images answer exactly like missing ones, whether the caller names its own
// org or the other org.
func TestNoImageEnumeration(t *testing.T) {
	h := newHarness(t, sqltest.SQLite(t))
	acme := h.as(t, "acme", identity.RoleOwner)
	if _, err := h.client.CreateImage(acme, &registryv1.CreateImageRequest{Org: "acme", Image: &registryv1.Image{
		Name: "secret-app", Version: "1", Reference: "ghcr.io/acme/secret-app:1",
	}}); err != nil {
		t.Fatal(err)
	}
	globex := h.as(t, "globex", identity.RoleOwner)
	calls := []struct {
		name string
		call func(org string) error
		want codes.Code
	}{
		{name: "GetImage", want: codes.NotFound, call: func(org string) error {
			_, err := h.client.GetImage(globex, &registryv1.GetImageRequest{Org: org, Name: "secret-app", Version: "1"})
			return err
		}},
		{name: "DeleteImage", want: codes.NotFound, call: func(org string) error {
			_, err := h.client.DeleteImage(globex, &registryv1.DeleteImageRequest{Org: org, Name: "secret-app", Version: "1"})
			return err
		}},
		{name: "CreateImage", want: codes.OK, call: func(org string) error {
			_, err := h.client.CreateImage(globex, &registryv1.CreateImageRequest{Org: org, Image: &registryv1.Image{
				Name: "secret-app", Version: "1", Reference: "ghcr.io/globex/secret-app:1",
			}})
			return err
		}},
	}
	for _, tc := range calls {
		t.Run(tc.name+"/other org in path", func(t *testing.T) {
			// The path names acme but the caller is globex: acme does not exist for them.
			err := tc.call("acme")
			wantCode(t, err, codes.NotFound)
			if strings.Contains(status.Convert(err).Message(), "secret-app") {
				t.Errorf("NotFound message leaks the object: %v", err)
			}
		})
		t.Run(tc.name+"/own org", func(t *testing.T) {
			// Creating globex's own secret-app must succeed: acme's does not block it.
			wantCode(t, tc.call("globex"), tc.want)
		})
	}
	t.Run("ListImages/other org in path", func(t *testing.T) {
		_, err := h.client.ListImages(globex, &registryv1.ListImagesRequest{Org: "acme"})
		wantCode(t, err, codes.NotFound)
	})
	t.Run("ListImages/own org does not see acme", func(t *testing.T) {
		resp, err := h.client.ListImages(globex, &registryv1.ListImagesRequest{Org: "globex"})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetImages()) != 1 {
			t.Fatalf("globex lists %d images, want only its own", len(resp.GetImages()))
		}
		if img := resp.GetImages()[0]; img.GetOrg() != "globex" || strings.Contains(img.GetReference(), "acme") {
			t.Errorf("globex sees %v", img)
		}
	})
}

func TestCallerChecks(t *testing.T) {
	h := newHarness(t, sqltest.SQLite(t))
	req := &registryv1.CreateImageRequest{Org: "acme", Image: &registryv1.Image{Name: "a", Version: "1", Reference: "ghcr.io/acme/a:1"}}

	t.Run("no identity", func(t *testing.T) {
		_, err := h.client.CreateImage(context.Background(), req)
		wantCode(t, err, codes.Unauthenticated)
	})
	t.Run("forged identity", func(t *testing.T) {
		other, err := identity.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		tok, err := identity.NewSigner(other, 0).Sign(identity.Identity{Subject: "user:x", Org: "acme", Role: identity.RoleOwner})
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.client.CreateImage(identity.OutgoingContext(context.Background(), tok), req)
		wantCode(t, err, codes.Unauthenticated)
	})
	t.Run("viewer cannot create", func(t *testing.T) {
		_, err := h.client.CreateImage(h.as(t, "acme", identity.RoleViewer), req)
		wantCode(t, err, codes.PermissionDenied)
	})
	t.Run("viewer can list", func(t *testing.T) {
		if _, err := h.client.ListImages(h.as(t, "acme", identity.RoleViewer), &registryv1.ListImagesRequest{Org: "acme"}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestBadInputNamesFieldAndWritesNothing(t *testing.T) {
	h := newHarness(t, sqltest.SQLite(t))
	ctx := h.as(t, "acme", identity.RoleAdmin)
	long := strings.Repeat("a", 64)
	tests := []struct {
		name      string
		img       *registryv1.Image
		org       string
		wantField string
		wantCode  codes.Code
	}{
		{name: "no image", img: nil, wantField: "image"},
		{name: "empty name", img: &registryv1.Image{Version: "1", Reference: "ghcr.io/a/b:1"}, wantField: "name"},
		{name: "upper-case name", img: &registryv1.Image{Name: "Billing", Version: "1", Reference: "ghcr.io/a/b:1"}, wantField: "name"},
		{name: "name too long", img: &registryv1.Image{Name: long, Version: "1", Reference: "ghcr.io/a/b:1"}, wantField: "name"},
		{name: "empty version", img: &registryv1.Image{Name: "b", Reference: "ghcr.io/a/b:1"}, wantField: "version"},
		{name: "version with slash", img: &registryv1.Image{Name: "b", Version: "1/2", Reference: "ghcr.io/a/b:1"}, wantField: "version"},
		{name: "version too long", img: &registryv1.Image{Name: "b", Version: strings.Repeat("1", 129), Reference: "ghcr.io/a/b:1"}, wantField: "version"},
		{name: "empty reference", img: &registryv1.Image{Name: "b", Version: "1"}, wantField: "reference"},
		{name: "invalid reference", img: &registryv1.Image{Name: "b", Version: "1", Reference: "ghcr.io/A B:1"}, wantField: "reference"},
		{name: "reference too long", img: &registryv1.Image{Name: "b", Version: "1", Reference: "ghcr.io/" + strings.Repeat("a", MaxReferenceLen)}, wantField: "reference"},
		{name: "empty org", org: "-", img: &registryv1.Image{Name: "b", Version: "1", Reference: "ghcr.io/a/b:1"}, wantField: "org"},
		{name: "unknown org", org: "nope", img: &registryv1.Image{Name: "b", Version: "1", Reference: "ghcr.io/a/b:1"}, wantCode: codes.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			org := "acme"
			switch tc.org {
			case "-":
				org = ""
			case "":
			default:
				org = tc.org
			}
			_, err := h.client.CreateImage(ctx, &registryv1.CreateImageRequest{Org: org, Image: tc.img})
			want := tc.wantCode
			if want == codes.OK {
				want = codes.InvalidArgument
			}
			wantCode(t, err, want)
			if tc.wantField != "" && !strings.HasPrefix(status.Convert(err).Message(), tc.wantField+":") {
				t.Errorf("message %q does not start with the field %q", status.Convert(err).Message(), tc.wantField)
			}
			if tc.wantField != "" && tc.wantField != "org" {
				if f := badRequestField(err); f != tc.wantField {
					t.Errorf("BadRequest detail field = %q, want %q", f, tc.wantField)
				}
			}
		})
	}
	resp, err := h.client.ListImages(ctx, &registryv1.ListImagesRequest{Org: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.GetImages()); n != 0 {
		t.Errorf("rejected creates wrote %d images", n)
	}
	_, err = h.client.ListImages(ctx, &registryv1.ListImagesRequest{Org: "acme", PageSize: -1})
	wantCode(t, err, codes.InvalidArgument)
	_, err = h.client.GetImage(ctx, &registryv1.GetImageRequest{Org: "acme", Name: "UPPER", Version: "1"})
	wantCode(t, err, codes.InvalidArgument)
}

func badRequestField(err error) string {
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
			return br.GetFieldViolations()[0].GetField()
		}
	}
	return ""
}

// TestImageDeployments: where an image runs comes from the releases
// service, for the caller's org only, and a running image is not deleted.
func TestImageDeployments(t *testing.T) {
	h := newHarness(t, sqltest.SQLite(t))
	acme := h.as(t, "acme", identity.RoleDeployer)
	created, err := h.client.CreateImage(acme, &registryv1.CreateImageRequest{Org: "acme", Image: &registryv1.Image{
		Name: "api", Version: "1.0.0", Reference: "registry.example.com/acme/api:1.0.0"}})
	if err != nil {
		t.Fatal(err)
	}
	digest := created.GetImage().GetDigest()
	running := Deployment{Cluster: "cl_1", Namespace: "web", Release: "api-prod", Revision: 3, Digest: digest}
	h.deps.set("acme", digest, running)
	want := []*registryv1.ImageDeployment{{Cluster: "cl_1", Namespace: "web", Release: "api-prod", Revision: 3, Digest: digest}}

	got, err := h.client.ListImageDeployments(acme, &registryv1.ListImageDeploymentsRequest{Org: "acme", Name: "api", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got.GetDeployments(), protocmp.Transform()); diff != "" {
		t.Errorf("image deployments (-want +got):\n%s", diff)
	}
	byDigest, err := h.client.ListDigestDeployments(acme, &registryv1.ListDigestDeploymentsRequest{Org: "acme", Digest: digest})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, byDigest.GetDeployments(), protocmp.Transform()); diff != "" {
		t.Errorf("digest deployments (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "sha256:abc", "md5:" + strings.Repeat("0", 64), "sha256:" + strings.Repeat("A", 64)} {
		_, err := h.client.ListDigestDeployments(acme, &registryv1.ListDigestDeploymentsRequest{Org: "acme", Digest: bad})
		wantCode(t, err, codes.InvalidArgument)
	}

	_, err = h.client.DeleteImage(acme, &registryv1.DeleteImageRequest{Org: "acme", Name: "api", Version: "1.0.0"})
	wantCode(t, err, codes.FailedPrecondition)
	if err != nil && !strings.Contains(err.Error(), "cl_1/web/api-prod") {
		t.Errorf("refusal %q does not name the release", err)
	}

	// Another org: its own image namespace, and its own org to the releases service.
	globex := h.as(t, "globex", identity.RoleOwner)
	_, err = h.client.ListImageDeployments(globex, &registryv1.ListImageDeploymentsRequest{Org: "globex", Name: "api", Version: "1.0.0"})
	wantCode(t, err, codes.NotFound)
	other, err := h.client.ListDigestDeployments(globex, &registryv1.ListDigestDeploymentsRequest{Org: "globex", Digest: digest})
	if err != nil || len(other.GetDeployments()) != 0 {
		t.Errorf("globex sees acme's deployments of the digest: %v, %v", other, err)
	}

	// While the releases service does not report deployments, say so, and
	// nothing is known to keep the image.
	h.deps.mu.Lock()
	h.deps.notTracked = true
	h.deps.mu.Unlock()
	_, err = h.client.ListImageDeployments(acme, &registryv1.ListImageDeploymentsRequest{Org: "acme", Name: "api", Version: "1.0.0"})
	wantCode(t, err, codes.Unimplemented)
	if _, err := h.client.DeleteImage(acme, &registryv1.DeleteImageRequest{Org: "acme", Name: "api", Version: "1.0.0"}); err != nil {
		t.Errorf("delete while deployments are not tracked: %v", err)
	}
}
