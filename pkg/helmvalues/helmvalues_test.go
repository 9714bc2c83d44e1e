package helmvalues

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMerge(t *testing.T) {
	defaults := map[string]any{"a": 1, "image": map[string]any{"repository": "nginx", "tag": "x", "pullPolicy": "IfNotPresent"}, "gone": "y"}
	got := Merge(defaults, map[string]any{"image": map[string]any{"tag": "y"}, "gone": nil},
		ImageValues("image", &Image{Reference: "registry.example.com/acme/web:1.2.0", Version: "1.2.0", Digest: "sha256:abc"}))
	want := map[string]any{"a": 1, "image": map[string]any{"repository": "registry.example.com/acme/web", "tag": "1.2.0", "digest": "sha256:abc", "pullPolicy": "IfNotPresent"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("merged (-want +got):\n%s", d)
	}
	if defaults["image"].(map[string]any)["tag"] != "x" {
		t.Error("merge changed its input")
	}
	// The tag is the reference's, whatever version the image was recorded as.
	nested := ImageValues("app.image", &Image{Reference: "nginx:v1.27", Version: "1.27"})
	if d := cmp.Diff(map[string]any{"app": map[string]any{"image": map[string]any{"repository": "docker.io/library/nginx", "tag": "v1.27"}}}, nested); d != "" {
		t.Errorf("nested key (-want +got):\n%s", d)
	}
}

func TestOverlayKeepsNulls(t *testing.T) {
	defaults := map[string]any{"a": 1, "image": map[string]any{"pullPolicy": "Always", "tag": "x"}}
	user := Overlay(map[string]any{"a": nil, "image": map[string]any{"pullPolicy": nil}}, map[string]any{"b": 2})
	want := map[string]any{"a": nil, "b": 2, "image": map[string]any{"pullPolicy": nil}}
	if d := cmp.Diff(want, user); d != "" {
		t.Errorf("overlay (-want +got):\n%s", d)
	}
	// Merging the overlay over the defaults is what Helm installs.
	if d := cmp.Diff(map[string]any{"b": 2, "image": map[string]any{"tag": "x"}}, Merge(defaults, user)); d != "" {
		t.Errorf("defaults < overlay (-want +got):\n%s", d)
	}
}
