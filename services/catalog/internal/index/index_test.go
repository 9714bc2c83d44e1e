package index

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayhq/slipway/pkg/safeyaml"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func versionsOf(c Chart) []string {
	var vs []string
	for _, v := range c.Versions {
		vs = append(vs, v.Version)
	}
	return vs
}

func chartNamed(t *testing.T, idx *Index, name string) Chart {
	t.Helper()
	for _, c := range idx.Charts {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no chart %q in %d charts", name, len(idx.Charts))
	return Chart{}
}

func TestParseFixtures(t *testing.T) {
	tests := []struct {
		file    string
		charts  map[string][]string // chart -> versions, highest first
		latest  map[string]string
		check   func(t *testing.T, idx *Index)
		skipped []Skip // Reason is a substring
		skipAll int
	}{
		{
			file: "helm-style.yaml",
			charts: map[string][]string{
				"alpine":   {"0.2.0", "0.1.0"},
				"nginx":    {"1.0.0-rc.2", "1.0.0-rc.1", "0.9.0"},
				"only-pre": {"0.1.0-beta", "0.1.0-alpha"},
			},
			latest: map[string]string{"alpine": "0.2.0", "nginx": "0.9.0", "only-pre": "0.1.0-beta"},
			check: func(t *testing.T, idx *Index) {
				if want := time.Date(2024, 7, 2, 3, 4, 5, 6, time.UTC); !idx.Generated.Equal(want) {
					t.Errorf("Generated = %v, want %v", idx.Generated, want)
				}
				a := chartNamed(t, idx, "alpine").Versions
				if want := "sha256:515c58e5f79d8b2913a10cb400ebb6fa9c77fe813287afbacf1a0b897cd78728"; a[1].Digest != want {
					t.Errorf("upper-case digest normalised to %q, want %q", a[1].Digest, want)
				}
				if want := "Deploy a basic Alpine Linux pod, with a description long enough that the writer folded it onto a second line."; a[0].Description != want {
					t.Errorf("folded description = %q", a[0].Description)
				}
				n := chartNamed(t, idx, "nginx").Versions[1]
				if !n.Deprecated || n.Type != "application" || n.KubeVersion != ">=1.23.0-0" {
					t.Errorf("nginx 1.0.0-rc.1 = %+v", n)
				}
				if want := (Dependency{Name: "redis", Version: ">=18.0.0", Repository: "https://charts.example.com", Condition: "redis.enabled", Alias: "cache"}); len(n.Dependencies) != 2 || n.Dependencies[1] != want {
					t.Errorf("dependencies = %+v", n.Dependencies)
				}
			},
		},
		{
			file: "indented.yaml",
			charts: map[string][]string{
				"quoted-key": {"v2.1.0", "2.0"},
				"plain":      {"1.0.0"},
				"last":       {"3.0.0"},
			},
			check: func(t *testing.T, idx *Index) {
				if idx.APIVersion != "v1" {
					t.Errorf("apiVersion after entries: got %q", idx.APIVersion)
				}
				last := chartNamed(t, idx, "last").Versions[0]
				if last.Digest != "" || last.APIVersion != "v1" {
					t.Errorf("invalid digest and default apiVersion: got %q, %q", last.Digest, last.APIVersion)
				}
				// A literal block keeps its newlines, which sanitising turns
				// into spaces, as Helm's does.
				if want := "Literal block   keeps indentation. "; last.Description != want {
					t.Errorf("description = %q, want %q", last.Description, want)
				}
			},
		},
		{
			file:   "coercion.yaml",
			charts: map[string][]string{"coerced": {"2.0.0", "1.0.0"}},
			check: func(t *testing.T, idx *Index) {
				vs := chartNamed(t, idx, "coerced").Versions
				if !vs[1].Deprecated || vs[0].Deprecated {
					t.Errorf("yes/Off: deprecated = %v, %v", vs[1].Deprecated, vs[0].Deprecated)
				}
				if diff := cmp.Diff([]string{"", "quoted", "plain words"}, vs[1].Keywords); diff != "" {
					t.Errorf("keywords (-want +got):\n%s", diff)
				}
				if want := "tabs and newlines and  bells are sanitised, é kept"; vs[0].Description != want {
					t.Errorf("description = %q, want %q", vs[0].Description, want)
				}
				if want := time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC); !vs[1].Created.Equal(want) {
					t.Errorf("plain timestamp: created = %v", vs[1].Created)
				}
			},
		},
		{
			file:   "merge.yaml",
			charts: map[string][]string{"merged": {"1.2.0", "1.1.0", "1.0.0"}},
			check: func(t *testing.T, idx *Index) {
				vs := chartNamed(t, idx, "merged").Versions
				want := Version{
					Chart: "merged", Version: "1.2.0", APIVersion: "v2", Description: "first wins",
					Home: "https://a.example", Icon: "https://i.example", Keywords: []string{"one", "two"},
				}
				if diff := cmp.Diff(want, vs[0]); diff != "" {
					t.Errorf("merged 1.2.0 (-want +got):\n%s", diff)
				}
				if vs[1].Description != "Versions share fields through merge keys" {
					t.Errorf("merged 1.1.0 = %+v", vs[1])
				}
			},
		},
		{
			file: "invalid-entries.yaml",
			charts: map[string][]string{
				"good": {"1.6.0", "1.0.0", "1.0.0+build.2"},
			},
			skipped: []Skip{
				{"good", "not-semver", `version "not-semver" is invalid`},
				{"good", "1.1.0", `name "other-name" does not match its entry "good"`},
				{"good", "", "empty entry"},
				{"good", "", "version is required"},
				{"good", "1.2.0", "name is required"},
				{"good", "1.3.0", "type must be application or library"},
				{"good", "1.4.0", "maintainers must not contain empty or null nodes"},
				{"good", "1.5.0", "disallowed characters in the alias"},
				{"good", "1.7.0", "keywords: 65 items, more than 64"},
				{"good", "", "version entry is a scalar, not a mapping"},
				{"good", "1.8.0", "urls: a scalar, not a list"},
				{"good", "1.9.0", `deprecated: "true" is not a boolean`},
				{"dotdot", "1.0.0", `".." is not allowed`},
				{"not-a-list", "", "chart entry is a scalar, not a list of versions"},
			},
			skipAll: 14,
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			idx, err := Parse(readFixture(t, tc.file), Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := map[string][]string{}
			for i, c := range idx.Charts {
				got[c.Name] = versionsOf(c)
				if i > 0 && idx.Charts[i-1].Name >= c.Name {
					t.Errorf("charts not sorted: %q before %q", idx.Charts[i-1].Name, c.Name)
				}
			}
			if diff := cmp.Diff(tc.charts, got); diff != "" {
				t.Errorf("charts (-want +got):\n%s", diff)
			}
			for name, want := range tc.latest {
				if got := chartNamed(t, idx, name).Latest().Version; got != want {
					t.Errorf("%s Latest = %q, want %q", name, got, want)
				}
			}
			if idx.SkippedTotal != tc.skipAll || len(idx.Skipped) != len(tc.skipped) {
				t.Errorf("skipped %d (%d listed), want %d:\n%+v", idx.SkippedTotal, len(idx.Skipped), tc.skipAll, idx.Skipped)
			} else {
				for i, want := range tc.skipped {
					s := idx.Skipped[i]
					if s.Chart != want.Chart || s.Version != want.Version || !strings.Contains(s.Reason, want.Reason) {
						t.Errorf("skip %d = %+v, want %+v", i, s, want)
					}
				}
			}
			if tc.check != nil {
				tc.check(t, idx)
			}
		})
	}
}

