package catalog

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
	"github.com/slipwayhq/slipway/pkg/validate"
	"github.com/slipwayhq/slipway/services/catalog/internal/fetch"
)

const helloSchema = `{
  "$schema": "https://json-schema.org/draft-07/schema#",
  "type": "object",
  "required": ["replicaCount", "image"],
  "properties": {
    "replicaCount": {"type": "integer", "minimum": 1},
    "image": {
      "type": "object",
      "required": ["repository", "tag"],
      "properties": {"repository": {"type": "string"}, "tag": {"type": "string"}, "digest": {"type": "string", "pattern": "^sha256:"}}
    },
    "service": {"type": "object", "properties": {"port": {"type": "integer", "maximum": 65535}}}
  }
}`

func fixtureCharts() []testChart {
	return []testChart{
		{name: "hello", version: "0.1.0", appVersion: "1.0", description: "Says hello", keywords: []string{"demo"}},
		{name: "hello", version: "0.2.0", appVersion: "1.1", description: "Says hello", keywords: []string{"demo"}},
		{name: "hello", version: "1.0.0", appVersion: "2.0", description: "Says hello to everyone", keywords: []string{"demo", "greeting"},
			schema: helloSchema, readme: "# hello\n\nA friendly chart.\n", values: "replicaCount: 1\nimage:\n  repository: nginx\n  tag: \"1.27\"\nservice:\n  port: 80\n"},
		{name: "hello", version: "2.0.0-rc.1", appVersion: "3.0", description: "Says hello, next", keywords: []string{"demo"}},
		{name: "redis", version: "7.0.0", appVersion: "7.0", description: "In-memory key value store", keywords: []string{"cache", "database"}},
		{name: "legacy", version: "1.0.0", description: "Old stuff, says hello too", deprecated: true},
		{name: "helpers", version: "1.0.0", description: "Template helpers", typ: "library"},
	}
}

func code(err error) codes.Code { return status.Code(errorTable.ToStatus(err)) }

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := code(err); got != want {
		t.Fatalf("error %v: code %v, want %v", err, got, want)
	}
}

