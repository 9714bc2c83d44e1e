package safeyaml

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func nestedFlow(depth int) string {
	return "a: " + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + "\n"
}

func nestedBlock(depth int) string {
	var b strings.Builder
	for i := range depth {
		b.WriteString(strings.Repeat(" ", i))
		b.WriteString("k:\n")
	}
	return b.String()
}

// laughs is the classic exponential alias document: levels rows of nine
// aliases each, expanding to 9^levels scalars.
func laughs(levels int) string {
	var b strings.Builder
	b.WriteString("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= levels; i++ {
		prev := "*l" + strconv.Itoa(i-1)
		b.WriteString("l" + strconv.Itoa(i) + ": &l" + strconv.Itoa(i) + " [")
		for j := range 9 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(prev)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		lim     Limits
		wantErr error  // nil: must succeed
		errHas  string // the refusal names its limit
	}{
		{name: "normal values", doc: string(readTestdata(t, "values.yaml"))},
		{name: "empty", doc: ""},
		{name: "depth at limit", doc: nestedFlow(64)},
		{name: "flow depth bomb", doc: nestedFlow(65), wantErr: ErrLimit, errHas: "MaxDepth 64"},
		{name: "block depth bomb", doc: nestedBlock(200), wantErr: ErrLimit, errHas: "MaxDepth 64"},
		{name: "custom depth", doc: nestedFlow(5), lim: Limits{MaxDepth: 4}, wantErr: ErrLimit, errHas: "MaxDepth 4"},
		{
			name:    "depth through an alias",
			doc:     "deep: &d " + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "\nx: " + strings.Repeat("[", 30) + "*d" + strings.Repeat("]", 30) + "\n",
			wantErr: ErrLimit, errHas: "MaxDepth 64",
		},
		{name: "billion laughs", doc: laughs(9), wantErr: ErrLimit, errHas: "MaxNodes 1000000"},
		{name: "billion laughs testdata", doc: string(readTestdata(t, "laughs.yaml")), wantErr: ErrLimit, errHas: "MaxNodes"},
		{name: "small laughs fit", doc: laughs(3)},
		{name: "too many aliases", doc: "a: &a x\nb: [" + strings.Repeat("*a, ", 100) + "*a]\n", wantErr: ErrLimit, errHas: "MaxAliases 100"},
		{name: "aliases at limit", doc: "a: &a x\nb: [" + strings.Repeat("*a, ", 99) + "*a]\n"},
		{name: "big doc", doc: "k: " + strings.Repeat("x", 4<<20) + "\n", wantErr: ErrLimit, errHas: "MaxBytes 4194304"},
		{name: "custom size", doc: "k: 12345\n", lim: Limits{MaxBytes: 4}, wantErr: ErrLimit, errHas: "MaxBytes 4"},
		{name: "many nodes", doc: "[" + strings.Repeat("1,", 200) + "1]", lim: Limits{MaxNodes: 100}, wantErr: ErrLimit, errHas: "MaxNodes 100"},
		{name: "unknown anchor", doc: string(readTestdata(t, "badalias.yaml")), errHas: "unknown anchor"},
		{name: "syntax error", doc: "a: [1, 2\n", errHas: "parse yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Parse([]byte(tc.doc), tc.lim)
			if tc.wantErr == nil && tc.errHas == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if n == nil {
					t.Fatal("Parse returned a nil node")
				}
				return
			}
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %q does not wrap %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && errors.Is(err, ErrLimit) {
				t.Errorf("error %q wraps ErrLimit, want another error", err)
			}
			if !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("error %q does not say %q", err, tc.errHas)
			}
		})
	}
}

// A billion-laughs document is refused before anything is expanded: the cost
// is that of the bytes written, not of the 9^9 nodes they stand for.
func TestLaughsBoundedMemory(t *testing.T) {
	doc := []byte(laughs(9))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Values(doc, Limits{})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("Values: %v, want ErrLimit", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("refusing a %d-byte alias bomb allocated %d bytes", len(doc), alloc)
	}
}

func TestUnmarshal(t *testing.T) {
	var out struct {
		ReplicaCount int `yaml:"replicaCount"`
		Image        struct {
			Repository string `yaml:"repository"`
			Tag        string `yaml:"tag"`
		} `yaml:"image"`
	}
	if err := Unmarshal(readTestdata(t, "values.yaml"), Limits{}, &out); err != nil {
		t.Fatal(err)
	}
	if out.ReplicaCount != 2 || out.Image.Repository != "ghcr.io/example/app" || out.Image.Tag != "1.4.2" {
		t.Errorf("Unmarshal gave %+v", out)
	}
	if err := Unmarshal([]byte(laughs(9)), Limits{}, &out); !errors.Is(err, ErrLimit) {
		t.Errorf("Unmarshal of an alias bomb: %v, want ErrLimit", err)
	}
	if err := Unmarshal([]byte("replicaCount: [1]\n"), Limits{}, &out); err == nil {
		t.Error("Unmarshal of a sequence into an int succeeded")
	}
}

