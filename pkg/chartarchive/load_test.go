package chartarchive_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/slipwayhq/slipway/pkg/chartarchive"
	"github.com/slipwayhq/slipway/pkg/safeyaml"
)

// helmSaved packages a chart with Helm's own chartutil.Save, so the tests
// read what `helm package` writes and not only hand-built archives.
func helmSaved(t *testing.T) []byte {
	t.Helper()
	sub := &chart.Chart{
		Metadata:  &chart.Metadata{APIVersion: chart.APIVersionV2, Name: "redis", Version: "0.1.0"},
		Templates: []*chart.File{{Name: "templates/svc.yaml", Data: []byte("kind: Service\n")}},
	}
	c := &chart.Chart{
		Metadata: &chart.Metadata{
			APIVersion:   chart.APIVersionV2,
			Name:         "demo",
			Version:      "1.2.3",
			Dependencies: []*chart.Dependency{{Name: "redis", Version: "0.1.0"}},
		},
		Raw:       []*chart.File{{Name: "values.yaml", Data: []byte(goodValuesYAML)}},
		Schema:    []byte(goodSchema),
		Templates: []*chart.File{{Name: "templates/deployment.yaml", Data: []byte("kind: Deployment\n")}},
		Files:     []*chart.File{{Name: "README.md", Data: []byte("# demo\n")}},
	}
	c.AddDependency(sub)
	path, err := chartutil.Save(c, t.TempDir())
	if err != nil {
		t.Fatalf("chartutil.Save: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read saved chart: %v", err)
	}
	return data
}

