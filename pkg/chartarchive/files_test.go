package chartarchive_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayhq/slipway/pkg/chartarchive"
)

func TestFilesGood(t *testing.T) {
	tests := []struct {
		name    string
		archive func(t *testing.T) []byte
		lim     chartarchive.Limits
		want    map[string]string
	}{
		{
			name: "tar(1) layout with directory entries",
			archive: func(t *testing.T) []byte {
				return tgz(t, dir("demo/"), file("demo/Chart.yaml", "name: demo\n"), dir("demo/templates/"), file("demo/templates/a.yaml", "a"))
			},
			want: map[string]string{"Chart.yaml": "name: demo\n", "templates/a.yaml": "a"},
		},
		{
			name: "helm package layout without directory entries",
			archive: func(t *testing.T) []byte {
				return tgz(t, file("demo/Chart.yaml", "name: demo\n"), file("demo/charts/sub/Chart.yaml", "name: sub\n"))
			},
			want: map[string]string{"Chart.yaml": "name: demo\n", "charts/sub/Chart.yaml": "name: sub\n"},
		},
		{
			name:    "byte order mark trimmed as Helm does",
			archive: func(t *testing.T) []byte { return tgz(t, file("demo/Chart.yaml", "\uFEFFname: demo\n")) },
			want:    map[string]string{"Chart.yaml": "name: demo\n"},
		},
		{
			name: "git archive global header skipped",
			archive: func(t *testing.T) []byte {
				return tgz(t, entry{hdr: tar.Header{Name: "pax_global_header", Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "0123abcd"}}}, file("demo/Chart.yaml", "x"))
			},
			want: map[string]string{"Chart.yaml": "x"},
		},
		{
			name: "long names through PAX records",
			archive: func(t *testing.T) []byte {
				return tgz(t, file("demo/templates/"+strings.Repeat("n", 200)+".yaml", "x"), file("demo/Chart.yaml", "x"))
			},
			want: map[string]string{"templates/" + strings.Repeat("n", 200) + ".yaml": "x", "Chart.yaml": "x"},
		},
		{
			name:    "empty file",
			archive: func(t *testing.T) []byte { return tgz(t, file("demo/Chart.yaml", "x"), file("demo/.helmignore", "")) },
			want:    map[string]string{"Chart.yaml": "x", ".helmignore": ""},
		},
		{
			name: "files exactly at the limits",
			archive: func(t *testing.T) []byte {
				return tgz(t, file("demo/a", strings.Repeat("a", 10)), file("demo/b", strings.Repeat("b", 10)))
			},
			lim:  chartarchive.Limits{MaxFiles: 2, MaxFileBytes: 10, MaxDecompressed: 20},
			want: map[string]string{"a": strings.Repeat("a", 10), "b": strings.Repeat("b", 10)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files, err := chartarchive.Files(tc.archive(t), tc.lim)
			if err != nil {
				t.Fatalf("Files: %v", err)
			}
			got := map[string]string{}
			for _, f := range files {
				got[f.Name] = string(f.Data)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFilesRefused(t *testing.T) {
	small := chartarchive.Limits{MaxFiles: 3, MaxFileBytes: 100, MaxDecompressed: 250}
	tests := []struct {
		name    string
		archive func(t *testing.T) []byte
		lim     chartarchive.Limits
		want    string // in the message
	}{
		{name: "not gzip", archive: func(*testing.T) []byte { return []byte("apiVersion: v2\nname: demo\n") }, want: "not a gzip stream"},
		{name: "empty input", archive: func(*testing.T) []byte { return nil }, want: "not a gzip stream"},
		{name: "gzip but not tar", archive: func(t *testing.T) []byte { return gz([]byte(strings.Repeat("hello ", 200))) }, want: "truncated or corrupt"},
		{
			name: "truncated archive",
			archive: func(t *testing.T) []byte {
				a := tgz(t, file("demo/Chart.yaml", strings.Repeat("x: y\n", 1000)))
				return a[:len(a)/2]
			},
			want: "truncated or corrupt",
		},
		{
			// The tar ends inside the first half; only reading on to the gzip
			// trailer finds the damage.
			name:    "truncated gzip trailer",
			archive: func(t *testing.T) []byte { a := goodChart(t); return a[:len(a)-4] },
			want:    "truncated or corrupt",
		},
		{
			name: "corrupt gzip checksum",
			archive: func(t *testing.T) []byte {
				a := bytes.Clone(goodChart(t))
				a[len(a)-8] ^= 0xff
				return a
			},
			want: "truncated or corrupt",
		},
		{name: "empty tar", archive: func(t *testing.T) []byte { return tgz(t) }, want: "no files"},
		{name: "only directories", archive: func(t *testing.T) []byte { return tgz(t, dir("demo/"), dir("demo/templates/")) }, want: "no files"},
		{name: "over MaxCompressed", archive: func(t *testing.T) []byte { return goodChart(t) }, lim: chartarchive.Limits{MaxCompressed: 100}, want: "over MaxCompressed 100"},
		{
			name: "too many files",
			archive: func(t *testing.T) []byte {
				return tgz(t, file("demo/a", "1"), file("demo/b", "2"), file("demo/c", "3"), file("demo/d", "4"))
			},
			lim:  small,
			want: `entry "demo/d": more than MaxFiles 3 files`,
		},
		{
			name: "too many files at the default limit",
			archive: func(t *testing.T) []byte {
				entries := make([]entry, chartarchive.DefaultMaxFiles+1)
				for i := range entries {
					entries[i] = file(fmt.Sprintf("demo/templates/%d.yaml", i), "")
				}
				return tgz(t, entries...)
			},
			want: "more than MaxFiles 5000 files",
		},
		{
			name: "too many directory entries",
			archive: func(t *testing.T) []byte {
				return tgz(t, file("demo/a", "1"), dir("demo/b/"), dir("demo/c/"), dir("demo/d/"), dir("demo/e/"))
			},
			lim:  small,
			want: `entry "demo/e/": more than 3 directory entries`,
		},
		{name: "big single file", archive: func(t *testing.T) []byte { return tgz(t, file("demo/big", strings.Repeat("x", 101))) }, lim: small, want: `entry "demo/big": header says 101 bytes, over MaxFileBytes 100`},
		{
			name: "big single file at the default limit",
			archive: func(t *testing.T) []byte {
				return tgz(t, file("demo/Chart.yaml", "x"), file("demo/big", strings.Repeat("x", 5<<20+1)))
			},
			want: "over MaxFileBytes 5242880",
		},
		{
			name: "files add up past MaxDecompressed",
			archive: func(t *testing.T) []byte {
				return tgz(t, file("demo/a", strings.Repeat("a", 100)), file("demo/b", strings.Repeat("b", 100)), file("demo/c", strings.Repeat("c", 51)))
			},
			lim:  small,
			want: `entry "demo/c": header says 51 bytes, over what is left of MaxDecompressed 250`,
		},
		{name: "symlink", archive: func(t *testing.T) []byte {
			return tgz(t, file("demo/Chart.yaml", "x"), link("demo/values.yaml", "/etc/passwd", tar.TypeSymlink))
		}, want: `entry "demo/values.yaml": symlink entries are not allowed`},
		{name: "hardlink", archive: func(t *testing.T) []byte {
			return tgz(t, file("demo/Chart.yaml", "x"), link("demo/values.yaml", "demo/Chart.yaml", tar.TypeLink))
		}, want: `entry "demo/values.yaml": hard link entries are not allowed`},
		{name: "character device", archive: func(t *testing.T) []byte { return tgz(t, link("demo/null", "", tar.TypeChar)) }, want: "character device entries are not allowed"},
		{name: "block device", archive: func(t *testing.T) []byte { return tgz(t, link("demo/sda", "", tar.TypeBlock)) }, want: "block device entries are not allowed"},
		{name: "fifo", archive: func(t *testing.T) []byte { return tgz(t, link("demo/pipe", "", tar.TypeFifo)) }, want: "FIFO entries are not allowed"},
		{
			name:    "unknown type",
			archive: func(*testing.T) []byte { return gz(rawEntry("demo/x", 'Z', []byte("x")), endOfArchive) },
			want:    `type 'Z' entries are not allowed`,
		},
		{
			name: "sparse file",
			archive: func(*testing.T) []byte {
				pax := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") + paxRecord("GNU.sparse.name", "demo/holes") + paxRecord("GNU.sparse.realsize", "1073741824")
				// Format 1.0 keeps the map in the data: one hole-free block of 1 byte.
				body := append([]byte("1\n0\n1\n"), make([]byte, 512-6)...)
				body = append(body, 'x')
				return gz(rawEntry("PaxHeaders/holes", tar.TypeXHeader, []byte(pax)), rawEntry("demo/GNUSparseFile.0/holes", tar.TypeReg, body), endOfArchive)
			},
			want: "sparse files are not allowed",
		},
		{name: "absolute path", archive: func(t *testing.T) []byte { return tgz(t, file("/demo/Chart.yaml", "x")) }, want: `entry "/demo/Chart.yaml": absolute path`},
		{name: "dot-dot traversal", archive: func(t *testing.T) []byte {
			return tgz(t, file("demo/Chart.yaml", "x"), file("demo/../../etc/cron.d/x", "x"))
		}, want: `entry "demo/../../etc/cron.d/x": path has a ".." element`},
		{name: "leading dot-dot", archive: func(t *testing.T) []byte { return tgz(t, file("../demo/Chart.yaml", "x")) }, want: `path has a ".." element`},
		{name: "dot-dot directory", archive: func(t *testing.T) []byte { return tgz(t, file("demo/Chart.yaml", "x"), dir("demo/../")) }, want: `path has a ".." element`},
		{name: "backslash path", archive: func(t *testing.T) []byte { return tgz(t, file(`demo\templates\a.yaml`, "x")) }, want: "name has a backslash"},
		{name: "windows traversal", archive: func(t *testing.T) []byte { return tgz(t, file(`demo/..\..\x`, "x")) }, want: "name has a backslash"},
		{name: "windows drive", archive: func(t *testing.T) []byte { return tgz(t, file("demo/C:/x", "x")) }, want: `Windows drive element "C:"`},
		{name: "dot element", archive: func(t *testing.T) []byte { return tgz(t, file("./demo/Chart.yaml", "x")) }, want: `path has a "." element`},
		{name: "empty element", archive: func(t *testing.T) []byte { return tgz(t, file("demo//Chart.yaml", "x")) }, want: "path has an empty element"},
		{name: "control character", archive: func(t *testing.T) []byte { return tgz(t, file("demo/a\nb", "x")) }, want: "name has a control character"},
		{name: "name too long", archive: func(t *testing.T) []byte { return tgz(t, file("demo/"+strings.Repeat("a", 1100), "x")) }, want: "over 1024"},
		{name: "path too deep", archive: func(t *testing.T) []byte { return tgz(t, file("demo"+strings.Repeat("/a", 64), "x")) }, want: "path has 65 elements, over 64"},
		{name: "duplicate file", archive: func(t *testing.T) []byte {
			return tgz(t, file("demo/Chart.yaml", "a"), file("demo/values.yaml", ""), file("demo/Chart.yaml", "b"))
		}, want: `entry "demo/Chart.yaml": duplicate file`},
		{name: "duplicate directory", archive: func(t *testing.T) []byte { return tgz(t, file("demo/Chart.yaml", "a"), dir("demo/t/"), dir("demo/t")) }, want: "duplicate directory entry"},
		{name: "file then directory", archive: func(t *testing.T) []byte { return tgz(t, file("demo/templates", "a"), file("demo/templates/x", "b")) }, want: `path runs through file "templates"`},
		{name: "directory then file", archive: func(t *testing.T) []byte { return tgz(t, file("demo/templates/x", "b"), file("demo/templates", "a")) }, want: "file has the path of a directory"},
		{name: "file then directory entry", archive: func(t *testing.T) []byte { return tgz(t, file("demo/templates", "a"), dir("demo/templates/")) }, want: "directory has the path of a file"},
		{name: "two top-level directories", archive: func(t *testing.T) []byte { return tgz(t, file("demo/Chart.yaml", "a"), file("other/Chart.yaml", "b")) }, want: `second top-level directory "other" (the first is "demo")`},
		{name: "file at the top level", archive: func(t *testing.T) []byte { return tgz(t, file("Chart.yaml", "a")) }, want: `entry "Chart.yaml": file at the top level`},
		{name: "file at the top level after the chart", archive: func(t *testing.T) []byte { return tgz(t, file("demo/Chart.yaml", "a"), file("demo", "b")) }, want: `file at the top level`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files, err := chartarchive.Files(tc.archive(t), tc.lim)
			if err == nil {
				t.Fatalf("Files returned %d files, want an error containing %q", len(files), tc.want)
			}
			if !errors.Is(err, chartarchive.ErrRefused) {
				t.Errorf("error %v does not wrap ErrRefused", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// zeroMembers returns n gzip members of 16 MiB of zeros each: concatenated
// members are one stream to a gzip reader, so a small archive can stand for
// gigabytes without a test compressing gigabytes.
func zeroMembers(t testing.TB, n int) []byte {
	t.Helper()
	return bytes.Repeat(gz(make([]byte, 16<<20)), n)
}

func TestFilesGzipBomb(t *testing.T) {
	tests := []struct {
		name     string
		archive  func(t *testing.T) []byte
		want     string
		maxAlloc uint64 // bytes Files may allocate; 0 leaves it unchecked
	}{
		{
			// A valid chart followed by 1 GiB of zeros after the tar's end:
			// no header ever claims the bytes, so only the stream count
			// stops them.
			name:     "zeros after the end of the tar",
			archive:  func(t *testing.T) []byte { return append(bytes.Clone(goodChart(t)), zeroMembers(t, 64)...) },
			want:     "decompressed tar stream is over its limit",
			maxAlloc: 4 << 20, // skipping the tail must not buffer it
		},
		{
			// archive/tar reads consecutive PAX headers inside one Next call;
			// they never surface as entries to count.
			name: "endless PAX headers",
			archive: func(t *testing.T) []byte {
				rec := paxRecord("comment", strings.Repeat("a", 1000000))
				member := gz(rawEntry("PaxHeaders/x", tar.TypeXHeader, []byte(rec)))
				return bytes.Repeat(member, 200)
			},
			// Each record is buffered and dropped by archive/tar itself, so
			// what is allocated is not checked, only that it stops.
			want: "decompressed tar stream is over its limit",
		},
		{
			name: "many files each under the limit",
			archive: func(t *testing.T) []byte {
				entries := make([]entry, 20)
				for i := range entries {
					entries[i] = file(fmt.Sprintf("demo/%d", i), strings.Repeat("\x00", 4<<20))
				}
				return tgz(t, entries...)
			},
			want:     "over what is left of MaxDecompressed 52428800",
			maxAlloc: 64 << 20, // the files kept, and no more
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.archive(t)
			if len(data) > chartarchive.DefaultMaxCompressed {
				t.Fatalf("bomb is %d bytes, not a small archive", len(data))
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := chartarchive.Files(data, chartarchive.Limits{})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, chartarchive.ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Files: %v, want a refusal containing %q", err, tc.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; tc.maxAlloc > 0 && alloc > tc.maxAlloc {
				t.Errorf("allocated %d KiB reading a bomb, want at most %d KiB", alloc>>10, tc.maxAlloc>>10)
			}
		})
	}
}

func BenchmarkFilesGzipBomb(b *testing.B) {
	data := append(bytes.Clone(goodChart(b)), zeroMembers(b, 64)...)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := chartarchive.Files(data, chartarchive.Limits{}); err == nil {
			b.Fatal("bomb accepted")
		}
	}
}

func BenchmarkFilesGood(b *testing.B) {
	data := goodChart(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := chartarchive.Files(data, chartarchive.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDigest(t *testing.T) {
	// sha256 of the empty string, as every tool prints it.
	const want = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if got := chartarchive.Digest(nil); got != want {
		t.Errorf("Digest(nil) = %s, want %s", got, want)
	}
}
