package registry

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
	registryv1 "github.com/slipwayhq/slipway/proto/slipway/registry/v1"
)

const ociManifest = "application/vnd.oci.image.manifest.v1+json"

func pushEvent(id, repo, tag, digest string) *registryv1.PushEvent {
	return &registryv1.PushEvent{Id: id, Action: "push", Target: &registryv1.PushTarget{
		MediaType: ociManifest, Digest: digest, Repository: repo, Tag: tag,
		Url: "https://registry.example.com/v2/" + repo + "/manifests/" + digest}}
}

// TestReceivePushEvents: pushed tags become images by the default rule,
// replays change nothing, and what is not a tagged manifest push is
// skipped with a reason.
func TestReceivePushEvents(t *testing.T) {
	h := newHarness(t, sqltest.SQLite(t))
	acme := h.as(t, "acme", identity.RoleDeployer)
	// tagResolver's digest for the reference the event maps to.
	digest, _ := tagResolver{}.Resolve(acme, "acme", "registry.example.com/team/api:1.2.0")
	envelope := &registryv1.ReceivePushEventsRequest{Org: "acme", Events: []*registryv1.PushEvent{
		pushEvent("e1", "team/api", "1.2.0", digest),
		{Id: "e2", Action: "pull", Target: &registryv1.PushTarget{MediaType: ociManifest, Digest: digest, Repository: "team/api", Tag: "1.2.0"}},
		pushEvent("e3", "team/api", "", digest),
		{Id: "e4", Action: "push", Target: &registryv1.PushTarget{MediaType: "application/octet-stream", Digest: digest, Repository: "team/api", Tag: "x",
			Url: "https://registry.example.com/v2/team/api/blobs/" + digest}},
		pushEvent("e5", "team/Bad_Name", "1.0", digest),
		pushEvent("e6", "team/api", "1.3.0", "sha256:"+strings.Repeat("0", 64)),
	}}
	res, err := h.client.ReceivePushEvents(acme, envelope)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetCreated()) != 2 || res.GetCreated()[0].GetName() != "api" || res.GetCreated()[0].GetVersion() != "1.2.0" ||
		res.GetCreated()[0].GetReference() != "registry.example.com/team/api:1.2.0" || res.GetCreated()[0].GetDigest() != digest {
		t.Errorf("created %v; want api:1.2.0 at %s (and api:1.3.0)", res.GetCreated(), digest)
	}
	if len(res.GetSkipped()) != 4 {
		t.Errorf("skipped %q; want the pull, the untagged push, the blob and the bad name", res.GetSkipped())
	}
	for _, want := range []string{"not a push", "push by digest", "not an image manifest", "Bad_Name"} {
		if !strings.Contains(strings.Join(res.GetSkipped(), "\n"), want) {
			t.Errorf("no skip reason says %q: %q", want, res.GetSkipped())
		}
	}

	// A replay: nothing new, every tag already there; the tag whose
	// recorded digest is not the pushed one is reported, not changed.
	res, err = h.client.ReceivePushEvents(acme, envelope)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetCreated()) != 0 || strings.Join(res.GetExisting(), ",") != "api:1.2.0" {
		t.Errorf("replay: created %v existing %v; want nothing new and api:1.2.0 existing", res.GetCreated(), res.GetExisting())
	}
	if !strings.Contains(strings.Join(res.GetSkipped(), "\n"), "api:1.3.0 is recorded with digest") {
		t.Errorf("replay: the moved tag is not reported: %q", res.GetSkipped())
	}

	// Viewers may not, and another org's envelope writes into that org only.
	_, err = h.client.ReceivePushEvents(h.as(t, "acme", identity.RoleViewer), envelope)
	wantCode(t, err, codes.PermissionDenied)
	if _, err := h.client.ReceivePushEvents(h.as(t, "globex", identity.RoleDeployer), &registryv1.ReceivePushEventsRequest{Org: "globex", Events: envelope.Events[:1]}); err != nil {
		t.Fatal(err)
	}
	list, err := h.client.ListImages(acme, &registryv1.ListImagesRequest{Org: "acme"})
	if err != nil || len(list.GetImages()) != 2 {
		t.Errorf("acme has %d images after globex's push, want 2: %v", len(list.GetImages()), err)
	}
	many := &registryv1.ReceivePushEventsRequest{Org: "acme"}
	for range MaxPushEvents + 1 {
		many.Events = append(many.Events, envelope.Events[0])
	}
	_, err = h.client.ReceivePushEvents(acme, many)
	wantCode(t, err, codes.InvalidArgument)
}

