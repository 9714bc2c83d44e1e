package releases

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"helm.sh/helm/v3/pkg/releaseutil"
	"sigs.k8s.io/yaml"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/paging"
	"github.com/slipwayhq/slipway/pkg/validate"
)

// redacted replaces every value of a Secret's data and stringData.
const redacted = "REDACTED"

// ManifestDocument is one document of a rendered manifest.
type ManifestDocument struct {
	Source                            string // template it came from
	APIVersion, Kind, Namespace, Name string
	YAML                              string // Secret values redacted
}

// ManifestPage is one page of a revision's manifest.
type ManifestPage struct {
	Revision      int
	Documents     []ManifestDocument
	NextPageToken string
}

// Manifest returns a page of a revision's manifest (the latest when
// revision is 0) from the ledger, document by document, with Secret data
// redacted: a manifest is read by viewers, who do not read secrets.
func (s *service) Manifest(ctx context.Context, cluster, namespace, name string, revision int, p PageRequest) (ManifestPage, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return ManifestPage{}, err
	}
	if revision < 0 {
		return ManifestPage{}, validate.Field("revision", "must be a revision number, or 0 for the latest")
	}
	k, err := s.key(ctx, caller.Org, cluster, namespace, name)
	if err != nil {
		return ManifestPage{}, err
	}
	r, err := s.ledger.Get(ctx, k, revision)
	if err != nil {
		return ManifestPage{}, notFound(err, k.Namespace, k.Name)
	}
	fp := paging.Fingerprint(caller.Org, "manifest", k.Cluster, k.Namespace, k.Name, strconv.Itoa(r.Revision))
	size, from, err := offsetPage(p, fp)
	if err != nil {
		return ManifestPage{}, err
	}
	docs := splitManifest(r.Manifest)
	page := ManifestPage{Revision: r.Revision}
	if from < len(docs) {
		end := min(from+size, len(docs))
		page.Documents = docs[from:end]
		if end < len(docs) {
			page.NextPageToken = paging.Encode(strconv.Itoa(end), fp)
		}
	}
	return page, nil
}

// offsetPage reads a page request of a list paged by position (a
// manifest's documents, a release's objects): the page size and the index
// to start at, from a token issued under fingerprint fp.
func offsetPage(p PageRequest, fp string) (size, from int, err error) {
	if size, err = paging.Size(p.Size); err != nil {
		return 0, 0, err
	}
	tok, err := paging.Decode(p.Token, fp)
	if err != nil || tok == "" {
		return size, 0, err
	}
	if from, err = strconv.Atoi(tok); err != nil || from < 0 {
		return 0, 0, validate.Field("page_token", "is not a token this list issued")
	}
	return size, from, nil
}

// splitManifest cuts a rendered manifest into its documents, in order.
func splitManifest(manifest string) []ManifestDocument {
	var out []ManifestDocument
	for _, text := range manifestTexts(manifest) {
		if d, ok := document(text); ok {
			out = append(out, d)
		}
	}
	return out
}

// manifestTexts is the manifest's documents as written, in order.
func manifestTexts(manifest string) []string {
	parts := releaseutil.SplitManifests(manifest)
	keys := make([]string, 0, len(parts))
	for k := range parts {
		keys = append(keys, k)
	}
	// Keys are "manifest-<n>": order by n.
	sort.Slice(keys, func(i, j int) bool {
		a, _ := strconv.Atoi(strings.TrimPrefix(keys[i], "manifest-"))
		b, _ := strconv.Atoi(strings.TrimPrefix(keys[j], "manifest-"))
		return a < b
	})
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = parts[k]
	}
	return out
}

func document(text string) (ManifestDocument, bool) {
	var d ManifestDocument
	for _, line := range strings.Split(text, "\n") {
		if src, ok := strings.CutPrefix(strings.TrimSpace(line), "# Source: "); ok {
			d.Source = src
			break
		}
	}
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(text), &obj); err != nil || len(obj) == 0 {
		return ManifestDocument{}, false
	}
	str := func(m map[string]any, k string) string { v, _ := m[k].(string); return v }
	d.APIVersion, d.Kind = str(obj, "apiVersion"), str(obj, "kind")
	if md, ok := obj["metadata"].(map[string]any); ok {
		d.Namespace, d.Name = str(md, "namespace"), str(md, "name")
	}
	d.YAML = text
	if d.Kind == "Secret" {
		for _, field := range []string{"data", "stringData"} {
			if m, ok := obj[field].(map[string]any); ok {
				for key := range m {
					m[key] = redacted
				}
			}
		}
		b, err := yaml.Marshal(obj)
		if err != nil {
			return ManifestDocument{}, false
		}
		d.YAML = "# Source: " + d.Source + "\n" + string(b)
	}
	return d, true
}