func TestLatestWithoutVersions(t *testing.T) {
	if v := (Chart{Name: "x"}).Latest(); v.Version != "" {
		t.Errorf("Latest of an empty chart = %+v", v)
	}
}

// TestVersionsShareLists: the versions of a chart that repeat a list hold
// one copy of it, and only equal lists are shared.
func TestVersionsShareLists(t *testing.T) {
	_, yamlDoc := genIndex(t, 5, 10)
	_, jsonDoc := genIndexJSON(t, 5, 10)
	for name, doc := range map[string][]byte{"yaml": yamlDoc, "json": jsonDoc} {
		idx, err := Parse(doc, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, c := range idx.Charts {
			first := c.Versions[0]
			for _, v := range c.Versions[1:] {
				if &v.Maintainers[0] != &first.Maintainers[0] || &v.Keywords[0] != &first.Keywords[0] {
					t.Errorf("%s: %s %s does not share its maintainers and keywords with %s", name, c.Name, v.Version, first.Version)
				}
			}
		}
	}
	doc := []byte("apiVersion: v1\nentries:\n  c:\n" +
		"  - {name: c, version: 1.0.0, keywords: [a, b]}\n" +
		"  - {name: c, version: 1.1.0, keywords: [a, c]}\n" +
		"  - {name: c, version: 1.2.0, keywords: [a, c]}\n")
	idx, err := Parse(doc, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	vs := idx.Charts[0].Versions // 1.2.0, 1.1.0, 1.0.0
	if got := [][]string{vs[0].Keywords, vs[1].Keywords, vs[2].Keywords}; !cmp.Equal(got, [][]string{{"a", "c"}, {"a", "c"}, {"a", "b"}}) {
		t.Errorf("keywords = %q", got)
	}
	if &vs[0].Keywords[0] != &vs[1].Keywords[0] || &vs[1].Keywords[0] == &vs[2].Keywords[0] {
		t.Error("equal keyword lists not shared, or unequal ones shared")
	}
}

func TestSkippedCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nentries:\n  c:\n")
	for range MaxSkipped + 50 {
		b.WriteString("  - name: c\n    version: bad\n")
	}
	b.WriteString("  - name: c\n    version: 1.0.0\n")
	idx, err := Parse([]byte(b.String()), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Skipped) != MaxSkipped || idx.SkippedTotal != MaxSkipped+50 {
		t.Errorf("skipped %d listed of %d, want %d of %d", len(idx.Skipped), idx.SkippedTotal, MaxSkipped, MaxSkipped+50)
	}
	if len(idx.Charts) != 1 || len(idx.Charts[0].Versions) != 1 {
		t.Errorf("charts = %+v", idx.Charts)
	}
}

func laughs() string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nentries:\n  bomb:\n  - name: bomb\n    version: 1.0.0\n    keywords: &k0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= 8; i++ {
		b.WriteString("    k" + string(rune('0'+i)) + ": &k" + string(rune('0'+i)) + " [")
		for j := range 9 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*k" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func TestParseErrors(t *testing.T) {
	threeVersions := "apiVersion: v1\nentries:\n  a:\n  - {name: a, version: 1.0.0}\n  b:\n  - {name: b, version: 1.0.0}\n  - {name: b, version: 1.1.0}\n"
	tests := []struct {
		name string
		doc  string
		lim  Limits
		want error
	}{
		{name: "empty", doc: "", want: ErrInvalid},
		{name: "comment only", doc: "# nothing\n", want: ErrInvalid},
		{name: "top-level list", doc: "- apiVersion: v1\n", want: ErrInvalid},
		{name: "top-level scalar", doc: "index\n", want: ErrInvalid},
		{name: "no entries", doc: "apiVersion: v1\n", want: ErrInvalid},
		{name: "null entries", doc: "apiVersion: v1\nentries:\n", want: ErrInvalid},
		{name: "entries a list", doc: "apiVersion: v1\nentries:\n  - a\n", want: ErrInvalid},
		{name: "entries twice", doc: "apiVersion: v1\nentries:\n  a: []\nentries:\n  b: []\n", want: ErrInvalid},
		{name: "no apiVersion", doc: "entries:\n  a:\n  - {name: a, version: 1.0.0}\n", want: ErrInvalid},
		{name: "apiVersion a list", doc: "apiVersion: [v1]\nentries: {}\n", want: ErrInvalid},
		{name: "syntax error", doc: "apiVersion: v1\nentries:\n  a: [\n", want: ErrInvalid},
		{name: "not yaml", doc: "\x00\x01\x02", want: ErrInvalid},
		{name: "too many bytes", doc: threeVersions, lim: Limits{MaxBytes: 20}, want: ErrTooLarge},
		{name: "too many versions", doc: threeVersions, lim: Limits{MaxVersions: 2}, want: ErrTooLarge},
		{name: "too many versions whole", doc: "{apiVersion: v1, entries: {a: [{name: a, version: 1.0.0}, {name: a, version: 1.0.1}]}}", lim: Limits{MaxVersions: 1}, want: ErrTooLarge},
		{name: "chart part too big", doc: threeVersions, lim: Limits{YAML: safeyaml.Limits{MaxBytes: 30}}, want: ErrTooLarge},
		{name: "alias bomb", doc: laughs(), want: ErrTooLarge},
		{name: "depth bomb", doc: "apiVersion: v1\nentries:\n  a:\n  - name: a\n    x: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n", want: ErrTooLarge},
		{name: "empty entries", doc: "apiVersion: v1\nentries: {}\n"},
		{name: "versions at the limit", doc: threeVersions, lim: Limits{MaxVersions: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			idx, err := Parse([]byte(tc.doc), tc.lim)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if idx == nil {
					t.Fatal("Parse returned nil")
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAliasBombWrapsLimit(t *testing.T) {
	_, err := Parse([]byte(laughs()), Limits{})
	if !errors.Is(err, safeyaml.ErrLimit) {
		t.Errorf("error %v does not wrap safeyaml.ErrLimit", err)
	}
}

func TestNormalizeDigest(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	tests := []struct{ in, want string }{
		{hex, "sha256:" + hex},
		{"sha256:" + hex, "sha256:" + hex},
		{strings.ToUpper(hex), "sha256:" + hex},
		{"", ""},
		{hex[:63], ""},
		{hex + "0", ""},
		{strings.Repeat("zz", 32), ""},
		{"sha512:" + hex, ""},
	}
	for _, tc := range tests {
		if got := normalizeDigest(tc.in); got != tc.want {
			t.Errorf("normalizeDigest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain ascii", "plain ascii"},
		{"tab\there", "tab here"},
		{"bell\a", "bell"},
		{"é ü 中文", "é ü 中文"},
		{"nbsp\u00a0", "nbsp "},
		{"zero\u200bwidth", "zerowidth"},
	}
	for _, tc := range tests {
		if got := sanitize(tc.in); got != tc.want {
			t.Errorf("sanitize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