// FuzzImageFromEvent: whatever an event holds, the mapping never panics,
// and an image it accepts is one CreateImage accepts.
func FuzzImageFromEvent(f *testing.F) {
	d := "sha256:" + strings.Repeat("ab", 32)
	f.Add("push", ociManifest, d, "team/api", "https://r.example.com/v2/team/api/manifests/x", "1.0", "", uint8(1))
	f.Add("push", ociManifest, d, "api", "http://127.0.0.1:5000/v2/api/manifests/x", "latest", "", uint8(2))
	f.Add("push", ociManifest, d, "team/billing/api", "https://r/v2/", "v1", "team/", uint8(2))
	f.Add("push", ociManifest, d, "a/b/c", "https://u:p@r/", "v", "a/", uint8(1))
	f.Add("delete", "", "", "", "", "", "", uint8(0))
	f.Fuzz(func(t *testing.T, action, mediaType, digest, repo, rawURL, tag, prefix string, naming uint8) {
		rule := PushRule{RepositoryPrefix: prefix, Naming: PushNaming(naming)}
		in, why := imageFromEvent(PushEvent{Action: action, MediaType: mediaType, Digest: digest, Repository: repo, URL: rawURL, Tag: tag}, rule)
		if why != "" {
			if len(why) > 1000 {
				t.Fatalf("skip reason of %d bytes", len(why))
			}
			return
		}
		if _, _, err := validateNewImage(in); err != nil {
			t.Fatalf("accepted %+v, which CreateImage refuses: %v", in, err)
		}
	})
}

// TestPushRule: an org's rule decides which repositories record images and
// how they are named; only admins set it; it is the org's own.
func TestPushRule(t *testing.T) {
	h := newHarness(t, sqltest.SQLite(t))
	admin := h.as(t, "acme", identity.RoleAdmin)
	got, err := h.client.GetPushRule(admin, &registryv1.GetPushRuleRequest{Org: "acme"})
	if err != nil || got.GetRule().GetNaming() != registryv1.PushNaming_PUSH_NAMING_LAST_SEGMENT || got.GetRule().GetRepositoryPrefix() != "" {
		t.Fatalf("default rule = %v, %v", got, err)
	}
	rule := &registryv1.PushRule{RepositoryPrefix: "team/", Naming: registryv1.PushNaming_PUSH_NAMING_PATH}
	_, err = h.client.UpdatePushRule(h.as(t, "acme", identity.RoleDeployer), &registryv1.UpdatePushRuleRequest{Org: "acme", Rule: rule})
	wantCode(t, err, codes.PermissionDenied)
	for _, bad := range []*registryv1.PushRule{{RepositoryPrefix: "team"}, {RepositoryPrefix: "/team/"}, {RepositoryPrefix: "Team/"}, {Naming: 7}} {
		_, err := h.client.UpdatePushRule(admin, &registryv1.UpdatePushRuleRequest{Org: "acme", Rule: bad})
		wantCode(t, err, codes.InvalidArgument)
	}
	if _, err := h.client.UpdatePushRule(admin, &registryv1.UpdatePushRuleRequest{Org: "acme", Rule: rule}); err != nil {
		t.Fatal(err)
	}
	if other, err := h.client.GetPushRule(h.as(t, "globex", identity.RoleViewer), &registryv1.GetPushRuleRequest{Org: "globex"}); err != nil || other.GetRule().GetRepositoryPrefix() != "" {
		t.Errorf("globex's rule = %v, %v; want the default", other, err)
	}

	deployer := h.as(t, "acme", identity.RoleDeployer)
	d, _ := tagResolver{}.Resolve(deployer, "acme", "registry.example.com/team/billing/api:2.0")
	res, err := h.client.ReceivePushEvents(deployer, &registryv1.ReceivePushEventsRequest{Org: "acme", Events: []*registryv1.PushEvent{
		pushEvent("a", "team/billing/api", "2.0", d),
		pushEvent("b", "other/api", "2.0", d),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetCreated()) != 1 || res.GetCreated()[0].GetName() != "billing-api" {
		t.Errorf("created %v; want billing-api by the path naming", res.GetCreated())
	}
	if len(res.GetSkipped()) != 1 || !strings.Contains(res.GetSkipped()[0], "not under the org's prefix") {
		t.Errorf("skipped %q; want other/api outside the prefix", res.GetSkipped())
	}
}