func TestRepositoriesAndCharts(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, Limits{})
		repo := newChartRepo(t, false, fixtureCharts()...)
		admin := as("acme", identity.RoleAdmin)

		r, err := e.svc.CreateRepository(admin, NewRepository{Name: "main", URL: repo.srv.URL + "/"})
		if err != nil {
			t.Fatal(err)
		}
		if r.URL != repo.srv.URL || r.Sync.State != SyncPending || r.SyncInterval != DefaultSyncInterval {
			t.Fatalf("created %+v", r)
		}
		e.sync(t)
		r, err = e.svc.GetRepository(as("acme", identity.RoleViewer), "main")
		if err != nil {
			t.Fatal(err)
		}
		if r.Sync.State != SyncSynced || r.Sync.ChartCount != 4 || r.Sync.LastError != "" || r.Sync.LastSuccess.IsZero() {
			t.Fatalf("after sync: %+v", r.Sync)
		}

		t.Run("search ranks name matches first and hides deprecated charts", func(t *testing.T) {
			p, err := e.svc.SearchCharts(as("acme", identity.RoleViewer), ChartQuery{Q: "hello"}, PageRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if got := chartNames(p.Charts); got != "main/hello" {
				t.Errorf("search hello = %s", got)
			}
			p, _ = e.svc.SearchCharts(as("acme", identity.RoleViewer), ChartQuery{Q: "HELLO", IncludeDeprecated: true}, PageRequest{})
			if got := chartNames(p.Charts); got != "main/hello main/legacy" {
				t.Errorf("search hello with deprecated = %s", got)
			}
			p, _ = e.svc.SearchCharts(as("acme", identity.RoleViewer), ChartQuery{Q: "cache"}, PageRequest{})
			if got := chartNames(p.Charts); got != "main/redis" {
				t.Errorf("search by keyword = %s", got)
			}
			p, _ = e.svc.SearchCharts(as("acme", identity.RoleViewer), ChartQuery{Q: "value store"}, PageRequest{})
			if got := chartNames(p.Charts); got != "main/redis" {
				t.Errorf("search two words of the description = %s", got)
			}
			p, _ = e.svc.SearchCharts(as("acme", identity.RoleViewer), ChartQuery{Q: "50%_"}, PageRequest{})
			if len(p.Charts) != 0 {
				t.Errorf("LIKE wildcards matched: %s", chartNames(p.Charts))
			}
			// Latest is the highest non-prerelease version.
			p, _ = e.svc.SearchCharts(as("acme", identity.RoleViewer), ChartQuery{Q: "hello"}, PageRequest{})
			h := p.Charts
			if h[0].LatestVersion != "1.0.0" || h[0].VersionCount != 4 || h[0].AppVersion != "2.0" {
				t.Errorf("hello = %+v", h[0])
			}
		})

		t.Run("search pages", func(t *testing.T) {
			var all []string
			tok := ""
			for range 5 {
				p, err := e.svc.SearchCharts(as("acme", identity.RoleViewer), ChartQuery{IncludeDeprecated: true}, PageRequest{Size: 1, Token: tok})
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, chartNames(p.Charts))
				if tok = p.NextPageToken; tok == "" {
					break
				}
			}
			if got := strings.Join(all, " "); got != "main/hello main/helpers main/legacy main/redis" {
				t.Errorf("pages = %s", got)
			}
			_, err := e.svc.SearchCharts(as("acme", identity.RoleViewer), ChartQuery{Q: "other"}, PageRequest{Size: 1, Token: tok + "x"})
			wantCode(t, err, codes.InvalidArgument)
		})

		t.Run("versions are listed highest first and paged", func(t *testing.T) {
			d, err := e.svc.GetChart(as("acme", identity.RoleViewer), "main", "hello", PageRequest{Size: 3})
			if err != nil {
				t.Fatal(err)
			}
			if got := versionNames(d.Versions); got != "2.0.0-rc.1 1.0.0 0.2.0" || d.NextPageToken == "" {
				t.Fatalf("page 1 = %s (next %q)", got, d.NextPageToken)
			}
			d, err = e.svc.GetChart(as("acme", identity.RoleViewer), "main", "hello", PageRequest{Size: 3, Token: d.NextPageToken})
			if err != nil || versionNames(d.Versions) != "0.1.0" || d.NextPageToken != "" {
				t.Fatalf("page 2 = %s, %v", versionNames(d.Versions), err)
			}
			if !strings.HasPrefix(d.Versions[0].Digest, "sha256:") || len(d.Versions[0].URLs) != 1 {
				t.Errorf("version 0.1.0 = %+v", d.Versions[0])
			}
		})

		t.Run("a version's files come from an archive downloaded once", func(t *testing.T) {
			before := repo.archiveGets.Load()
			for range 3 {
				f, err := e.svc.GetChartVersion(as("acme", identity.RoleViewer), "main", "hello", "1.0.0")
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(f.ValuesYAML, "replicaCount: 1") || !strings.Contains(f.SchemaJSON, `"replicaCount"`) || !strings.HasPrefix(f.Readme, "# hello") {
					t.Fatalf("files = %+v", f)
				}
			}
			// A new service over the same store finds the archive stored.
			e2 := newEnvOver(t, e.store)
			if _, err := e2.GetChartVersion(as("acme", identity.RoleViewer), "main", "hello", "1.0.0"); err != nil {
				t.Fatal(err)
			}
			if n := repo.archiveGets.Load() - before; n != 1 {
				t.Errorf("archive downloaded %d times, want once", n)
			}
			_, err := e.svc.GetChartVersion(as("acme", identity.RoleViewer), "main", "hello", "9.9.9")
			wantCode(t, err, codes.NotFound)
		})

		t.Run("an unchanged index is not fetched again", func(t *testing.T) {
			parsed := repo.indexParsedFor.Load()
			if _, err := e.svc.SyncRepository(as("acme", identity.RoleDeployer), "main"); err != nil {
				t.Fatal(err)
			}
			e.sync(t)
			if n := repo.indexParsedFor.Load() - parsed; n != 0 {
				t.Errorf("index body sent %d times for an unchanged index, want 304s only", n)
			}
			// Without validators the checksum still spares the parse: the
			// index is unchanged, so the stored charts are kept as they are.
			repo.etag = false
			_, _ = e.svc.SyncRepository(as("acme", identity.RoleDeployer), "main")
			e.sync(t)
			r, _ := e.svc.GetRepository(as("acme", identity.RoleViewer), "main")
			if r.Sync.State != SyncSynced || r.Sync.ChartCount != 4 {
				t.Errorf("after checksum-skipped sync: %+v", r.Sync)
			}
			repo.etag = true
		})

		t.Run("a changed index is synced", func(t *testing.T) {
			repo.publish(t, testChart{name: "newcomer", version: "0.0.1", description: "fresh"})
			_, _ = e.svc.SyncRepository(as("acme", identity.RoleDeployer), "main")
			e.sync(t)
			r, _ := e.svc.GetRepository(as("acme", identity.RoleViewer), "main")
			if r.Sync.ChartCount != 5 {
				t.Errorf("charts after change = %d, want 5", r.Sync.ChartCount)
			}
		})

		t.Run("another org sees none of it", func(t *testing.T) {
			o := as("other", identity.RoleOwner)
			_, err := e.svc.GetRepository(o, "main")
			wantCode(t, err, codes.NotFound)
			p, err := e.svc.SearchCharts(o, ChartQuery{}, PageRequest{})
			if err != nil || len(p.Charts) != 0 {
				t.Errorf("other org search = %v, %v", chartNames(p.Charts), err)
			}
			_, err = e.svc.ListCharts(o, "main", PageRequest{})
			wantCode(t, err, codes.NotFound)
			_, err = e.svc.GetChart(o, "main", "hello", PageRequest{})
			wantCode(t, err, codes.NotFound)
			_, err = e.svc.GetChartVersion(o, "main", "hello", "1.0.0")
			wantCode(t, err, codes.NotFound)
			_, err = e.svc.SyncRepository(o, "main")
			wantCode(t, err, codes.NotFound)
			_, err = e.svc.UpdateRepository(o, "main", RepositoryUpdate{Mask: []string{"sync_interval"}, SyncInterval: time.Hour})
			wantCode(t, err, codes.NotFound)
			wantCode(t, e.svc.DeleteRepository(o, "main"), codes.NotFound)
			l, err := e.svc.ListRepositories(o, "", PageRequest{})
			if err != nil || len(l.Repositories) != 0 {
				t.Errorf("other org list = %+v, %v", l, err)
			}
		})

		t.Run("roles", func(t *testing.T) {
			_, err := e.svc.CreateRepository(as("acme", identity.RoleDeployer), NewRepository{Name: "x", URL: repo.srv.URL})
			wantCode(t, err, codes.PermissionDenied)
			_, err = e.svc.SyncRepository(as("acme", identity.RoleViewer), "main")
			wantCode(t, err, codes.PermissionDenied)
		})

		t.Run("update and delete", func(t *testing.T) {
			u, err := e.svc.UpdateRepository(admin, "main", RepositoryUpdate{Mask: []string{"sync_interval"}, SyncInterval: 2 * time.Minute})
			if err != nil || u.SyncInterval != 2*time.Minute {
				t.Fatalf("update = %+v, %v", u, err)
			}
			_, err = e.svc.UpdateRepository(admin, "main", RepositoryUpdate{Mask: []string{"name"}})
			wantCode(t, err, codes.InvalidArgument)
			_, err = e.svc.UpdateRepository(admin, "main", RepositoryUpdate{Mask: []string{"sync_interval"}, SyncInterval: time.Second})
			wantCode(t, err, codes.InvalidArgument)
			if err := e.svc.DeleteRepository(admin, "main"); err != nil {
				t.Fatal(err)
			}
			_, err = e.svc.GetRepository(admin, "main")
			wantCode(t, err, codes.NotFound)
			var n int
			if err := e.store.db.QueryRow(`SELECT COUNT(*) FROM chart_versions`).Scan(&n); err != nil || n != 0 {
				t.Errorf("versions left after the last repository of a source went: %d, %v", n, err)
			}
		})
	})
}

