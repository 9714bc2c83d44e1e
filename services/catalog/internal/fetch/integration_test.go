package fetch

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/slipwayhq/slipway/pkg/outbound"
	"github.com/slipwayhq/slipway/pkg/testenv"
)

// fixtureCharts is tools/devstack/testdata/charts, what the devstack's
// chart repository serves.
const fixtureCharts = "../../../../tools/devstack/testdata/charts"

// devPolicy is the local environment's policy: loopback allowed.
func devPolicy(t testing.TB) *outbound.Policy { return policy(t, "127.0.0.0/8", "::1/128") }

// index is the part of a Helm index.yaml the tests read.
type index struct {
	APIVersion string `yaml:"apiVersion"`
	Entries    map[string][]struct {
		Version string   `yaml:"version"`
		URLs    []string `yaml:"urls"`
		Digest  string   `yaml:"digest"`
	} `yaml:"entries"`
}

// TestDevstackChartRepo reads the devstack's chart repository (cmd/chartserve):
// the index, conditionally, and every archive it lists.
func TestDevstackChartRepo(t *testing.T) {
	env := testenv.Get(t, "chartrepo")
	ctx := t.Context()
	f := newFetcher(t, Options{Policy: devPolicy(t), AllowHTTP: true, UserAgent: "slipway-catalog/test"}, nil)
	repoURL, err := f.CheckURL(env["CHART_REPO_URL"] + "/")
	if err != nil {
		t.Fatal(err)
	}

	first, err := f.Index(ctx, repoURL, nil, "", "", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var idx index
	if err := yaml.Unmarshal(first.Body, &idx); err != nil {
		t.Fatalf("index.yaml does not parse: %v", err)
	}
	versions := map[string][]string{}
	for name, entries := range idx.Entries {
		for _, e := range entries {
			versions[name] = append(versions[name], e.Version)
		}
		slices.Sort(versions[name])
	}
	if idx.APIVersion != "v1" || !slices.Equal(versions["hello"], []string{"0.1.0", "0.2.0"}) || !slices.Equal(versions["configmap-only"], []string{"1.0.0"}) {
		t.Errorf("index lists %v (apiVersion %q), want hello 0.1.0 and 0.2.0, configmap-only 1.0.0", versions, idx.APIVersion)
	}

	// chartserve is http.FileServer: Last-Modified and If-Modified-Since,
	// no ETag.
	if first.LastModified == "" {
		t.Errorf("chartserve sent no Last-Modified")
	}
	again, err := f.Index(ctx, repoURL, nil, first.ETag, first.LastModified, 1<<20)
	if err != nil || !again.NotModified || len(again.Body) != 0 || again.LastModified != first.LastModified {
		t.Errorf("Index with Last-Modified %q = %+v, %v; want NotModified", first.LastModified, again, err)
	}
	if _, err := f.Index(ctx, repoURL, nil, "", "", int64(len(first.Body))-1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Index with a limit under the index's size = %v, want ErrTooLarge", err)
	}

	for name, entries := range idx.Entries {
		for _, e := range entries {
			if len(e.URLs) == 0 {
				t.Errorf("%s %s lists no URL", name, e.Version)
				continue
			}
			tgz, err := f.Archive(ctx, repoURL, e.URLs[0], nil, 10<<20)
			if err != nil {
				t.Errorf("Archive(%s %s): %v", name, e.Version, err)
				continue
			}
			if got := digestOf(tgz); got != "sha256:"+e.Digest {
				t.Errorf("%s %s: archive digest %s, the index says %s", name, e.Version, got, e.Digest)
			}
			if y := chartYAML(t, tgz, name); !strings.Contains(y, "version: "+e.Version) {
				t.Errorf("%s %s: Chart.yaml of the archive is %q", name, e.Version, y)
			}
		}
	}

	_, err = f.Archive(ctx, repoURL, "hello-9.9.9.tgz", nil, 1<<20)
	wantErr(t, err, ErrNotFound)

	strict := newFetcher(t, Options{Policy: policy(t), AllowHTTP: true}, nil)
	_, err = strict.Index(ctx, repoURL, nil, "", "", 1<<20)
	wantErr(t, err, outbound.ErrDenied)

	// Behind basic auth (a chartserve-like server serving the same index,
	// whose archive URLs are absolute, on the devstack's server: another
	// origin, which gets no login).
	const user, password = "acme", "hunter2-password"
	var sawArchives bool
	authSrv := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="chartrepo"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/index.yaml" {
			sawArchives = true
		}
		http.ServeContent(w, r, "index.yaml", time.Now(), bytes.NewReader(first.Body))
	})
	login := &Auth{Username: user, Password: password}
	got, err := f.Index(ctx, authSrv.URL, login, "", "", 1<<20)
	if err != nil || !bytes.Equal(got.Body, first.Body) {
		t.Fatalf("Index behind basic auth = %d bytes, %v; want the index", len(got.Body), err)
	}
	hello := idx.Entries["hello"][0]
	if !strings.HasPrefix(hello.URLs[0], repoURL+"/") {
		t.Fatalf("the index lists %s, want an absolute URL on %s", hello.URLs[0], repoURL)
	}
	if _, err := f.Archive(ctx, authSrv.URL, hello.URLs[0], login, 10<<20); err != nil {
		t.Errorf("Archive of %s listed behind basic auth: %v", hello.URLs[0], err)
	}
	if sawArchives {
		t.Errorf("the archive was asked of the index's server")
	}
	_, err = f.Index(ctx, authSrv.URL, &Auth{Username: user, Password: "wrong"}, "", "", 1<<20)
	wantErr(t, err, ErrUnauthorized, "wrong", password)
	_, err = f.Index(ctx, authSrv.URL, nil, "", "", 1<<20)
	wantErr(t, err, ErrUnauthorized)
}

