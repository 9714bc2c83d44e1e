package index

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/slipwayhq/slipway/pkg/safeyaml"
)

// reencode writes doc again with yaml.v3's encoder: sequences indented under
// their keys, keys in the same order, at the given indentation.
func reencode(t *testing.T, doc []byte, indent int) []byte {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal(doc, &n); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(indent)
	if err := enc.Encode(&n); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// flowCharts writes each chart's versions as a one-line flow sequence.
func flowCharts(t *testing.T, doc []byte) []byte {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal(doc, &n); err != nil {
		t.Fatal(err)
	}
	root := n.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "entries" {
			continue
		}
		for _, v := range root.Content[i+1].Content {
			if v.Kind == yaml.SequenceNode {
				v.Style = yaml.FlowStyle
			}
		}
	}
	b, err := yaml.Marshal(&n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// splitCases are documents for which the split and the whole decode must
// agree; split says whether the split path must take them.
func splitCases(t *testing.T) []struct {
	name  string
	doc   []byte
	split bool
} {
	_, gen := genIndex(t, 25, 6)
	helmStyle := readFixture(t, "helm-style.yaml")
	type tc = struct {
		name  string
		doc   []byte
		split bool
	}
	cases := []tc{
		{"generated", gen, true},
		{"generated crlf", bytes.ReplaceAll(gen, []byte("\n"), []byte("\r\n")), true},
		{"generated indent 4", reencode(t, gen, 4), true},
		{"generated indent 2", reencode(t, gen, 2), true},
		{"generated flow charts", flowCharts(t, gen), true},
		{"comments at column 0 in entries", bytes.ReplaceAll(helmStyle, []byte("\n  nginx:\n"), []byte("\n# about nginx\n\n  nginx:\n")), true},
		{"trailing comment no newline", append(append([]byte{}, helmStyle...), "# end"...), true},
		{"no final newline", bytes.TrimRight(helmStyle, "\n"), true},
		{"anchors within a chart", []byte("apiVersion: v1\nentries:\n  a:\n  - &x {name: a, version: 1.0.0, description: d}\n  - <<: *x\n    version: 1.1.0\n  b:\n  - {name: b, version: 1.0.0}\n"), true},
		{"anchor shared across charts", readFixture(t, "anchors.yaml"), false},
		{"flow document", readFixture(t, "flow.yaml"), false},
		{"json document", readFixture(t, "index.json"), false},
		{"document start marker", append([]byte("---\n"), helmStyle...), false},
		{"two documents", append(append([]byte{}, helmStyle...), "---\napiVersion: v2\nentries: {}\n"...), false},
		{"tab indentation", []byte("apiVersion: v1\nentries:\n  a:\n  - name: a\n    version: 1.0.0\n  \tb: []\n"), false},
		{"lone carriage return", []byte("apiVersion: v1\nentries:\n  a:\n  - name: a\r  b:\n  - name: b\n"), false},
		{"line separator", []byte("apiVersion: v1\nentries:\n  a:\n  - name: a\u2028  b: []\n"), false},
		{"quoted scalar across a cut", []byte("apiVersion: v1\nentries:\n  a:\n  - name: a\n    version: 1.0.0\n    description: \"one\n  b: two\"\n"), false},
		{"single-quoted across a cut", []byte("apiVersion: v1\nentries:\n  a:\n  - name: a\n    version: 1.0.0\n    description: 'one\n  b: two'\n"), false},
		{"flow across a cut", []byte("apiVersion: v1\nentries:\n  a:\n  - name: a\n    version: 1.0.0\n    keywords: [one,\n  b: two]\n"), false},
		{"quoted header across entries", []byte("apiVersion: \"v1\nentries:\n  a: x\ngenerated: \"\n"), false},
		{"block scalar then a chart", []byte("apiVersion: v1\nentries:\n  a:\n  - name: a\n    version: 1.0.0\n    description: |\n      text\n  b:\n  - name: b\n    version: 1.0.0\n"), true},
		{"explicit key", []byte("apiVersion: v1\nentries:\n  ? a\n  : - {name: a, version: 1.0.0}\n"), false},
		{"entries with inline value", []byte("apiVersion: v1\nentries: {a: [{name: a, version: 1.0.0}]}\n"), false},
		{"header names entries", []byte("Entries: {}\napiVersion: v1\nentries:\n  a:\n  - {name: a, version: 1.0.0}\n"), false},
		{"less indented key", []byte("apiVersion: v1\nentries:\n    a:\n    - {name: a, version: 1.0.0}\n  b: []\n"), false},
		{"chart key repeated", []byte("apiVersion: v1\nentries:\n  a:\n  - {name: a, version: 1.0.0}\n  a:\n  - {name: a, version: 2.0.0}\n"), true},
		{"skips with line numbers", []byte("apiVersion: v1\nentries:\n  a:\n  - {name: a, version: 1.0.0}\n  b:\n  - name: b\n    version: nope\n  - 7\n"), true},
	}
	for _, f := range []string{"helm-style.yaml", "indented.yaml", "coercion.yaml", "merge.yaml", "invalid-entries.yaml"} {
		cases = append(cases, tc{f, readFixture(t, f), true})
	}
	return cases
}

func TestSplitMatchesWhole(t *testing.T) {
	lim := Limits{}.withDefaults()
	for _, tc := range splitCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			split, errS := parseSplit(tc.doc, lim)
			if took := !errors.Is(errS, errNoSplit); took != tc.split {
				t.Fatalf("split path taken = %v (err %v), want %v", took, errS, tc.split)
			}
			whole, errW := parseWhole(tc.doc, lim)
			if !tc.split {
				return
			}
			if (errS == nil) != (errW == nil) {
				t.Fatalf("split error %v, whole error %v", errS, errW)
			}
			if diff := cmp.Diff(whole, split); diff != "" {
				t.Errorf("split differs from whole (-whole +split):\n%s", diff)
			}
		})
	}
}

