package cli

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMergeValues(t *testing.T) {
	files := map[string]string{
		"base.yaml": "replicaCount: 1\nimage:\n  repository: web\n  tag: \"1.0\"\nlist: [a, b]\n",
		"prod.yaml": "replicaCount: 3\nimage:\n  tag: \"2.0\"\nlist: [c]\n",
		"bad.yaml":  "a: [\n",
	}
	read := func(name string) ([]byte, error) {
		s, ok := files[name]
		if !ok {
			return nil, fs.ErrNotExist
		}
		return []byte(s), nil
	}
	tests := []struct {
		name      string
		files     []string
		set       []string
		setString []string
		stdin     string
		want      map[string]any
		wantErr   string
	}{
		{name: "nothing", want: map[string]any{}},
		{name: "files merge in order", files: []string{"base.yaml", "prod.yaml"},
			want: map[string]any{"replicaCount": float64(3), "image": map[string]any{"repository": "web", "tag": "2.0"}, "list": []any{"c"}}},
		{name: "set over files", files: []string{"base.yaml"}, set: []string{"image.tag=3.0,replicaCount=5"},
			want: map[string]any{"replicaCount": int64(5), "image": map[string]any{"repository": "web", "tag": "3.0"}, "list": []any{"a", "b"}}},
		{name: "set types", set: []string{"a=1", "b=true", "c=null", "d=x"},
			want: map[string]any{"a": int64(1), "b": true, "c": nil, "d": "x"}},
		{name: "set-string keeps strings", setString: []string{"a=1", "b=true"}, want: map[string]any{"a": "1", "b": "true"}},
		{name: "set lists", set: []string{"list[0]=x", "list[1]=y", "env[0].name=A"},
			want: map[string]any{"list": []any{"x", "y"}, "env": []any{map[string]any{"name": "A"}}}},
		{name: "set with comma in braces", set: []string{"hosts={a,b}"}, want: map[string]any{"hosts": []any{"a", "b"}}},
		{name: "set escapes", set: []string{`a\.b=1`}, want: map[string]any{"a.b": int64(1)}},
		{name: "stdin", files: []string{"-"}, stdin: "x: 1\n", want: map[string]any{"x": float64(1)}},
		{name: "missing file", files: []string{"none.yaml"}, wantErr: "none.yaml"},
		{name: "bad yaml", files: []string{"bad.yaml"}, wantErr: "bad.yaml"},
		{name: "bad set", set: []string{"a"}, wantErr: "--set a"},
		{name: "bad set index", set: []string{"a[x]=1"}, wantErr: "--set a[x]=1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mergeValues(tc.files, tc.set, tc.setString, strings.NewReader(tc.stdin), read)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("values (-want +got):\n%s", d)
			}
		})
	}
}

func TestBadSetIsUsageError(t *testing.T) {
	_, err := mergeValues(nil, []string{"nokey"}, nil, nil, os.ReadFile)
	var ue usageError
	if !errors.As(err, &ue) {
		t.Errorf("err = %v, want a usage error", err)
	}
}

// FuzzSetValues feeds --set expressions and values files to the parser:
// it may refuse them, never panic.
func FuzzSetValues(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/values/*")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			f.Add(line, string(b))
		}
	}
	f.Add("a.b[0].c=1,d={x,y}", "a: {b: [1]}")
	f.Fuzz(func(t *testing.T, set, file string) {
		read := func(string) ([]byte, error) { return []byte(file), nil }
		_, _ = mergeValues([]string{"f.yaml"}, []string{set}, []string{set}, nil, read)
	})
}