// chartYAML is name/Chart.yaml in the chart archive tgz.
func chartYAML(t testing.TB, tgz []byte, name string) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no %s/Chart.yaml in the archive: %v", name, err)
		}
		if h.Name == name+"/Chart.yaml" {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
}

// TestDevstackRegistry pushes the hello fixture chart, packaged by Helm,
// to the devstack's OCI registry (distribution behind htpasswd) as Helm
// does, then reads it back.
func TestDevstackRegistry(t *testing.T) {
	env := testenv.Get(t, "registry")
	host, user, pass := env["OCI_REGISTRY"], env["OCI_REGISTRY_USERNAME"], env["OCI_REGISTRY_PASSWORD"]
	ctx := t.Context()

	ch, err := loader.LoadDir(filepath.Join(fixtureCharts, "hello-0.1.0"))
	if err != nil {
		t.Fatal(err)
	}
	saved, err := chartutil.Save(ch, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tgz, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "fetchtest-" + strings.ToLower(rand.Text()[:10])
	repoURL := "oci://" + host + "/" + prefix + "/charts"
	created := time.Now().UTC().Truncate(time.Second)
	p := pushChart(t, mustRepo(t, host+"/"+prefix+"/charts/hello"), ch.Metadata, tgz, created.Format(time.RFC3339), "", "",
		remote.WithAuth(&authn.Basic{Username: user, Password: pass}), remote.WithContext(ctx))

	f := newFetcher(t, Options{Policy: devPolicy(t), AllowHTTP: true}, nil)
	auth := &Auth{Username: user, Password: pass}
	if got, err := f.CheckURL(repoURL + "/"); err != nil || got != repoURL {
		t.Fatalf("CheckURL = %q, %v; want %q", got, err, repoURL)
	}
	charts, err := f.OCICharts(ctx, repoURL, []string{"hello"}, auth)
	if err != nil || !slices.Equal(charts, []string{"hello"}) {
		t.Errorf("OCICharts with names = %q, %v; want [hello]", charts, err)
	}
	charts, err = f.OCICharts(ctx, repoURL, nil, auth)
	if err != nil || !slices.Equal(charts, []string{"hello"}) {
		t.Errorf("OCICharts by catalog = %q, %v; want [hello]", charts, err)
	}
	tags, err := f.OCITags(ctx, repoURL, "hello", auth)
	if err != nil || !slices.Equal(tags, []string{"0.1.0"}) {
		t.Errorf("OCITags = %q, %v; want [0.1.0]", tags, err)
	}
	v, err := f.OCIVersion(ctx, repoURL, "hello", "0.1.0", auth)
	if err != nil {
		t.Fatal(err)
	}
	md := v.Metadata
	if md == nil || md.Name != ch.Metadata.Name || md.Version != ch.Metadata.Version || md.AppVersion != ch.Metadata.AppVersion ||
		md.Description != ch.Metadata.Description || md.APIVersion != ch.Metadata.APIVersion || md.Type != ch.Metadata.Type {
		t.Errorf("Metadata = %+v, want Chart.yaml's %+v", md, ch.Metadata)
	}
	if v.ArchiveDigest != digestOf(tgz) || v.ManifestDigest != p.manifest || !v.Created.Equal(created) {
		t.Errorf("OCIVersion = %+v; want archive %s (sha256 of the .tgz), manifest %s, created %s", v, digestOf(tgz), p.manifest, created)
	}
	b, err := f.OCIArchive(ctx, repoURL, "hello", v.ArchiveDigest, auth, 10<<20)
	if err != nil || !bytes.Equal(b, tgz) {
		t.Errorf("OCIArchive = %d bytes, %v; want the %d of the .tgz", len(b), err, len(tgz))
	}

	wrong := &Auth{Username: user, Password: "wrong-" + pass}
	for call, err := range map[string]error{
		"OCITags":    second(f.OCITags(ctx, repoURL, "hello", wrong)),
		"OCICharts":  second(f.OCICharts(ctx, repoURL, nil, wrong)),
		"OCIVersion": second(f.OCIVersion(ctx, repoURL, "hello", "0.1.0", wrong)),
		"OCIArchive": second(f.OCIArchive(ctx, repoURL, "hello", v.ArchiveDigest, wrong, 10<<20)),
		"anonymous":  second(f.OCITags(ctx, repoURL, "hello", nil)),
	} {
		if !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), pass) {
			t.Errorf("%s with a wrong login = %v, want ErrUnauthorized without the password", call, err)
		}
	}
	_, err = f.OCITags(ctx, repoURL, "missing", auth)
	wantErr(t, err, ErrNotFound)

	// Without AllowHTTP the plain-HTTP registry is not spoken to.
	_, err = newFetcher(t, Options{Policy: devPolicy(t)}, nil).OCITags(ctx, repoURL, "hello", auth)
	wantErr(t, err, outbound.ErrDenied, pass)
}

func second[T any](_ T, err error) error { return err }
