package fetch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"helm.sh/helm/v3/pkg/chart"

	"github.com/slipwayhq/slipway/pkg/outbound"
)

// memRegistry is go-containerregistry's in-memory registry.
func memRegistry() http.Handler {
	return registry.New(registry.Logger(log.New(io.Discard, "", 0)))
}

func mustRepo(t testing.TB, s string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestOCI reads charts from a plain-HTTP registry (AllowHTTP) holding
// charts, an image and repositories outside the path.
func TestOCI(t *testing.T) {
	reg := memRegistry()
	var requests atomic.Int32
	// Blobs of the tampered server are served with one byte changed.
	var tamper atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if tamper.Load() && strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet {
			rec := httptest.NewRecorder()
			reg.ServeHTTP(rec, r)
			b := rec.Body.Bytes()
			if len(b) > 0 {
				b[len(b)-1] ^= 1
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(b)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := srv.Listener.Addr().String()
	repoURL := "oci://" + host + "/charts"

	hello1 := &chart.Metadata{APIVersion: "v2", Name: "hello", Version: "0.1.0", AppVersion: "1.0", Description: "Test fixture"}
	hello2 := &chart.Metadata{APIVersion: "v2", Name: "hello", Version: "0.2.0+build.1", AppVersion: "1.1"}
	p1 := pushChart(t, mustRepo(t, host+"/charts/hello"), hello1, chartTgz(t, hello1), "2026-01-02T03:04:05Z", "", "")
	p2 := pushChart(t, mustRepo(t, host+"/charts/hello"), hello2, chartTgz(t, hello2), "", "", "")
	if err := remote.Tag(mustRepo(t, host+"/charts/hello").Tag("latest"), rawManifestOf(t, host+"/charts/hello:0.1.0")); err != nil {
		t.Fatal(err)
	}
	nginx := &chart.Metadata{APIVersion: "v2", Name: "nginx", Version: "1.0.0"}
	pushChart(t, mustRepo(t, host+"/charts/nginx"), nginx, chartTgz(t, nginx), "", "", "")
	liar := &chart.Metadata{APIVersion: "v2", Name: "other", Version: "1.0.0"}
	pushChart(t, mustRepo(t, host+"/charts/liar"), liar, chartTgz(t, liar), "", "", "")
	legacy := &chart.Metadata{APIVersion: "v2", Name: "legacy", Version: "1.0.0"}
	pl := pushChart(t, mustRepo(t, host+"/charts/legacy"), legacy, chartTgz(t, legacy), "", "", legacyChartMediaType)
	nolayer := &chart.Metadata{APIVersion: "v2", Name: "nolayer", Version: "1.0.0"}
	pushChart(t, mustRepo(t, host+"/charts/nolayer"), nolayer, chartTgz(t, nolayer), "", "", "application/octet-stream")
	big := &chart.Metadata{APIVersion: "v2", Name: "big", Version: "1.0.0", Description: strings.Repeat("x", MaxConfigBytes)}
	pushChart(t, mustRepo(t, host+"/charts/big"), big, chartTgz(t, big), "", "", "")
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"/charts/image:1.0.0", "/other/thing:1.0.0", "/charts/sub/deep:1.0.0", "/toplevel:1.0.0"} {
		if err := remote.Write(mustRef(t, host+ref), img); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := random.Index(64, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(mustRef(t, host+"/charts/index:1.0.0"), idx); err != nil {
		t.Fatal(err)
	}

	f := newFetcher(t, Options{Policy: policy(t, loopback...), AllowHTTP: true}, nil)
	ctx := t.Context()

	t.Run("charts by catalog", func(t *testing.T) {
		got, err := f.OCICharts(ctx, repoURL+"/", nil, nil)
		want := []string{"big", "hello", "image", "index", "legacy", "liar", "nginx", "nolayer"}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("OCICharts = %q, %v; want %q", got, err, want)
		}
		got, err = f.OCICharts(ctx, "oci://"+host, nil, nil)
		if err != nil || !slices.Equal(got, []string{"toplevel"}) {
			t.Errorf("OCICharts at the registry's root = %q, %v; want [toplevel]", got, err)
		}
	})
	t.Run("charts by name", func(t *testing.T) {
		before := requests.Load()
		got, err := f.OCICharts(ctx, repoURL, []string{"nginx", "hello", "hello", "not-pushed"}, nil)
		if want := []string{"hello", "nginx", "not-pushed"}; err != nil || !slices.Equal(got, want) {
			t.Errorf("OCICharts = %q, %v; want %q", got, err, want)
		}
		if n := requests.Load() - before; n != 0 {
			t.Errorf("named charts made %d requests, want none", n)
		}
		for _, bad := range []string{"Hello", "a/b", "", "..", "-x", "x-", "a b", "hello:1.0", strings.Repeat("a", 300)} {
			_, err := f.OCICharts(ctx, repoURL, []string{"hello", bad}, nil)
			wantErr(t, err, ErrInvalidURL)
		}
	})
	t.Run("tags", func(t *testing.T) {
		got, err := f.OCITags(ctx, repoURL, "hello", nil)
		if want := []string{"0.1.0", "0.2.0+build.1"}; err != nil || !slices.Equal(got, want) {
			t.Errorf("OCITags = %q, %v; want %q (latest is no version)", got, err, want)
		}
		_, err = f.OCITags(ctx, repoURL, "missing", nil)
		wantErr(t, err, ErrNotFound)
		if !strings.Contains(err.Error(), host) || !strings.Contains(err.Error(), "HTTP 404") {
			t.Errorf("error %q, want it to name %s and the status", err, host)
		}
	})
	t.Run("version", func(t *testing.T) {
		got, err := f.OCIVersion(ctx, repoURL, "hello", "0.1.0", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Chart != "hello" || got.Version != "0.1.0" || got.ManifestDigest != p1.manifest || got.ArchiveDigest != p1.archive {
			t.Errorf("OCIVersion = %+v, want manifest %s, archive %s", got, p1.manifest, p1.archive)
		}
		if md := got.Metadata; md == nil || md.Name != "hello" || md.Version != "0.1.0" || md.AppVersion != "1.0" || md.Description != "Test fixture" || md.APIVersion != "v2" {
			t.Errorf("Metadata = %+v, want that of %+v", got.Metadata, hello1)
		}
		if want := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC); !got.Created.Equal(want) {
			t.Errorf("Created = %s, want %s", got.Created, want)
		}
		got, err = f.OCIVersion(ctx, repoURL, "hello", "0.2.0+build.1", nil)
		if err != nil || got.ArchiveDigest != p2.archive || !got.Created.IsZero() {
			t.Errorf("OCIVersion(0.2.0+build.1) = %+v, %v; want archive %s, no creation time", got, err, p2.archive)
		}
		got, err = f.OCIVersion(ctx, repoURL, "hello", p2.manifest, nil)
		if err != nil || got.Version != "0.2.0+build.1" || got.ArchiveDigest != p2.archive {
			t.Errorf("OCIVersion(%s) = %+v, %v; want version 0.2.0+build.1, archive %s", p2.manifest, got, err, p2.archive)
		}
		if _, err := f.OCIVersion(ctx, repoURL, "nginx", p2.manifest, nil); err == nil {
			t.Errorf("OCIVersion of nginx by hello's manifest digest succeeded")
		}
		got, err = f.OCIVersion(ctx, repoURL, "legacy", "1.0.0", nil)
		if err != nil || got.ArchiveDigest != pl.archive {
			t.Errorf("OCIVersion of a chart pushed by Helm < 3.8 = %+v, %v; want archive %s", got, err, pl.archive)
		}
	})
	t.Run("not charts", func(t *testing.T) {
		for chart, err := range map[string]error{"image": ErrNotChart, "index": ErrNotChart, "liar": ErrNotChart, "nolayer": ErrNotChart, "big": ErrTooLarge} {
			_, got := f.OCIVersion(ctx, repoURL, chart, "1.0.0", nil)
			wantErr(t, got, err)
		}
		for _, v := range []string{"9.9.9", "", "1.0.0/../x", strings.Repeat("1", 200)} {
			_, err := f.OCIVersion(ctx, repoURL, "hello", v, nil)
			wantErr(t, err, ErrNotFound)
		}
	})
	t.Run("archive", func(t *testing.T) {
		got, err := f.OCIArchive(ctx, repoURL, "hello", p1.archive, nil, int64(len(p1.tgz)))
		if err != nil || !bytes.Equal(got, p1.tgz) {
			t.Errorf("OCIArchive = %d bytes, %v; want the %d pushed", len(got), err, len(p1.tgz))
		}
		_, err = f.OCIArchive(ctx, repoURL, "hello", p1.archive, nil, int64(len(p1.tgz))-1)
		wantErr(t, err, ErrTooLarge)
		_, err = f.OCIArchive(ctx, repoURL, "hello", "sha256:"+strings.Repeat("0", 64), nil, 1<<20)
		wantErr(t, err, ErrNotFound)
		for _, bad := range []string{"", "sha256:xyz", "md5:" + strings.Repeat("0", 32), p1.archive[len("sha256:"):]} {
			if _, err := f.OCIArchive(ctx, repoURL, "hello", bad, nil, 1<<20); err == nil {
				t.Errorf("OCIArchive(%q) succeeded", bad)
			}
		}
	})
	t.Run("tampered blobs", func(t *testing.T) {
		tamper.Store(true)
		defer tamper.Store(false)
		_, err := f.OCIArchive(ctx, repoURL, "hello", p1.archive, nil, 1<<20)
		wantErr(t, err, ErrBadResponse)
		_, err = f.OCIVersion(ctx, repoURL, "hello", "0.1.0", nil)
		wantErr(t, err, ErrBadResponse)
	})
	t.Run("https only without AllowHTTP", func(t *testing.T) {
		strict := newFetcher(t, Options{Policy: policy(t, loopback...)}, nil)
		before := requests.Load()
		_, err := strict.OCITags(ctx, repoURL, "hello", nil)
		wantErr(t, err, outbound.ErrDenied)
		if n := requests.Load() - before; n != 0 {
			t.Errorf("the plain-HTTP registry got %d requests", n)
		}
	})
	t.Run("HTTP URL", func(t *testing.T) {
		_, err := f.OCITags(ctx, "http://"+host+"/charts", "hello", nil)
		wantErr(t, err, ErrInvalidURL)
	})
}

func mustRef(t testing.TB, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func rawManifestOf(t testing.TB, ref string) rawManifest {
	t.Helper()
	d, err := remote.Get(mustRef(t, ref))
	if err != nil {
		t.Fatal(err)
	}
	return rawManifest{raw: d.Manifest, mt: d.MediaType}
}

// TestOCILogins checks logins against a TLS registry that wants one, and
// that a client certificate is presented to the registry only, not to the
// storage its blobs are redirected to.
func TestOCILogins(t *testing.T) {
	const user, password, token = "acme", "hunter2-password", "tok3n"
	reg := memRegistry()
	var cdn *server
	var refuseCatalog, noCatalog atomic.Bool
	srv := newServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !(ok && u == user && p == password) && r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"SECRET-BODY"}]}`, http.StatusUnauthorized)
			return
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "/_catalog") && refuseCatalog.Load():
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"DENIED"}]}`, http.StatusUnauthorized)
		case strings.HasSuffix(r.URL.Path, "/_catalog") && noCatalog.Load():
			http.NotFound(w, r)
		case strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet:
			// Blobs are served by "storage" elsewhere, as many registries do.
			http.Redirect(w, r, cdn.URL+r.URL.Path+"?X-Amz-Signature=SIG", http.StatusTemporaryRedirect)
		default:
			reg.ServeHTTP(w, r)
		}
	})
	// The storage serves the registry's blobs to whoever has the signed URL.
	cdn = newServer(t, true, reg.ServeHTTP)
	host := srv.Listener.Addr().String()
	repoURL := "oci://" + host + "/charts"
	ca := caPEM(srv)

	// Pushed through the registry's own handler, which wants no login.
	direct := httptest.NewServer(reg)
	t.Cleanup(direct.Close)
	hello := &chart.Metadata{APIVersion: "v2", Name: "hello", Version: "0.1.0"}
	p := pushChart(t, mustRepo(t, direct.Listener.Addr().String()+"/charts/hello"), hello, chartTgz(t, hello), "", "", "")

	f := newFetcher(t, Options{Policy: policy(t, loopback...), UserAgent: "slipway-catalog/test"}, nil)
	ctx := t.Context()
	cert, key := clientCert(t)
	basic := &Auth{Username: user, Password: password, CAPEM: ca}
	logins := map[string]*Auth{
		"basic":                        basic,
		"bearer":                       {BearerToken: token, CAPEM: ca},
		"basic and client certificate": {Username: user, Password: password, CAPEM: ca, ClientCertPEM: cert, ClientKeyPEM: key},
	}
	for name, auth := range logins {
		t.Run(name, func(t *testing.T) {
			beforeSrv, beforeCDN := len(srv.requests()), len(cdn.requests())
			charts, err := f.OCICharts(ctx, repoURL, nil, auth)
			if err != nil || !slices.Equal(charts, []string{"hello"}) {
				t.Errorf("OCICharts = %q, %v; want [hello]", charts, err)
			}
			tags, err := f.OCITags(ctx, repoURL, "hello", auth)
			if err != nil || !slices.Equal(tags, []string{"0.1.0"}) {
				t.Errorf("OCITags = %q, %v; want [0.1.0]", tags, err)
			}
			v, err := f.OCIVersion(ctx, repoURL, "hello", "0.1.0", auth)
			if err != nil || v.ArchiveDigest != p.archive {
				t.Fatalf("OCIVersion = %+v, %v; want archive %s", v, err, p.archive)
			}
			b, err := f.OCIArchive(ctx, repoURL, "hello", v.ArchiveDigest, auth, 1<<20)
			if err != nil || !bytes.Equal(b, p.tgz) {
				t.Errorf("OCIArchive = %d bytes, %v; want the %d pushed", len(b), err, len(p.tgz))
			}
			wantCert := len(auth.ClientCertPEM) > 0
			for _, r := range srv.requests()[beforeSrv:] {
				if r.clientCert != wantCert {
					t.Errorf("request for %s to the registry presented a client certificate: %t, want %t", r.path, r.clientCert, wantCert)
				}
				if ua := r.header.Get("User-Agent"); !strings.HasPrefix(ua, "slipway-catalog/test") {
					t.Errorf("User-Agent = %q, want slipway-catalog/test first", ua)
				}
			}
			cdnReqs := cdn.requests()[beforeCDN:]
			if len(cdnReqs) == 0 {
				t.Fatal("no blob was fetched from the storage")
			}
			for _, r := range cdnReqs {
				if r.clientCert || r.header.Get("Authorization") != "" {
					t.Errorf("request for %s to the storage carried the login (certificate %t, Authorization %q)", r.path, r.clientCert, r.header.Get("Authorization"))
				}
			}
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		wrong := &Auth{Username: user, Password: "wrong-" + password, CAPEM: ca}
		_, err := f.OCITags(ctx, repoURL, "hello", wrong)
		wantErr(t, err, ErrUnauthorized, password, "SECRET-BODY")
		if !strings.Contains(err.Error(), "refused the repository's login") {
			t.Errorf("error %q, want it to say the login was refused", err)
		}
		_, err = f.OCICharts(ctx, repoURL, nil, wrong)
		wantErr(t, err, ErrUnauthorized, password, "SECRET-BODY")
		_, err = f.OCIVersion(ctx, repoURL, "hello", "0.1.0", wrong)
		wantErr(t, err, ErrUnauthorized, password)
	})
	t.Run("no login", func(t *testing.T) {
		_, err := f.OCITags(ctx, repoURL, "hello", &Auth{CAPEM: ca})
		wantErr(t, err, ErrUnauthorized, "SECRET-BODY")
		if !strings.Contains(err.Error(), "needs a login") {
			t.Errorf("error %q, want it to say a login is needed", err)
		}
	})
	t.Run("catalog refused to a good login", func(t *testing.T) {
		refuseCatalog.Store(true)
		defer refuseCatalog.Store(false)
		_, err := f.OCICharts(ctx, repoURL, nil, basic)
		wantErr(t, err, ErrCatalogUnsupported, password)
		_, err = f.OCICharts(ctx, repoURL, nil, &Auth{Username: user, Password: "wrong", CAPEM: ca})
		wantErr(t, err, ErrUnauthorized)
		if got, err := f.OCICharts(ctx, repoURL, []string{"hello"}, basic); err != nil || !slices.Equal(got, []string{"hello"}) {
			t.Errorf("OCICharts with names = %q, %v; want [hello]", got, err)
		}
	})
	t.Run("no catalog API", func(t *testing.T) {
		noCatalog.Store(true)
		defer noCatalog.Store(false)
		_, err := f.OCICharts(ctx, repoURL, nil, basic)
		wantErr(t, err, ErrCatalogUnsupported)
		if !strings.Contains(err.Error(), "oci_charts") {
			t.Errorf("error %q, want it to say to list oci_charts", err)
		}
	})
}