func TestLoadHelmSaved(t *testing.T) {
	c, err := chartarchive.Load(helmSaved(t), chartarchive.Limits{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Name() != "demo" || c.Metadata.Version != "1.2.3" {
		t.Errorf("chart %s %s, want demo 1.2.3", c.Name(), c.Metadata.Version)
	}
	if deps := c.Dependencies(); len(deps) != 1 || deps[0].Name() != "redis" || len(deps[0].Templates) != 1 {
		t.Errorf("dependencies %v, want redis with one template", deps)
	}
	if c.Values["replicaCount"] != float64(2) {
		t.Errorf("values %v, want replicaCount 2", c.Values)
	}
}

func TestLoadSubchartArchive(t *testing.T) {
	data := tgz(t,
		file("demo/Chart.yaml", goodChartYAML),
		file("demo/charts/redis-0.1.0.tgz", string(subchart(t, "redis", "", file("redis/values.yaml", "port: 6379\n")))),
		file("demo/charts/db/Chart.yaml", "apiVersion: v2\nname: db\nversion: 2.0.0\n"),
	)
	c, err := chartarchive.Load(data, chartarchive.Limits{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	got := map[string]any{}
	for _, d := range c.Dependencies() {
		got[d.Name()] = d.Values
	}
	want := map[string]any{"redis": map[string]any{"port": float64(6379)}, "db": map[string]any(nil)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dependencies' values (-want +got):\n%s", diff)
	}
}

func TestLoadRefused(t *testing.T) {
	chartWith := func(name, body string) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			return tgz(t, file("demo/Chart.yaml", goodChartYAML), file("demo/"+name, body))
		}
	}
	tests := []struct {
		name    string
		archive func(t *testing.T) []byte
		lim     chartarchive.Limits
		want    string
		wantErr error // also wrapped, besides ErrRefused
	}{
		{
			name:    "Chart.yaml alias bomb",
			archive: func(t *testing.T) []byte { return tgz(t, file("demo/Chart.yaml", goodChartYAML+aliasBomb())) },
			want:    "Chart.yaml: ",
			wantErr: safeyaml.ErrLimit,
		},
		{
			name:    "values.yaml depth bomb",
			archive: chartWith("values.yaml", depthBomb(200)),
			want:    "values.yaml: ",
			wantErr: safeyaml.ErrLimit,
		},
		{
			name:    "values.yaml flow depth bomb",
			archive: chartWith("values.yaml", "a: "+strings.Repeat("[", 5000)+strings.Repeat("]", 5000)+"\n"),
			want:    "values.yaml: ",
			wantErr: safeyaml.ErrLimit,
		},
		{name: "values.yaml alias bomb", archive: chartWith("values.yaml", aliasBomb()), want: "values.yaml: ", wantErr: safeyaml.ErrLimit},
		{name: "values.yaml not a mapping", archive: chartWith("values.yaml", "- a\n- b\n"), want: "values.yaml: "},
		{name: "Chart.lock alias bomb", archive: chartWith("Chart.lock", aliasBomb()), want: "Chart.lock: ", wantErr: safeyaml.ErrLimit},
		{name: "requirements.yaml alias bomb", archive: chartWith("requirements.yaml", aliasBomb()), want: "requirements.yaml: ", wantErr: safeyaml.ErrLimit},
		{
			name:    "values.yaml over the YAML size limit",
			archive: chartWith("values.yaml", "a: "+strings.Repeat("x", 2000)+"\n"),
			lim:     chartarchive.Limits{YAML: safeyaml.Limits{MaxBytes: 1000}},
			want:    "values.yaml: ",
			wantErr: safeyaml.ErrLimit,
		},
		{
			name: "alias bomb in a subchart directory",
			archive: func(t *testing.T) []byte {
				return tgz(t, file("demo/Chart.yaml", goodChartYAML), file("demo/charts/sub/Chart.yaml", "name: sub\n"), file("demo/charts/sub/values.yaml", aliasBomb()))
			},
			want:    "charts/sub/values.yaml: ",
			wantErr: safeyaml.ErrLimit,
		},
		{
			name: "alias bomb in a subchart archive",
			archive: func(t *testing.T) []byte {
				return tgz(t, file("demo/Chart.yaml", goodChartYAML), file("demo/charts/sub-0.1.0.tgz", string(subchart(t, "sub", aliasBomb()))))
			},
			want:    "charts/sub-0.1.0.tgz: Chart.yaml: ",
			wantErr: safeyaml.ErrLimit,
		},
		{
			name: "symlink in a subchart archive",
			archive: func(t *testing.T) []byte {
				return tgz(t, file("demo/Chart.yaml", goodChartYAML), file("demo/charts/sub-0.1.0.tgz", string(subchart(t, "sub", "", link("sub/values.yaml", "/etc/passwd", '2')))))
			},
			want: `charts/sub-0.1.0.tgz: entry "sub/values.yaml": symlink entries are not allowed`,
		},
		{
			// The subchart's files count against the chart's MaxFiles.
			name: "subchart archive over the shared file count",
			archive: func(t *testing.T) []byte {
				return tgz(t, file("demo/Chart.yaml", goodChartYAML), file("demo/charts/sub-0.1.0.tgz", string(subchart(t, "sub", "", file("sub/a", "a"), file("sub/b", "b")))))
			},
			lim:  chartarchive.Limits{MaxFiles: 3},
			want: `charts/sub-0.1.0.tgz: entry "sub/a": more than MaxFiles 3 files`,
		},
		{
			name: "subchart archive bomb",
			archive: func(t *testing.T) []byte {
				inner := append(subchart(t, "sub", ""), zeroMembers(t, 16)...)
				return tgz(t, file("demo/Chart.yaml", goodChartYAML), file("demo/charts/sub-0.1.0.tgz", string(inner)))
			},
			want: "charts/sub-0.1.0.tgz: decompressed tar stream is over its limit",
		},
		{
			name: "subcharts nested too deep",
			archive: func(t *testing.T) []byte {
				p := "demo/"
				entries := []entry{file(p+"Chart.yaml", goodChartYAML)}
				for i := range 4 {
					p += fmt.Sprintf("charts/c%d/", i)
					entries = append(entries, file(p+"Chart.yaml", fmt.Sprintf("apiVersion: v2\nname: c%d\nversion: 0.1.0\n", i)))
				}
				return tgz(t, entries...)
			},
			lim:  chartarchive.Limits{MaxNesting: 3},
			want: "subchart charts/c0/charts/c1/charts/c2/charts/c3: nested more than MaxNesting 3 levels deep",
		},
		{
			// Each values.yaml is within the per-document limits; together
			// they are not.
			name: "subcharts' YAML adds up past MaxNodes",
			archive: func(t *testing.T) []byte {
				entries := []entry{file("demo/Chart.yaml", goodChartYAML)}
				for i := range 12 {
					p := fmt.Sprintf("demo/charts/s%d/", i)
					entries = append(entries, file(p+"Chart.yaml", fmt.Sprintf("apiVersion: v2\nname: s%d\nversion: 0.1.0\n", i)), file(p+"values.yaml", aliasTree(5)))
				}
				return tgz(t, entries...)
			},
			want:    "YAML nodes were left",
			wantErr: safeyaml.ErrLimit,
		},
		{name: "no Chart.yaml", archive: func(t *testing.T) []byte { return tgz(t, file("demo/values.yaml", "a: 1\n")) }, want: "load chart: Chart.yaml file is missing"},
		{name: "Chart.yaml without a version", archive: func(t *testing.T) []byte { return tgz(t, file("demo/Chart.yaml", "apiVersion: v2\nname: demo\n")) }, want: "load chart: "},
		{name: "Chart.yaml not YAML", archive: func(t *testing.T) []byte { return tgz(t, file("demo/Chart.yaml", "name: [demo\n")) }, want: "Chart.yaml: "},
		{name: "files refused first", archive: func(t *testing.T) []byte { return tgz(t, file("/demo/Chart.yaml", goodChartYAML)) }, want: "absolute path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := chartarchive.Load(tc.archive(t), tc.lim)
			if err == nil {
				t.Fatalf("Load returned chart %s, want an error containing %q", c.Name(), tc.want)
			}
			if !errors.Is(err, chartarchive.ErrRefused) {
				t.Errorf("error %v does not wrap ErrRefused", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v does not wrap %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if _, err := chartarchive.Read(tc.archive(t), tc.lim); !errors.Is(err, chartarchive.ErrRefused) {
				t.Errorf("Read: %v, want the same refusal", err)
			}
		})
	}
}

func TestRead(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		want    *chartarchive.Contents
	}{
		{
			name:    "everything",
			entries: goodEntries(),
			want: &chartarchive.Contents{
				Metadata:   &chart.Metadata{APIVersion: "v2", Name: "demo", Description: "A demo chart", Version: "1.2.3", AppVersion: "4.5"},
				ValuesYAML: []byte(goodValuesYAML),
				Values:     map[string]any{"replicaCount": 2, "image": map[string]any{"repository": "nginx", "tag": "1.27"}},
				SchemaJSON: []byte(goodSchema),
				Readme:     []byte("# demo\n"),
			},
		},
		{
			name:    "only Chart.yaml",
			entries: []entry{file("demo/Chart.yaml", goodChartYAML)},
			want: &chartarchive.Contents{
				Metadata: &chart.Metadata{APIVersion: "v2", Name: "demo", Description: "A demo chart", Version: "1.2.3", AppVersion: "4.5"},
				Values:   map[string]any{},
			},
		},
		{
			name: "readme names in any case, README.md preferred",
			entries: []entry{
				file("demo/Chart.yaml", goodChartYAML), file("demo/readme.txt", "txt"), file("demo/Readme", "plain"), file("demo/readme.MD", "md"),
				file("demo/charts/sub/README.md", "not the root"), file("demo/charts/sub/Chart.yaml", "apiVersion: v2\nname: sub\nversion: 0.1.0\n"),
			},
			want: &chartarchive.Contents{
				Metadata: &chart.Metadata{APIVersion: "v2", Name: "demo", Description: "A demo chart", Version: "1.2.3", AppVersion: "4.5"},
				Values:   map[string]any{},
				Readme:   []byte("md"),
			},
		},
		{
			name:    "README.txt alone",
			entries: []entry{file("demo/Chart.yaml", goodChartYAML), file("demo/README.txt", "txt"), file("demo/README.rst", "rst")},
			want: &chartarchive.Contents{
				Metadata: &chart.Metadata{APIVersion: "v2", Name: "demo", Description: "A demo chart", Version: "1.2.3", AppVersion: "4.5"},
				Values:   map[string]any{},
				Readme:   []byte("txt"),
			},
		},
		{
			name:    "empty values.yaml",
			entries: []entry{file("demo/Chart.yaml", goodChartYAML), file("demo/values.yaml", "# nothing yet\n")},
			want: &chartarchive.Contents{
				Metadata:   &chart.Metadata{APIVersion: "v2", Name: "demo", Description: "A demo chart", Version: "1.2.3", AppVersion: "4.5"},
				ValuesYAML: []byte("# nothing yet\n"),
				Values:     map[string]any{},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chartarchive.Read(tgz(t, tc.entries...), chartarchive.Limits{})
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("contents (-want +got):\n%s", diff)
			}
		})
	}
}
