package catalog

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
	"github.com/slipwayhq/slipway/pkg/validate"
)

func TestCheckProbes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    Probes
		want  Probes
		field string // the field refused, "" when accepted
	}{
		{name: "none", in: Probes{}, want: Probes{}},
		{name: "health by number", in: Probes{HealthPath: "/healthz", HealthPort: "8080"}, want: Probes{HealthPath: "/healthz", HealthPort: "8080"}},
		{name: "health by name, with a query", in: Probes{HealthPath: "/health?full=1", HealthPort: "http"}, want: Probes{HealthPath: "/health?full=1", HealthPort: "http"}},
		{name: "metrics path defaults", in: Probes{MetricsPort: "9090"}, want: Probes{MetricsPort: "9090", MetricsPath: "/metrics"}},
		{name: "metrics path kept", in: Probes{MetricsPort: "metrics", MetricsPath: "/prom"}, want: Probes{MetricsPort: "metrics", MetricsPath: "/prom"}},
		{name: "path without port", in: Probes{HealthPath: "/healthz"}, field: "probes.health_port"},
		{name: "port without path", in: Probes{HealthPort: "8080"}, field: "probes.health_path"},
		{name: "metrics path without port", in: Probes{MetricsPath: "/metrics"}, field: "probes.metrics_port"},
		{name: "relative path", in: Probes{HealthPath: "healthz", HealthPort: "80"}, field: "probes.health_path"},
		{name: "another host", in: Probes{HealthPath: "//evil.example/x", HealthPort: "80"}, field: "probes.health_path"},
		{name: "dot dot", in: Probes{HealthPath: "/a/../../b", HealthPort: "80"}, field: "probes.health_path"},
		{name: "space", in: Probes{HealthPath: "/a b", HealthPort: "80"}, field: "probes.health_path"},
		{name: "fragment", in: Probes{HealthPath: "/a#b", HealthPort: "80"}, field: "probes.health_path"},
		{name: "encoded slash", in: Probes{HealthPath: "/a%2F..%2Fsecrets", HealthPort: "80"}, field: "probes.health_path"},
		{name: "encoded dots", in: Probes{HealthPath: "/%2e%2e/x", HealthPort: "80"}, field: "probes.health_path"},
		{name: "backslash", in: Probes{HealthPath: "/a\\b", HealthPort: "80"}, field: "probes.health_path"},
		{name: "encoded query", in: Probes{HealthPath: "/h?name=a%20b&x=1", HealthPort: "80"}, want: Probes{HealthPath: "/h?name=a%20b&x=1", HealthPort: "80"}},
		{name: "too long", in: Probes{HealthPath: "/" + strings.Repeat("a", maxProbePath), HealthPort: "80"}, field: "probes.health_path"},
		{name: "port zero", in: Probes{HealthPath: "/h", HealthPort: "0"}, field: "probes.health_port"},
		{name: "port too high", in: Probes{HealthPath: "/h", HealthPort: "65536"}, field: "probes.health_port"},
		{name: "bad port name", in: Probes{HealthPath: "/h", HealthPort: "HTTP_port"}, field: "probes.health_port"},
		{name: "port name too long", in: Probes{HealthPath: "/h", HealthPort: "abcdefghijklmnop"}, field: "probes.health_port"},
		{name: "bad metrics port", in: Probes{MetricsPort: "-1"}, field: "probes.metrics_port"},
		{name: "bad metrics path", in: Probes{MetricsPort: "9090", MetricsPath: "metrics"}, field: "probes.metrics_path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.in
			err := checkProbes(&p)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if d := cmp.Diff(tc.want, p); d != "" {
					t.Errorf("probes (-want +got):\n%s", d)
				}
				return
			}
			fe, ok := validate.AsFieldError(err)
			if !ok || fe.Field != tc.field {
				t.Errorf("error %v, want one on %s", err, tc.field)
			}
		})
	}
}

func TestApplicationProbes(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, Limits{})
		repo := newChartRepo(t, false, fixtureCharts()...)
		admin := as("acme", identity.RoleAdmin)
		if _, err := e.svc.CreateRepository(admin, NewRepository{Name: "main", URL: repo.srv.URL}); err != nil {
			t.Fatal(err)
		}
		e.sync(t)

		app := helloApp()
		app.Probes = Probes{HealthPath: "/healthz", HealthPort: "http", MetricsPort: "9090"}
		if _, err := e.svc.CreateApplication(admin, app); err != nil {
			t.Fatal(err)
		}
		want := Probes{HealthPath: "/healthz", HealthPort: "http", MetricsPort: "9090", MetricsPath: "/metrics"}
		// Viewers read the probes: they hold no secret.
		got, err := e.svc.GetApplication(as("acme", identity.RoleViewer), "shop")
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, got.Probes); d != "" {
			t.Errorf("stored probes (-want +got):\n%s", d)
		}
		p, err := e.svc.ListApplications(as("acme", identity.RoleViewer), ApplicationFilter{}, PageRequest{})
		if err != nil || len(p.Applications) != 1 || p.Applications[0].Probes != want {
			t.Errorf("listed %+v, %v; want the probes", p.Applications, err)
		}

		// A replace without probes drops them.
		app.Probes = Probes{}
		if _, err := e.svc.UpdateApplication(admin, app); err != nil {
			t.Fatal(err)
		}
		if got, _ := e.svc.GetApplication(admin, "shop"); got.Probes != (Probes{}) {
			t.Errorf("probes after a replace without them: %+v", got.Probes)
		}

		bad := helloApp()
		bad.Name = "bad"
		bad.Probes = Probes{HealthPath: "/healthz", HealthPort: "70000"}
		_, err = e.svc.CreateApplication(admin, bad)
		wantCode(t, err, codes.InvalidArgument)
	})
}

// FuzzCheckProbes: whatever is accepted is an absolute path with no dot
// segment and no percent-encoding before its query, and a port that is a
// number from 1 to 65535 or a port name.
func FuzzCheckProbes(f *testing.F) {
	for _, seed := range [][2]string{{"/healthz", "8080"}, {"/h?x=%20", "http"}, {"/a/../b", "80"}, {"//x", "0"}, {"/%2e%2e/", "65536"}, {"/ok", "-http"}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, path, port string) {
		p := Probes{HealthPath: path, HealthPort: port}
		if checkProbes(&p) != nil {
			return
		}
		before, _, _ := strings.Cut(path, "?")
		if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") || strings.Contains(before, "%") || strings.Contains(path, "#") {
			t.Errorf("accepted path %q", path)
		}
		for _, seg := range strings.Split(before, "/") {
			if seg == "." || seg == ".." {
				t.Errorf("accepted path %q with a dot segment", path)
			}
		}
		if len(port) == 0 || len(port) > 15 {
			t.Errorf("accepted port %q", port)
		}
	})
}
