package fetch

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"helm.sh/helm/v3/pkg/chart"
)

// pushed is a chart version pushed by pushChart.
type pushed struct {
	manifest, archive string // digests
	tgz               []byte
}

// rawManifest is a manifest pushed as given.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// pushChart pushes tgz to repo as `helm push` does: the chart's metadata
// as the config blob, the archive as the one layer, an OCI manifest
// tagged with the version ('+' written '_'). configMT and layerMT default
// to Helm's media types; created, when set, is the created annotation.
func pushChart(t testing.TB, repo name.Repository, md *chart.Metadata, tgz []byte, created string, configMT, layerMT types.MediaType, opts ...remote.Option) pushed {
	t.Helper()
	if configMT == "" {
		configMT = HelmConfigMediaType
	}
	if layerMT == "" {
		layerMT = HelmChartMediaType
	}
	cfg, err := json.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1}
	for i, blob := range [][]byte{cfg, tgz} {
		mt := configMT
		if i == 1 {
			mt = layerMT
		}
		l := static.NewLayer(blob, mt)
		if err := remote.WriteLayer(repo, l, opts...); err != nil {
			t.Fatalf("push blob: %v", err)
		}
		d, _ := l.Digest()
		desc := v1.Descriptor{MediaType: mt, Size: int64(len(blob)), Digest: d}
		if i == 0 {
			m.Config = desc
		} else {
			m.Layers = append(m.Layers, desc)
		}
	}
	if created != "" {
		m.Annotations = map[string]string{createdAnnotation: created}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	tag := repo.Tag(strings.ReplaceAll(md.Version, "+", "_"))
	if err := remote.Put(tag, rawManifest{raw, types.OCIManifestSchema1}, opts...); err != nil {
		t.Fatalf("push manifest %s: %v", tag, err)
	}
	return pushed{manifest: digestOf(raw), archive: digestOf(tgz), tgz: tgz}
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// chartTgz is a minimal chart archive of md.
func chartTgz(t testing.TB, md *chart.Metadata) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	y := "apiVersion: v2\nname: " + md.Name + "\nversion: " + md.Version + "\n"
	if err := tw.WriteHeader(&tar.Header{Name: md.Name + "/Chart.yaml", Mode: 0o644, Size: int64(len(y))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(y)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