// TestOCIPagination reads a paginated catalog and refuses endless ones and
// oversized answers.
func TestOCIPagination(t *testing.T) {
	var endless atomic.Bool
	var mu sync.Mutex
	var pageSizes []string
	srv := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch r.URL.Path {
		case "/v2/":
		case "/v2/_catalog":
			mu.Lock()
			pageSizes = append(pageSizes, q.Get("n"))
			mu.Unlock()
			switch last := q.Get("last"); {
			case endless.Load():
				w.Header().Set("Link", fmt.Sprintf(`</v2/_catalog?last=x%s&n=1000>; rel="next"`, last))
				fmt.Fprint(w, `{"repositories":["charts/a"]}`)
			case last == "":
				w.Header().Set("Link", `</v2/_catalog?last=charts/b&n=1000>; rel="next"`)
				fmt.Fprint(w, `{"repositories":["charts/a","charts/b","charts/b/c","chartsx/d","other/e"]}`)
			default:
				fmt.Fprint(w, `{"repositories":["charts/c","charts/a"]}`)
			}
		case "/v2/charts/huge/tags/list":
			fmt.Fprint(w, `{"name":"charts/huge","tags":["0.0.1"`)
			for i := 0; r.Context().Err() == nil && i < 1<<20; i++ {
				if _, err := fmt.Fprintf(w, `,"1.0.%d"`, i); err != nil {
					return
				}
			}
			fmt.Fprint(w, `]}`)
		case "/v2/charts/broken/tags/list":
			fmt.Fprint(w, `{"name":nope}`)
		default:
			http.NotFound(w, r)
		}
	})
	f := newFetcher(t, Options{Policy: policy(t, loopback...), AllowHTTP: true}, nil)
	repoURL := "oci://" + srv.Listener.Addr().String() + "/charts"
	got, err := f.OCICharts(t.Context(), repoURL, nil, nil)
	if want := []string{"a", "b", "c"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("OCICharts = %q, %v; want %q", got, err, want)
	}
	mu.Lock()
	if len(pageSizes) != 2 || pageSizes[0] != "1000" {
		t.Errorf("page sizes asked = %q, want 1000 then the Link's", pageSizes)
	}
	mu.Unlock()
	endless.Store(true)
	_, err = f.OCICharts(t.Context(), repoURL, nil, nil)
	wantErr(t, err, ErrCatalogUnsupported)
	_, err = f.OCITags(t.Context(), repoURL, "huge", nil)
	wantErr(t, err, ErrTooLarge)
	_, err = f.OCITags(t.Context(), repoURL, "broken", nil)
	wantErr(t, err, ErrBadResponse)
}

