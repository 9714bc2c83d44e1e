package chartarchive_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"strings"
	"testing"
)

// entry is one tar entry a test archive holds.
type entry struct {
	hdr  tar.Header
	body []byte
}

func file(name, body string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}, body: []byte(body)}
}

func dir(name string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}}
}

func link(name, target string, flag byte) entry {
	return entry{hdr: tar.Header{Name: name, Linkname: target, Typeflag: flag, Mode: 0o777}}
}

// tarball writes entries with archive/tar, as most tools would.
func tarball(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatalf("write header %q: %v", hdr.Name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatalf("write %q: %v", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("close tar: %v", err)
	}
	return buf.Bytes()
}

// gz compresses parts as one gzip member. Writing to memory cannot fail, so
// an error is a broken test and panics.
func gz(parts ...[]byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, p := range parts {
		if _, err := zw.Write(p); err != nil {
			panic(err)
		}
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func tgz(t testing.TB, entries ...entry) []byte {
	t.Helper()
	return gz(tarball(t, entries...))
}

// rawHeader builds a ustar header block by hand, for entries archive/tar
// refuses to write (PAX records, NUL bytes, lying sizes).
func rawHeader(name string, flag byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "00000000000\x00")
	b[156] = flag
	copy(b[257:263], "ustar\x00")
	copy(b[263:265], "00")
	copy(b[148:156], "        ")
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// rawEntry is a header block plus body padded to the block size.
func rawEntry(name string, flag byte, body []byte) []byte {
	out := rawHeader(name, flag, int64(len(body)))
	out = append(out, body...)
	if pad := len(body) % 512; pad != 0 {
		out = append(out, make([]byte, 512-pad)...)
	}
	return out
}

// paxRecord formats one PAX record ("<len> key=value\n"), whose length
// counts its own digits.
func paxRecord(k, v string) string {
	rest := " " + k + "=" + v + "\n"
	n := len(rest) + 1
	for len(fmt.Sprint(n))+len(rest) != n {
		n++
	}
	return fmt.Sprint(n) + rest
}

var endOfArchive = make([]byte, 1024)

const goodChartYAML = `apiVersion: v2
name: demo
description: A demo chart
version: 1.2.3
appVersion: "4.5"
`

const goodValuesYAML = `replicaCount: 2
image:
  repository: nginx
  tag: "1.27"
`

const goodSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "replicaCount": {"type": "integer"},
    "image": {"type": "object", "properties": {"tag": {"type": "string"}}}
  }
}`

// goodEntries is a small chart as `helm package` lays it out, with the
// directory entries tar(1) would add.
func goodEntries() []entry {
	return []entry{
		dir("demo/"),
		file("demo/Chart.yaml", goodChartYAML),
		file("demo/values.yaml", goodValuesYAML),
		file("demo/values.schema.json", goodSchema),
		file("demo/README.md", "# demo\n"),
		dir("demo/templates/"),
		file("demo/templates/deployment.yaml", "kind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n"),
		file("demo/templates/_helpers.tpl", `{{- define "demo.name" -}}demo{{- end -}}`),
	}
}

func goodChart(t testing.TB) []byte {
	t.Helper()
	return tgz(t, goodEntries()...)
}

// subchart is a chart archive to put under charts/.
func subchart(t testing.TB, name, chartYAML string, extra ...entry) []byte {
	t.Helper()
	if chartYAML == "" {
		chartYAML = fmt.Sprintf("apiVersion: v2\nname: %s\nversion: 0.1.0\n", name)
	}
	entries := append([]entry{file(name+"/Chart.yaml", chartYAML)}, extra...)
	return tgz(t, entries...)
}

// aliasBomb is the billion-laughs document: a few hundred bytes that expand
// to 10^9 nodes.
func aliasBomb() string {
	var sb strings.Builder
	sb.WriteString("a: &a [x,x,x,x,x,x,x,x,x,x]\n")
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		fmt.Fprintf(&sb, "%s: &%s [*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s]\n", n, n, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
		prev = n
	}
	return sb.String()
}

// aliasTree is an alias bomb of a chosen size: levels of ten aliases each,
// about 10^levels nodes.
func aliasTree(levels int) string {
	var sb strings.Builder
	sb.WriteString("l0: &l0 [x,x,x,x,x,x,x,x,x,x]\n")
	for i := 1; i < levels; i++ {
		p := fmt.Sprintf("*l%d", i-1)
		fmt.Fprintf(&sb, "l%d: &l%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(p+",", 10), ","))
	}
	return sb.String()
}

// depthBomb nests mappings n deep.
func depthBomb(n int) string {
	var sb strings.Builder
	for i := range n {
		sb.WriteString(strings.Repeat(" ", i))
		sb.WriteString("a:\n")
	}
	sb.WriteString(strings.Repeat(" ", n) + "b: 1\n")
	return sb.String()
}