func TestValues(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		want    map[string]any
		wantErr string
	}{
		{
			name: "normal values",
			doc:  string(readTestdata(t, "values.yaml")),
			want: map[string]any{
				"replicaCount": 2,
				"image": map[string]any{
					"repository": "ghcr.io/example/app",
					"tag":        "1.4.2",
					"pullPolicy": "IfNotPresent",
				},
				"imagePullSecrets": []any{},
				"service":          map[string]any{"type": "ClusterIP", "port": 8080},
				"resources": map[string]any{
					"limits": map[string]any{"cpu": "500m", "memory": "256Mi"},
				},
				"nodeSelector": map[string]any{},
				"tolerations": []any{map[string]any{
					"key": "dedicated", "operator": "Equal", "value": "catalog", "effect": "NoSchedule",
				}},
				"annotations": map[string]any{"build.date": "2024-05-01"},
				"ingress": map[string]any{
					"enabled": false,
					"hosts": []any{map[string]any{
						"host": "chart-example.local", "paths": []any{"/"},
					}},
				},
			},
		},
		{
			name: "keys become strings as Helm makes them",
			doc:  string(readTestdata(t, "keys.yaml")),
			want: map[string]any{
				"ports":  map[string]any{"80": "http", "443": "https"},
				"flags":  map[string]any{"true": "yes-key", "false": "no-key"},
				"ratios": map[string]any{"1.5": "one-and-a-half"},
				"dates":  map[string]any{"2024-01-02": "a date key"},
				"dup":    "second",
			},
		},
		{
			name: "merge keys",
			doc:  string(readTestdata(t, "merge.yaml")),
			want: map[string]any{
				"defaults": map[string]any{"adapter": "postgres", "host": "localhost", "pool": 5},
				"extra":    map[string]any{"pool": 10, "ssl": true},
				"development": map[string]any{
					"adapter": "postgres", "host": "localhost", "pool": 5, "ssl": true, "database": "dev",
				},
				"production": map[string]any{
					"adapter": "postgres", "host": "db.internal", "pool": 5, "database": "prod",
				},
			},
		},
		{name: "empty", doc: "", want: map[string]any{}},
		{name: "comment only", doc: string(readTestdata(t, "empty.yaml")), want: map[string]any{}},
		{name: "null", doc: "null\n", want: map[string]any{}},
		{name: "tilde", doc: "~\n", want: map[string]any{}},
		{name: "top-level list", doc: string(readTestdata(t, "list.yaml")), wantErr: "not a mapping"},
		{name: "top-level scalar", doc: "hello\n", wantErr: "not a mapping"},
		{name: "null key", doc: "~: x\n", wantErr: "key is null"},
		{name: "mapping key", doc: "? {a: 1}\n: x\n", wantErr: "not a scalar"},
		{name: "merge of a scalar", doc: "a: &a 1\nb:\n  <<: *a\n", wantErr: "map merge"},
		{name: "alias bomb", doc: laughs(9), wantErr: "MaxNodes"},
		{name: "depth bomb", doc: nestedBlock(100), wantErr: "MaxDepth"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Values([]byte(tc.doc), Limits{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Values: error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Values: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Values (-want +got):\n%s", diff)
			}
		})
	}
}

// countValues counts the values a decoded document holds, map keys included,
// to check against MaxNodes.
func countValues(v any) int {
	switch v := v.(type) {
	case map[string]any:
		n := 1
		for _, e := range v {
			n += 1 + countValues(e)
		}
		return n
	case []any:
		n := 1
		for _, e := range v {
			n += countValues(e)
		}
		return n
	}
	return 1
}

func FuzzValues(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	lim := Limits{MaxBytes: 64 << 10, MaxNodes: 20_000, MaxDepth: 32, MaxAliases: 50}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Values(data, lim)
		if err != nil {
			return
		}
		if m == nil {
			t.Fatal("Values succeeded with a nil map")
		}
		// Every value the result holds came from a node Parse counted.
		if n := countValues(m); n > lim.MaxNodes+1 {
			t.Fatalf("decoded %d values, past MaxNodes %d", n, lim.MaxNodes)
		}
	})
}
