package index

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/slipwayhq/slipway/pkg/safeyaml"
)

// toJSON rewrites a YAML fixture as indented JSON, as helm repo index
// --json writes an index.
func toJSON(t *testing.T, doc []byte) []byte {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// JSON is YAML: wherever yaml.v3 reads a JSON document, the JSON path must
// give what decoding it whole as YAML gives.
func TestJSONMatchesWhole(t *testing.T) {
	_, gen := genIndexJSON(t, 25, 6)
	cases := map[string][]byte{
		"generated":  gen,
		"index.json": readFixture(t, "index.json"),
		"compact":    []byte(`{"apiVersion":"v1","entries":{"a":[{"name":"a","version":"1.0.0","keywords":["x",1,true,null]}],"b":[]},"generated":"2024-01-01T00:00:00Z"}`),
		"numbers":    []byte(`{"apiVersion": 1, "entries": {"n": [{"name": "n", "version": 2, "appVersion": 1.10, "deprecated": true}]}}`),
	}
	// merge.yaml repeats "<<", which yaml.v3 will not decode into a map.
	for _, f := range []string{"helm-style.yaml", "indented.yaml", "coercion.yaml", "invalid-entries.yaml", "anchors.yaml"} {
		cases[f] = toJSON(t, readFixture(t, f))
	}
	lim := Limits{}.withDefaults()
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			got, errJ := parseJSON(doc, lim)
			if errors.Is(errJ, errNoSplit) {
				t.Fatal("JSON path did not take a JSON document")
			}
			want, errW := parseWhole(doc, lim)
			if (errJ == nil) != (errW == nil) {
				t.Fatalf("JSON path error %v, whole error %v", errJ, errW)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("JSON path differs from whole (-whole +json):\n%s", diff)
			}
		})
	}
}

// Where yaml.v3 refuses JSON that encoding/json reads, the JSON path reads it
// as Helm does.
func TestJSONAsHelmReadsIt(t *testing.T) {
	// Also repeated keys, where encoding/json keeps the last value.
	doc := `{"apiVersion": "v1", "entries": {"esc": [{"name": "esc", "version": "1.0.0",
		"description": "a \/ slash, \ud83d\ude00 a pair, \ud800 a lone surrogate, \u00e9",
		"urls": ["https:\/\/charts.example.com\/esc-1.0.0.tgz"]}],
		"twice": [{"name": "twice", "version": "0.1.0"}],
		"twice": [{"name": "twice", "version": "0.2.0", "version": "0.3.0", "keywords": ["a"], "keywords": ["b"]}]}}`
	path := filepath.Join(t.TempDir(), "index.json")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := parseWhole([]byte(doc), Limits{}.withDefaults()); err == nil {
		t.Log("yaml.v3 now reads \\/ and surrogate escapes; this test still pins the JSON path")
	}
	got, err := Parse([]byte(doc), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fromHelm(t, path), got.Charts, equateEmpty); diff != "" {
		t.Errorf("Parse differs from Helm (-helm +slipway):\n%s", diff)
	}
}

func TestJSONErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		lim  Limits
		want error
	}{
		{name: "entries a list", doc: `{"apiVersion": "v1", "entries": []}`, want: ErrInvalid},
		{name: "no entries", doc: `{"apiVersion": "v1"}`, want: ErrInvalid},
		{name: "entries twice", doc: `{"apiVersion": "v1", "entries": {}, "Entries": {}}`, want: ErrInvalid},
		{name: "no apiVersion", doc: `{"entries": {}}`, want: ErrInvalid},
		{name: "apiVersion an object", doc: `{"apiVersion": {}, "entries": {}}`, want: ErrInvalid},
		{name: "top-level list", doc: `[{"apiVersion": "v1"}]`, want: ErrInvalid},
		{name: "too many versions", doc: `{"apiVersion": "v1", "entries": {"a": [{"name": "a", "version": "1.0.0"}, {"name": "a", "version": "1.0.1"}]}}`, lim: Limits{MaxVersions: 1}, want: ErrTooLarge},
		{name: "chart too big", doc: `{"apiVersion": "v1", "entries": {"a": [{"name": "a", "version": "1.0.0", "description": "` + strings.Repeat("x", 200) + `"}]}}`, lim: Limits{YAML: safeyaml.Limits{MaxBytes: 100}}, want: ErrTooLarge},
		{name: "too deep", doc: `{"apiVersion": "v1", "entries": {"a": [{"name": "a", "x": ` + strings.Repeat("[", 80) + strings.Repeat("]", 80) + `}]}}`, want: ErrTooLarge},
		{name: "empty", doc: `{"apiVersion": "v1", "entries": {}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), tc.lim)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse error %v, want %v", err, tc.want)
			}
		})
	}
}
