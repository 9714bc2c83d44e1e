package chartarchive_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayhq/slipway/pkg/chartarchive"
)

var update = flag.Bool("update", false, "rewrite the seed archives in testdata/")

// seeds are the fuzz corpus's starting points, written to testdata/ once with
// -update and committed, so fuzzing starts from real archive structure.
var seeds = []struct {
	name  string
	build func(t *testing.T) []byte
	ok    bool // Load accepts it
}{
	{name: "valid.tgz", build: func(t *testing.T) []byte { return goodChart(t) }, ok: true},
	{name: "helm-saved.tgz", build: helmSaved, ok: true},
	{
		name: "subchart-archive.tgz",
		build: func(t *testing.T) []byte {
			return tgz(t, file("demo/Chart.yaml", goodChartYAML), file("demo/charts/redis-0.1.0.tgz", string(subchart(t, "redis", "", file("redis/values.yaml", "port: 6379\n")))))
		},
		ok: true,
	},
	{name: "symlink.tgz", build: func(t *testing.T) []byte {
		return tgz(t, file("demo/Chart.yaml", goodChartYAML), link("demo/values.yaml", "/etc/passwd", '2'))
	}},
	{name: "traversal.tgz", build: func(t *testing.T) []byte {
		return tgz(t, file("demo/Chart.yaml", goodChartYAML), file("demo/../../x", "x"))
	}},
	{name: "duplicate.tgz", build: func(t *testing.T) []byte {
		return tgz(t, file("demo/Chart.yaml", goodChartYAML), file("demo/Chart.yaml", goodChartYAML))
	}},
	{name: "alias-bomb.tgz", build: func(t *testing.T) []byte {
		return tgz(t, file("demo/Chart.yaml", goodChartYAML+aliasBomb()))
	}},
	{name: "truncated.tgz", build: func(t *testing.T) []byte { a := goodChart(t); return a[:len(a)*2/3] }},
}

// TestSeeds keeps the committed seeds what their names say. With -update it
// rewrites them first.
func TestSeeds(t *testing.T) {
	for _, s := range seeds {
		t.Run(s.name, func(t *testing.T) {
			p := filepath.Join("testdata", s.name)
			if *update {
				if err := os.WriteFile(p, s.build(t), 0o644); err != nil {
					t.Fatalf("write seed: %v", err)
				}
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatalf("read seed (run with -update to write it): %v", err)
			}
			_, err = chartarchive.Load(data, chartarchive.Limits{})
			if s.ok && err != nil {
				t.Errorf("Load: %v, want the seed accepted", err)
			}
			if !s.ok && !errors.Is(err, chartarchive.ErrRefused) {
				t.Errorf("Load: %v, want the seed refused", err)
			}
		})
	}
}

func readSeeds(f *testing.F) [][]byte {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.tgz"))
	if err != nil {
		f.Fatal(err)
	}
	if len(paths) == 0 {
		f.Fatal("no seeds in testdata/ (go test -run TestSeeds -update writes them)")
	}
	var out [][]byte
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

func addSeeds(f *testing.F) {
	for _, s := range readSeeds(f) {
		f.Add(s)
	}
}

// fuzzLimits are small so the fuzzer can reach them.
var fuzzLimits = chartarchive.Limits{MaxCompressed: 1 << 20, MaxDecompressed: 1 << 20, MaxFiles: 64, MaxFileBytes: 256 << 10}

func FuzzFiles(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFiles(t, data)
	})
}

// FuzzTar mutates the tar stream under the gzip layer, where mutations of
// compressed bytes seldom reach: headers, names and sizes.
func FuzzTar(f *testing.F) {
	for _, s := range readSeeds(f) {
		zr, err := gzip.NewReader(bytes.NewReader(s))
		if err != nil {
			continue
		}
		raw, _ := io.ReadAll(zr) // a truncated seed still gives its prefix
		f.Add(raw)
	}
	// One writer, reset for each input: a fresh gzip.Writer allocates
	// about a megabyte, which would dominate the fuzzer's time.
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	var buf bytes.Buffer
	f.Fuzz(func(t *testing.T, raw []byte) {
		buf.Reset()
		zw.Reset(&buf)
		if _, err := zw.Write(raw); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		checkFiles(t, buf.Bytes())
	})
}

// checkFiles runs Files and checks that a refusal says so and an accepted
// archive obeys the limits and path rules.
func checkFiles(t *testing.T, data []byte) {
	files, err := chartarchive.Files(data, fuzzLimits)
	if err != nil {
		if !errors.Is(err, chartarchive.ErrRefused) {
			t.Fatalf("error %v does not wrap ErrRefused", err)
		}
		return
	}
	if len(files) == 0 || len(files) > fuzzLimits.MaxFiles {
		t.Fatalf("accepted %d files, want 1 to %d", len(files), fuzzLimits.MaxFiles)
	}
	var total int64
	names := map[string]bool{}
	for _, f := range files {
		if n := int64(len(f.Data)); n > fuzzLimits.MaxFileBytes {
			t.Errorf("file %q has %d bytes, over MaxFileBytes", f.Name, n)
		}
		total += int64(len(f.Data))
		if f.Name == "" || path.IsAbs(f.Name) || path.Clean(f.Name) != f.Name || strings.HasPrefix(f.Name, "..") ||
			strings.ContainsAny(f.Name, "\\\x00") {
			t.Errorf("accepted name %q", f.Name)
		}
		if names[f.Name] {
			t.Errorf("accepted %q twice", f.Name)
		}
		names[f.Name] = true
	}
	if total > fuzzLimits.MaxDecompressed {
		t.Errorf("accepted %d bytes, over MaxDecompressed", total)
	}
	for n := range names {
		for d := path.Dir(n); d != "."; d = path.Dir(d) {
			if names[d] {
				t.Errorf("accepted %q under file %q", n, d)
			}
		}
	}
}

func FuzzLoad(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ct, err := chartarchive.Read(data, fuzzLimits)
		if err != nil {
			if !errors.Is(err, chartarchive.ErrRefused) {
				t.Fatalf("error %v does not wrap ErrRefused", err)
			}
			return
		}
		if ct.Metadata == nil || ct.Values == nil {
			t.Fatalf("accepted chart without metadata or values: %+v", ct)
		}
	})
}