func TestParseOCIReference(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		ref  string
		want OCIReference
	}{
		{"oci://ghcr.io/acme/charts/web:1.4.2", OCIReference{"oci://ghcr.io/acme/charts", "web", "1.4.2"}},
		{"oci://localhost:5000/web:1.0.0", OCIReference{"oci://localhost:5000", "web", "1.0.0"}},
		{"oci://reg.example/a/web@" + d, OCIReference{"oci://reg.example/a", "web", d}},
		{"oci://reg.example/web:0.2.0_build.1", OCIReference{"oci://reg.example", "web", "0.2.0_build.1"}},
	} {
		got, err := ParseOCIReference(tc.ref)
		if err != nil || got != tc.want {
			t.Errorf("ParseOCIReference(%q) = %+v, %v; want %+v", tc.ref, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "https://reg.example/web:1.0.0", "oci://reg.example/web", "oci://localhost:5000/web",
		"oci://web:1.0.0", "oci://reg.example/:1.0.0", "oci://reg.example/web@sha256:xyz", "oci://reg.example/web@md5:" + d[7:], "oci://reg.example/web:"} {
		if got, err := ParseOCIReference(bad); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("ParseOCIReference(%q) = %+v, %v; want ErrInvalidURL", bad, got, err)
		}
	}
}

func FuzzParseOCIReference(f *testing.F) {
	for _, s := range []string{"oci://ghcr.io/acme/web:1.4.2", "oci://h/w@sha256:00", "oci://a:1/b/c:d", "oci://x/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		got, err := ParseOCIReference(ref)
		if err != nil {
			return
		}
		sep := ":"
		if strings.HasPrefix(got.Version, "sha256:") {
			sep = "@"
		}
		if back := got.Repository + "/" + got.Chart + sep + got.Version; back != ref {
			t.Fatalf("ParseOCIReference(%q) = %+v, which reads back as %q", ref, got, back)
		}
	})
}
