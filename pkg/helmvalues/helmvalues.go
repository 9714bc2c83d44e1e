// Package helmvalues merges Helm values the way a deploy of an
// application builds them: chart defaults < application < target <
// request, with the image being deployed set by digest. The catalog
// validates exactly what the releases service will install.
package helmvalues

import (
	"strings"

	"github.com/distribution/reference"
)

// Image is an image version being deployed.
type Image struct {
	Version, Reference, Digest string
}

// DefaultImageKey is where the image goes when the application names no
// key.
const DefaultImageKey = "image"

// ImageValues returns the values a deploy sets for img under key
// ("a.b" -> {a: {b: {repository, tag, digest}}}); nil without an image.
func ImageValues(key string, img *Image) map[string]any {
	if img == nil {
		return nil
	}
	// The tag is the reference's own (the registry's "v1.4.2"), not the
	// Slipway version ("1.4.2") it was recorded as, which may differ.
	repo, tag := img.Reference, img.Version
	if named, err := reference.ParseNormalizedNamed(img.Reference); err == nil {
		repo = named.Name()
		if t, ok := named.(reference.Tagged); ok {
			tag = t.Tag()
		}
	}
	leaf := map[string]any{"repository": repo, "tag": tag}
	if img.Digest != "" {
		leaf["digest"] = img.Digest
	}
	parts := strings.Split(key, ".")
	out := leaf
	for i := len(parts) - 1; i >= 0; i-- {
		out = map[string]any{parts[i]: out}
	}
	return out
}

// Merge merges values layers, each over the ones before it, as Helm
// coalesces user values over chart defaults: maps merge key by key, any
// other value replaces, and null removes the key. Inputs are not changed.
func Merge(layers ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, l := range layers {
		mergeInto(out, l)
	}
	return out
}

func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		if sm, ok := v.(map[string]any); ok {
			dm, ok := dst[k].(map[string]any)
			if !ok {
				dm = map[string]any{}
			} else {
				dm = copyMap(dm)
			}
			mergeInto(dm, sm)
			dst[k] = dm
			continue
		}
		dst[k] = v
	}
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Overlay layers user values as Merge does, but keeps a null as null: the
// user values handed to Helm, which then removes that key from the chart's
// defaults when it coalesces them (Merge over the defaults is the result).
func Overlay(layers ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, l := range layers {
		overlayInto(out, l)
	}
	return out
}

func overlayInto(dst, src map[string]any) {
	for k, v := range src {
		sm, ok := v.(map[string]any)
		if !ok {
			dst[k] = v
			continue
		}
		dm, ok := dst[k].(map[string]any)
		if !ok {
			dm = map[string]any{}
		} else {
			dm = copyMap(dm)
		}
		overlayInto(dm, sm)
		dst[k] = dm
	}
}
