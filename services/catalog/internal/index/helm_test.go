package index

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"helm.sh/helm/v3/pkg/repo"
)

// fromHelm is what Helm's LoadIndexFile makes of path, in this package's
// shape: digests normalised and charts without versions left out.
func fromHelm(t *testing.T, path string) []Chart {
	t.Helper()
	hi, err := repo.LoadIndexFile(path)
	if err != nil {
		t.Fatalf("helm LoadIndexFile: %v", err)
	}
	var charts []Chart
	for name, cvs := range hi.Entries {
		if len(cvs) == 0 {
			continue
		}
		c := Chart{Name: name}
		for _, cv := range cvs {
			v := Version{
				Chart: cv.Name, Version: cv.Version, AppVersion: cv.AppVersion, Description: cv.Description,
				APIVersion: cv.APIVersion, Type: cv.Type, KubeVersion: cv.KubeVersion, Home: cv.Home, Icon: cv.Icon,
				Keywords: cv.Keywords, Sources: cv.Sources, URLs: cv.URLs,
				Deprecated: cv.Deprecated, Digest: normalizeDigest(cv.Digest), Created: cv.Created,
			}
			for _, m := range cv.Maintainers {
				v.Maintainers = append(v.Maintainers, Maintainer{Name: m.Name, Email: m.Email, URL: m.URL})
			}
			for _, d := range cv.Dependencies {
				v.Dependencies = append(v.Dependencies, Dependency{
					Name: d.Name, Version: d.Version, Repository: d.Repository, Condition: d.Condition, Alias: d.Alias,
				})
			}
			c.Versions = append(c.Versions, v)
		}
		charts = append(charts, c)
	}
	slices.SortFunc(charts, func(a, b Chart) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return charts
}

// equateEmpty: Helm leaves an empty YAML list as an empty slice and a
// missing one nil, as this package does, but encoding/json and the
// YAML-to-JSON step differ on which is which for nulls; the content is what
// a catalog shows.
var equateEmpty = cmpopts.EquateEmpty()

func TestMatchesHelm(t *testing.T) {
	genPath, _ := genIndex(t, 60, 12)
	genJSON, _ := genIndexJSON(t, 20, 5)
	tests := []struct {
		name string
		path string
	}{
		{"generated", genPath},
		{"generated json", genJSON},
		{"helm style", filepath.Join("testdata", "helm-style.yaml")},
		{"indented", filepath.Join("testdata", "indented.yaml")},
		{"flow", filepath.Join("testdata", "flow.yaml")},
		{"json", filepath.Join("testdata", "index.json")},
		{"anchors", filepath.Join("testdata", "anchors.yaml")},
		{"coercion", filepath.Join("testdata", "coercion.yaml")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := fromHelm(t, tc.path)
			data, err := os.ReadFile(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(data, Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.SkippedTotal != 0 {
				t.Errorf("Parse skipped entries Helm keeps: %+v", got.Skipped)
			}
			if diff := cmp.Diff(want, got.Charts, equateEmpty); diff != "" {
				t.Errorf("Parse differs from Helm's LoadIndexFile (-helm +slipway):\n%s", diff)
			}
		})
	}
}