func newEnvOver(t *testing.T, store *SQLStore) Service {
	t.Helper()
	return NewService(Deps{Store: store, Fetcher: loopbackFetcher(t), Logins: &fakeLogins{}, Clusters: fakeClusters{}, Images: fakeImages{}, Releases: &fakeReleases{}}, Options{}, slogDiscard())
}

func chartNames(cs []Chart) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Repository+"/"+c.Name)
	}
	return strings.Join(out, " ")
}

func versionNames(vs []ChartVersion) string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Version.Version)
	}
	return strings.Join(out, " ")
}

func TestSharedAndPrivateSources(t *testing.T) {
	e := newEnv(t, sqltest.SQLite(t), Limits{})
	public := newChartRepo(t, false, fixtureCharts()...)
	private := newChartRepo(t, true, fixtureCharts()...)
	e.logins.add("acme", "acme-login", &fetch.Auth{Username: private.user, Password: private.password})
	e.logins.add("other", "other-login", &fetch.Auth{Username: "someone", Password: "wrong"})

	for _, org := range []string{"acme", "other", "third"} {
		if _, err := e.svc.CreateRepository(as(org, identity.RoleAdmin), NewRepository{Name: "pub", URL: public.srv.URL}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.CreateRepository(as("acme", identity.RoleAdmin), NewRepository{Name: "priv", URL: private.srv.URL, Credential: "acme-login"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateRepository(as("other", identity.RoleAdmin), NewRepository{Name: "priv", URL: private.srv.URL, Credential: "other-login"}); err != nil {
		t.Fatal(err)
	}
	// A credential of another org cannot be named.
	_, err := e.svc.CreateRepository(as("third", identity.RoleAdmin), NewRepository{Name: "priv", URL: private.srv.URL, Credential: "acme-login"})
	wantCode(t, err, codes.FailedPrecondition)
	e.sync(t)

	if n := public.indexGets.Load(); n != 1 {
		t.Errorf("a URL three orgs use anonymously was fetched %d times in one interval, want 1", n)
	}
	for _, org := range []string{"acme", "other", "third"} {
		r, _ := e.svc.GetRepository(as(org, identity.RoleViewer), "pub")
		if r.Sync.ChartCount != 4 {
			t.Errorf("%s pub: %+v", org, r.Sync)
		}
	}
	acme, _ := e.svc.GetRepository(as("acme", identity.RoleViewer), "priv")
	other, _ := e.svc.GetRepository(as("other", identity.RoleViewer), "priv")
	if acme.SourceID == other.SourceID {
		t.Fatal("two orgs' credentials share a source")
	}
	if acme.Sync.State != SyncSynced || other.Sync.State != SyncFailed || !strings.Contains(other.Sync.LastError, "401") {
		t.Errorf("acme %+v, other %+v", acme.Sync, other.Sync)
	}
	if strings.Contains(other.Sync.LastError, "wrong") {
		t.Errorf("sync error shows the password: %s", other.Sync.LastError)
	}
	// Archives fetched with acme's login stay acme's.
	if _, err := e.svc.GetChartVersion(as("acme", identity.RoleViewer), "priv", "hello", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	var scope string
	if err := e.store.db.QueryRow(`SELECT scope FROM archives`).Scan(&scope); err != nil || scope != "acme" {
		t.Errorf("archive scope %q, %v; want acme", scope, err)
	}
	if _, err := e.store.GetArchive(context.Background(), "", "x"); !errors.Is(err, errArchiveNotFound) {
		t.Errorf("GetArchive of nothing = %v", err)
	}
}

func TestIndexTooLarge(t *testing.T) {
	e := newEnv(t, sqltest.SQLite(t), Limits{})
	e.syncer.opts.Limits.Index.MaxBytes = 512
	repo := newChartRepo(t, false, fixtureCharts()...)
	if _, err := e.svc.CreateRepository(as("acme", identity.RoleAdmin), NewRepository{Name: "big", URL: repo.srv.URL}); err != nil {
		t.Fatal(err)
	}
	e.sync(t)
	r, _ := e.svc.GetRepository(as("acme", identity.RoleViewer), "big")
	if r.Sync.State != SyncFailed || !strings.Contains(r.Sync.LastError, "limit") || r.Sync.ChartCount != 0 {
		t.Errorf("sync of an index over the limit: %+v", r.Sync)
	}
}

func TestRepositoryInput(t *testing.T) {
	e := newEnv(t, sqltest.SQLite(t), Limits{})
	admin := as("acme", identity.RoleAdmin)
	for _, tc := range []struct {
		name  string
		in    NewRepository
		field string
	}{
		{"bad name", NewRepository{Name: "Main", URL: "https://charts.example.com"}, "name"},
		{"no url", NewRepository{Name: "a"}, "url"},
		{"file url", NewRepository{Name: "a", URL: "file:///etc/passwd"}, "url"},
		{"userinfo", NewRepository{Name: "a", URL: "https://u:p@charts.example.com"}, "url"},
		{"metadata address", NewRepository{Name: "a", URL: "https://169.254.169.254/latest"}, "url"},
		{"interval too short", NewRepository{Name: "a", URL: "https://charts.example.com", SyncInterval: time.Second}, "sync_interval"},
		{"bad oci chart", NewRepository{Name: "a", URL: "oci://registry.example.com/charts", OCICharts: []string{"Bad Name"}}, "oci_charts[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.CreateRepository(admin, tc.in)
			fe, ok := validate.AsFieldError(err)
			if !ok || fe.Field != tc.field {
				t.Fatalf("error %v, want a field error on %s", err, tc.field)
			}
		})
	}
	if _, err := e.svc.CreateRepository(admin, NewRepository{Name: "dup", URL: "https://charts.example.com"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.CreateRepository(admin, NewRepository{Name: "dup", URL: "https://charts.example.com"})
	wantCode(t, err, codes.AlreadyExists)
	if d := cmp.Diff(1, countRows(t, e.store, "sources")); d != "" {
		t.Errorf("sources after a refused duplicate (-want +got):\n%s", d)
	}
}

func countRows(t *testing.T, s *SQLStore, table string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReplicasShareSyncs runs two syncers, as two replicas do, over one
// database: a due source is fetched by one of them only, and a sync
// requested while one runs is not lost.
func TestReplicasShareSyncs(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, Limits{})
		repo := newChartRepo(t, false, fixtureCharts()...)
		if _, err := e.svc.CreateRepository(as("acme", identity.RoleAdmin), NewRepository{Name: "main", URL: repo.srv.URL}); err != nil {
			t.Fatal(err)
		}
		other := NewSyncer(e.store, loopbackFetcher(t), e.logins, SyncOptions{}, slogDiscard(), nil)
		done := make(chan error, 2)
		for _, s := range []*Syncer{e.syncer, other} {
			go func() { done <- s.SyncNow(context.Background()) }()
		}
		for range 2 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		if n := repo.indexGets.Load(); n != 1 {
			t.Errorf("two replicas fetched a due index %d times, want once", n)
		}
		// Nothing is due until the interval passes or a sync is asked for.
		e.sync(t)
		if n := repo.indexGets.Load(); n != 1 {
			t.Errorf("a synced source was fetched again before its interval: %d", n)
		}
		if _, err := e.svc.SyncRepository(as("acme", identity.RoleDeployer), "main"); err != nil {
			t.Fatal(err)
		}
		if err := other.SyncNow(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := repo.indexGets.Load(); n != 2 {
			t.Errorf("a requested sync ran on the other replica %d times in all, want 2", n)
		}
	})
}