func TestSplitLayout(t *testing.T) {
	_, gen := genIndex(t, 25, 6)
	sp, ok := split(gen)
	if !ok {
		t.Fatal("generated index not split")
	}
	if len(sp.charts) != 25 {
		t.Errorf("%d chart parts, want 25", len(sp.charts))
	}
	for i, c := range sp.charts {
		if !bytes.HasPrefix(c, []byte("  ")) || c[2] == ' ' || c[2] == '-' || c[2] == '#' {
			t.Errorf("part %d does not start at a chart key: %.40q", i, c)
		}
	}
	// Head, parts and tail cover the document.
	var all []byte
	all = append(all, sp.head...)
	for _, c := range sp.charts {
		all = append(all, c...)
	}
	all = append(all, sp.tail...)
	if !bytes.Equal(all, gen) {
		t.Error("head, parts and tail do not reassemble the document")
	}
}

func fuzzSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		if !strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".json") {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParse checks that Parse never panics and that wherever the split or
// the JSON path takes a document, it agrees with decoding the document whole.
func FuzzParse(f *testing.F) {
	fuzzSeeds(f)
	lim := Limits{MaxBytes: 1 << 20, MaxVersions: 2000, YAML: safeyaml.Limits{MaxBytes: 256 << 10, MaxNodes: 50_000, MaxAliases: 50, MaxDepth: 32}}.withDefaults()
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := Parse(data, lim); err == nil {
			// fine; errors are fine too, panics are not
		}
		checkJSONAgainstWhole(t, data, lim)
		split, errS := parseSplit(data, lim)
		if errors.Is(errS, errNoSplit) {
			return
		}
		whole, errW := parseWhole(data, lim)
		limit := errors.Is(errS, ErrTooLarge) || errors.Is(errW, ErrTooLarge)
		switch {
		case errS == nil && errW == nil:
			if diff := cmp.Diff(whole, split); diff != "" {
				t.Fatalf("split differs from whole (-whole +split):\n%s", diff)
			}
		case limit:
			// The two paths count limits over different parts.
		case (errS == nil) != (errW == nil):
			t.Fatalf("split error %v, whole error %v", errS, errW)
		}
	})
}

// checkJSONAgainstWhole: where the JSON path takes a document and yaml.v3
// reads it too, both give the same index. yaml.v3 folds NEL and the Unicode
// line separators inside quoted strings where encoding/json keeps them, so
// documents holding them are not compared.
func checkJSONAgainstWhole(t *testing.T, data []byte, lim Limits) {
	js, errJ := parseJSON(data, lim)
	if errors.Is(errJ, errNoSplit) || bytes.ContainsAny(data, "\u0085\u2028\u2029") {
		return
	}
	whole, errW := parseWhole(data, lim)
	switch {
	case errJ == nil && errW == nil:
		if diff := cmp.Diff(whole, js); diff != "" {
			t.Fatalf("JSON path differs from whole (-whole +json):\n%s", diff)
		}
	case errors.Is(errJ, ErrTooLarge) || errors.Is(errW, ErrTooLarge):
	case errJ != nil && errW == nil:
		t.Fatalf("JSON path error %v, whole succeeded", errJ)
	}
}
