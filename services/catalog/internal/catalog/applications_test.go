package catalog

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"

	"github.com/slipwayhq/slipway/pkg/chartarchive"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
)

func helloApp() Application {
	return Application{
		Name:   "shop",
		Chart:  ChartRef{Repository: "main", Chart: "hello", Version: "^1.0"},
		Image:  "web",
		Values: map[string]any{"replicaCount": 2.0},
		Targets: []Target{
			{Name: "staging", Cluster: "c1", Namespace: "shop-staging"},
			{Name: "prod", Cluster: "c2", Namespace: "shop", Values: map[string]any{"replicaCount": 5.0}},
		},
	}
}

func violations(t *testing.T, err error) []string {
	t.Helper()
	var u *unprocessableError
	if !errors.As(err, &u) {
		t.Fatalf("error %v is not a list of violations", err)
	}
	var out []string
	for _, f := range u.FieldViolations() {
		out = append(out, f.Field)
	}
	sort.Strings(out)
	return out
}

func TestApplications(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, Limits{})
		repo := newChartRepo(t, false, fixtureCharts()...)
		admin := as("acme", identity.RoleAdmin)
		if _, err := e.svc.CreateRepository(admin, NewRepository{Name: "main", URL: repo.srv.URL}); err != nil {
			t.Fatal(err)
		}
		e.sync(t)

		app, err := e.svc.CreateApplication(admin, helloApp())
		if err != nil {
			t.Fatal(err)
		}
		if app.Targets[0].Cluster != "id-c1" || app.Targets[1].Cluster != "id-c2" || app.ImageValuesKey != "image" || app.Etag == "" || app.Creator != "user:acme-admin" {
			t.Fatalf("created %+v", app)
		}
		_, err = e.svc.CreateApplication(admin, helloApp())
		wantCode(t, err, codes.AlreadyExists)

		t.Run("get shows per target what a deploy would use and what is deployed", func(t *testing.T) {
			e.releases.set("acme", "shop", "prod", TargetRelease{Deployed: true, ChartVersion: "0.2.0"})
			got, err := e.svc.GetApplication(as("acme", identity.RoleViewer), "shop")
			if err != nil {
				t.Fatal(err)
			}
			want := []TargetStatus{
				{ChartVersion: "1.0.0", LatestChartVersion: "1.0.0"},
				{ChartVersion: "1.0.0", LatestChartVersion: "1.0.0", DeployedChartVersion: "0.2.0", UpgradeAvailable: true},
			}
			var st []TargetStatus
			for _, tg := range got.Targets {
				st = append(st, tg.Status)
			}
			if d := cmp.Diff(want, st); d != "" {
				t.Errorf("target status (-want +got):\n%s", d)
			}
		})

		t.Run("viewers do not read values", func(t *testing.T) {
			got, err := e.svc.GetApplication(as("acme", identity.RoleViewer), "shop")
			if err != nil {
				t.Fatal(err)
			}
			if got.Values != nil || got.Targets[1].Values != nil {
				t.Errorf("a viewer reads values: %+v", got)
			}
			p, _ := e.svc.ListApplications(as("acme", identity.RoleViewer), ApplicationFilter{}, PageRequest{})
			if len(p.Applications) != 1 || p.Applications[0].Targets[1].Values != nil {
				t.Errorf("a viewer lists values: %+v", p.Applications)
			}
			got, _ = e.svc.GetApplication(as("acme", identity.RoleDeployer), "shop")
			if got.Values["replicaCount"] != 2.0 || got.Targets[1].Values["replicaCount"] != 5.0 {
				t.Errorf("a deployer does not read values: %+v", got)
			}
		})

		t.Run("the releases service gets archives by reference", func(t *testing.T) {
			v, data, err := e.svc.GetChartArchive(as("acme", identity.RoleDeployer), ChartRef{Repository: "main", Chart: "hello", Version: "^1.0"})
			if err != nil {
				t.Fatal(err)
			}
			if v.Version.Version != "1.0.0" || v.Digest != chartarchive.Digest(data) {
				t.Errorf("archive of %s, digest %s; want 1.0.0 with the archive's digest", v.Version.Version, v.Digest)
			}
			if ch, err := chartarchive.Load(data, chartarchive.Limits{}); err != nil || ch.Metadata.Version != "1.0.0" {
				t.Errorf("archive loads as %v, %v", ch, err)
			}
			_, _, err = e.svc.GetChartArchive(as("acme", identity.RoleViewer), ChartRef{Repository: "main", Chart: "hello"})
			wantCode(t, err, codes.PermissionDenied)
			// The releases service, on its own behalf (a viewer identity
			// naming the service), while it runs an operation.
			releases := identity.NewContext(context.Background(), identity.Identity{Subject: "service:releases", Org: "acme", Role: identity.RoleViewer, Service: "releases"}, "")
			if _, _, err := e.svc.GetChartArchive(releases, ChartRef{Repository: "main", Chart: "hello"}); err != nil {
				t.Errorf("the releases service gets no archive: %v", err)
			}
			if app, err := e.svc.GetApplication(releases, "shop"); err != nil || app.Targets[1].Values == nil {
				t.Errorf("the releases service reads no values: %+v, %v", app, err)
			}
			registry := identity.NewContext(context.Background(), identity.Identity{Subject: "service:registry", Org: "acme", Role: identity.RoleViewer, Service: "registry"}, "")
			_, _, err = e.svc.GetChartArchive(registry, ChartRef{Repository: "main", Chart: "hello"})
			wantCode(t, err, codes.PermissionDenied)
			_, _, err = e.svc.GetChartArchive(as("other", identity.RoleOwner), ChartRef{Repository: "main", Chart: "hello"})
			wantCode(t, err, codes.NotFound)
			_, _, err = e.svc.GetChartArchive(admin, ChartRef{Repository: "main", Chart: "hello", Version: "^5"})
			wantCode(t, err, codes.FailedPrecondition)
			_, _, err = e.svc.GetChartArchive(admin, ChartRef{Repository: "main", Chart: "helpers"})
			wantCode(t, err, codes.FailedPrecondition)
			_, _, err = e.svc.GetChartArchive(admin, ChartRef{Repository: "main", Chart: "nope"})
			wantCode(t, err, codes.NotFound)
		})

		t.Run("library charts cannot be deployed", func(t *testing.T) {
			lib := helloApp()
			lib.Name, lib.Chart = "lib", ChartRef{Repository: "main", Chart: "helpers"}
			_, err := e.svc.CreateApplication(admin, lib)
			if d := cmp.Diff([]string{"chart"}, violations(t, err)); d != "" || !strings.Contains(err.Error(), "library") {
				t.Errorf("library chart: %v", err)
			}
		})

		t.Run("values that do not fit the schema are refused with every failing path", func(t *testing.T) {
			bad := helloApp()
			bad.Name = "bad"
			bad.Values = map[string]any{"replicaCount": "two", "service": map[string]any{"port": 70000.0}}
			bad.Targets[1].Values = map[string]any{"replicaCount": 0.0}
			_, err := e.svc.CreateApplication(admin, bad)
			wantCode(t, err, codes.FailedPrecondition)
			got := violations(t, err)
			want := []string{"targets[0].values/replicaCount", "targets[0].values/service/port", "targets[1].values/replicaCount", "targets[1].values/service/port"}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("violations (-want +got):\n%s", d)
			}
			// Null removes a chart default, as in Helm: a required key gone.
			bad.Values = map[string]any{"image": nil}
			bad.Image = "" // no image injected at the key either
			bad.Targets = bad.Targets[:1]
			_, err = e.svc.CreateApplication(admin, bad)
			if got := violations(t, err); len(got) != 1 || got[0] != "targets[0].values" {
				t.Errorf("violations = %v, want the root of targets[0].values", got)
			}
			if _, err := e.svc.GetApplication(admin, "bad"); code(err) != codes.NotFound {
				t.Errorf("a refused application was stored: %v", err)
			}
		})

		t.Run("what the application names must exist", func(t *testing.T) {
			bad := helloApp()
			bad.Name = "ghost"
			bad.Image = "nope"
			bad.Targets[1].Cluster = "o1" // another org's cluster
			bad.Chart.Version = "^3"
			_, err := e.svc.CreateApplication(admin, bad)
			want := []string{"chart", "image", "targets[1].cluster"}
			if d := cmp.Diff(want, violations(t, err)); d != "" {
				t.Errorf("violations (-want +got):\n%s", d)
			}
			bad = helloApp()
			bad.Name = "ghost"
			bad.Chart.Repository = "elsewhere"
			_, err = e.svc.CreateApplication(admin, bad)
			if d := cmp.Diff([]string{"chart.repository"}, violations(t, err)); d != "" {
				t.Errorf("violations (-want +got):\n%s", d)
			}
		})

		t.Run("bad input", func(t *testing.T) {
			for name, mut := range map[string]func(*Application){
				"constraint":    func(a *Application) { a.Chart.Version = "not a version" },
				"duplicate":     func(a *Application) { a.Targets[1].Name = "staging" },
				"release name":  func(a *Application) { a.Name = strings.Repeat("a", 50) },
				"namespace":     func(a *Application) { a.Targets[0].Namespace = "Bad_NS" },
				"image key":     func(a *Application) { a.ImageValuesKey = "image..tag" },
				"no cluster":    func(a *Application) { a.Targets[0].Cluster = "" },
				"chart missing": func(a *Application) { a.Chart.Chart = "" },
			} {
				a := helloApp()
				a.Name = "input"
				mut(&a)
				_, err := e.svc.CreateApplication(admin, a)
				if code(err) != codes.InvalidArgument {
					t.Errorf("%s: %v, want InvalidArgument", name, err)
				}
			}
		})

		t.Run("update replaces, with an etag precondition", func(t *testing.T) {
			cur, _ := e.svc.GetApplication(admin, "shop")
			next := helloApp()
			next.Targets = next.Targets[:1]
			next.Values = nil
			next.Etag = cur.Etag
			upd, err := e.svc.UpdateApplication(admin, next)
			if err != nil {
				t.Fatal(err)
			}
			if len(upd.Targets) != 1 || upd.Values != nil || upd.Etag == cur.Etag || upd.Creator != cur.Creator || !upd.Created.Equal(cur.Created) {
				t.Errorf("updated %+v", upd)
			}
			next.Etag = cur.Etag // stale now
			_, err = e.svc.UpdateApplication(admin, next)
			wantCode(t, err, codes.Aborted)
			got, _ := e.svc.GetApplication(admin, "shop")
			if got.Etag != upd.Etag {
				t.Errorf("a refused update changed the application")
			}
			if _, err := e.svc.UpdateApplication(admin, helloApp()); err != nil { // no etag: unconditional
				t.Fatal(err)
			}
		})

		t.Run("list filters", func(t *testing.T) {
			other := helloApp()
			other.Name, other.Image, other.Chart = "cache", "", ChartRef{Repository: "main", Chart: "redis"}
			other.Targets = []Target{{Name: "prod", Cluster: "c2", Namespace: "cache"}}
			if _, err := e.svc.CreateApplication(admin, other); err != nil {
				t.Fatal(err)
			}
			for f, want := range map[ApplicationFilter]string{
				{}:                         "cache shop",
				{Chart: "main/hello"}:      "shop",
				{Chart: "redis"}:           "cache",
				{Image: "web"}:             "shop",
				{Cluster: "id-c1"}:         "shop",
				{Cluster: "id-c2"}:         "cache shop",
				{Name: "cache"}:            "cache",
				{Chart: "elsewhere/hello"}: "",
			} {
				p, err := e.svc.ListApplications(as("acme", identity.RoleViewer), f, PageRequest{})
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, a := range p.Applications {
					names = append(names, a.Name)
				}
				if got := strings.Join(names, " "); got != want {
					t.Errorf("list %+v = %q, want %q", f, got, want)
				}
			}
			p, err := e.svc.ListApplications(admin, ApplicationFilter{}, PageRequest{Size: 1})
			if err != nil || len(p.Applications) != 1 || p.NextPageToken == "" {
				t.Fatalf("page = %+v, %v", p, err)
			}
		})

		t.Run("a repository in use is not deleted", func(t *testing.T) {
			err := e.svc.DeleteRepository(admin, "main")
			wantCode(t, err, codes.FailedPrecondition)
			if !strings.Contains(err.Error(), "cache, shop") {
				t.Errorf("error %v does not name the applications", err)
			}
		})

		t.Run("another org sees none of it", func(t *testing.T) {
			o := as("other", identity.RoleOwner)
			_, err := e.svc.GetApplication(o, "shop")
			wantCode(t, err, codes.NotFound)
			up := helloApp()
			_, err = e.svc.UpdateApplication(o, up)
			wantCode(t, err, codes.NotFound)
			wantCode(t, e.svc.DeleteApplication(o, "shop"), codes.NotFound)
			p, err := e.svc.ListApplications(o, ApplicationFilter{}, PageRequest{})
			if err != nil || len(p.Applications) != 0 {
				t.Errorf("other org list = %+v, %v", p, err)
			}
			// Nor can it point an application at acme's repository.
			_, err = e.svc.CreateApplication(o, Application{Name: "x", Chart: ChartRef{Repository: "main", Chart: "hello"}})
			wantCode(t, err, codes.FailedPrecondition)
		})

		t.Run("a deployed application is not deleted", func(t *testing.T) {
			e.releases.set("acme", "shop", "prod", TargetRelease{Deployed: true, ChartVersion: "1.0.0"})
			err := e.svc.DeleteApplication(admin, "shop")
			wantCode(t, err, codes.FailedPrecondition)
			if !strings.Contains(err.Error(), "prod") {
				t.Errorf("error %v does not name the target", err)
			}
			e.releases.set("acme", "shop", "prod", TargetRelease{Deployed: false, ChartVersion: "1.0.0"})
			if err := e.svc.DeleteApplication(admin, "shop"); err != nil {
				t.Fatal(err)
			}
			e.releases.off = true // a releases service that does not track yet
			if err := e.svc.DeleteApplication(admin, "cache"); err != nil {
				t.Fatal(err)
			}
			if err := e.svc.DeleteRepository(admin, "main"); err != nil {
				t.Fatalf("repository still in use after its applications went: %v", err)
			}
		})
	})
}
