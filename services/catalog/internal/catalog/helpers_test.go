package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/repo"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/outbound"
	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
	"github.com/slipwayhq/slipway/services/catalog/internal/fetch"
)

// testChart is a chart a test repository serves.
type testChart struct {
	name, version, appVersion, description, typ string
	keywords                                    []string
	deprecated                                  bool
	values                                      string
	schema                                      string
	readme                                      string
}

// chartRepo is a real HTTP Helm repository: archives packaged with the Helm
// SDK and an index.yaml written by it, served over loopback, optionally
// behind basic auth, counting what is fetched.
type chartRepo struct {
	srv            *httptest.Server
	dir            string
	user, password string
	mu             sync.Mutex
	etag           bool
	indexGets      atomic.Int64
	indexParsedFor atomic.Int64 // 200 answers with a body
	archiveGets    atomic.Int64
}

func newChartRepo(t *testing.T, basicAuth bool, charts ...testChart) *chartRepo {
	t.Helper()
	r := &chartRepo{dir: t.TempDir(), etag: true}
	if basicAuth {
		r.user, r.password = "reader", "s3cret-"+t.Name()
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	r.publish(t, charts...)
	return r
}

// publish packages charts (adding to those already published) and
// rewrites index.yaml.
func (r *chartRepo) publish(t *testing.T, charts ...testChart) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range charts {
		ch := &chart.Chart{Metadata: &chart.Metadata{
			APIVersion: chart.APIVersionV2, Name: c.name, Version: c.version, AppVersion: c.appVersion,
			Description: c.description, Keywords: c.keywords, Deprecated: c.deprecated, Type: c.typ,
		}}
		if ch.Metadata.Type == "" {
			ch.Metadata.Type = "application"
		}
		if c.values == "" {
			c.values = "replicaCount: 1\nimage:\n  repository: nginx\n  tag: latest\n"
		}
		ch.Raw = append(ch.Raw, &chart.File{Name: "values.yaml", Data: []byte(c.values)})
		vals, err := chartutil.ReadValues([]byte(c.values))
		if err != nil {
			t.Fatal(err)
		}
		ch.Values = vals
		if c.schema != "" {
			ch.Schema = []byte(c.schema)
		}
		if c.readme != "" {
			ch.Files = append(ch.Files, &chart.File{Name: "README.md", Data: []byte(c.readme)})
		}
		ch.Templates = []*chart.File{{Name: "templates/cm.yaml", Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n")}}
		if _, err := chartutil.Save(ch, r.dir); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := repo.IndexDirectory(r.dir, r.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	idx.SortEntries()
	if err := idx.WriteFile(filepath.Join(r.dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r *chartRepo) serve(w http.ResponseWriter, req *http.Request) {
	if r.user != "" {
		u, p, ok := req.BasicAuth()
		if !ok || u != r.user || p != r.password {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	}
	name := strings.TrimPrefix(req.URL.Path, "/")
	r.mu.Lock()
	data, err := os.ReadFile(filepath.Join(r.dir, filepath.Base(name)))
	r.mu.Unlock()
	if err != nil || strings.Contains(name, "/") {
		http.NotFound(w, req)
		return
	}
	if name == "index.yaml" {
		r.indexGets.Add(1)
		if r.etag {
			sum := sha256.Sum256(data)
			tag := `"` + hex.EncodeToString(sum[:8]) + `"`
			w.Header().Set("ETag", tag)
			if req.Header.Get("If-None-Match") == tag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		r.indexParsedFor.Add(1)
	} else {
		r.archiveGets.Add(1)
	}
	_, _ = w.Write(data)
}

// fakeLogins holds each org's helm-repository credentials: tests of
// pure catalog logic stand in for the clusters service here.
type fakeLogins struct {
	mu    sync.Mutex
	creds map[string]RepositoryLogin // "org/credential" -> login
	calls atomic.Int64
}

func (f *fakeLogins) add(org, cred string, auth *fetch.Auth) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.creds == nil {
		f.creds = map[string]RepositoryLogin{}
	}
	f.creds[org+"/"+cred] = RepositoryLogin{CredentialID: "id-" + cred, Auth: auth}
	f.creds[org+"/id-"+cred] = RepositoryLogin{CredentialID: "id-" + cred, Auth: auth}
}

func (f *fakeLogins) RepositoryAuth(_ context.Context, org, credential, _ string) (RepositoryLogin, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.creds[org+"/"+credential]
	if !ok {
		return RepositoryLogin{}, status.Error(codes.NotFound, "credential "+credential+" not found")
	}
	return l, nil
}

type fakeClusters map[string]string // "org/name-or-id" -> id

func (f fakeClusters) ClusterID(_ context.Context, org, cluster string) (string, error) {
	if id, ok := f[org+"/"+cluster]; ok {
		return id, nil
	}
	return "", fmt.Errorf("%w: cluster %q is not registered in the organization", ErrUnprocessable, cluster)
}

type fakeImages map[string]Image // "org/name" -> newest

func (f fakeImages) Newest(_ context.Context, org, name string) (Image, error) {
	if img, ok := f[org+"/"+name]; ok {
		return img, nil
	}
	return Image{}, fmt.Errorf("%w: image %q has no version recorded in the organization", ErrUnprocessable, name)
}

type fakeReleases struct {
	mu   sync.Mutex
	rels map[string]TargetRelease // "org/app/target"
	off  bool                     // answer ErrNotTracked
}

func (f *fakeReleases) set(org, app, target string, r TargetRelease) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rels == nil {
		f.rels = map[string]TargetRelease{}
	}
	f.rels[org+"/"+app+"/"+target] = r
}

func (f *fakeReleases) Latest(_ context.Context, org, app, target string) (TargetRelease, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.off {
		return TargetRelease{}, false, ErrNotTracked
	}
	r, ok := f.rels[org+"/"+app+"/"+target]
	return r, ok, nil
}

// env is a catalog over a real store, a real fetcher and real repositories.
type env struct {
	svc      Service
	store    *SQLStore
	syncer   *Syncer
	logins   *fakeLogins
	releases *fakeReleases
}

func loopbackFetcher(t testing.TB) *fetch.Fetcher {
	t.Helper()
	policy, err := outbound.New(outbound.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := fetch.New(fetch.Options{Policy: policy, AllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func newEnv(t *testing.T, dsn string, limits Limits) *env {
	t.Helper()
	store, err := OpenStore(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	log := slogDiscard()
	f := loopbackFetcher(t)
	e := &env{store: store, logins: &fakeLogins{}, releases: &fakeReleases{}}
	e.syncer = NewSyncer(store, f, e.logins, SyncOptions{Limits: limits}, log, nil)
	e.svc = NewService(Deps{
		Store: store, Fetcher: f, Logins: e.logins,
		Clusters: fakeClusters{"acme/c1": "id-c1", "acme/id-c1": "id-c1", "acme/c2": "id-c2", "acme/id-c2": "id-c2", "other/o1": "id-o1"},
		Images: fakeImages{
			"acme/web":  {Name: "web", Version: "1.2.0", Reference: "registry.example.com/acme/web:1.2.0", Digest: "sha256:" + strings.Repeat("ab", 32)},
			"other/web": {Name: "web", Version: "9.0.0", Reference: "registry.example.com/other/web:9.0.0"},
		},
		Releases: e.releases,
	}, Options{Limits: limits}, log)
	return e
}

// sync runs every due sync to completion.
func (e *env) sync(t *testing.T) {
	t.Helper()
	if err := e.syncer.SyncNow(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func as(org string, role identity.Role) context.Context {
	return identity.NewContext(context.Background(), identity.Identity{Subject: "user:" + org + "-" + string(role), Org: org, Role: role}, "")
}

func TestMain(m *testing.M) { sqltest.Main(m) }
