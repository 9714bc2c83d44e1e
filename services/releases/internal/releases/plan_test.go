package releases

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
)

const planSecret = `---
# Source: web/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: web-db
stringData:
  password: %s
`

func planDeployment(replicas, image string) string {
	return `---
# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ` + replicas + `
  template:
    spec:
      containers:
      - name: web
        image: ` + image + `
`
}

const planService = `---
# Source: web/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
  - port: 80
`

const planConfigMap = `---
# Source: web/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: shop
data:
  greeting: hello
`

func secretWith(password string) string { return strings.Replace(planSecret, "%s", password, 1) }

func TestDiffManifests(t *testing.T) {
	deployment := ObjectKey{"apps/v1", "Deployment", "", "web"}
	service := ObjectKey{"v1", "Service", "", "web"}
	configMap := ObjectKey{"v1", "ConfigMap", "shop", "web-config"}
	secret := ObjectKey{"v1", "Secret", "", "web-db"}
	type change struct {
		object ObjectKey
		action ChangeAction
	}
	tests := []struct {
		name             string
		current, planned string
		want             []change
		unchanged        int
		diffHas          map[ObjectKey][]string // lines the object's diff holds
	}{
		{
			name:    "nothing changes",
			current: planDeployment("1", "web:1") + planService, planned: planDeployment("1", "web:1") + planService,
			unchanged: 2,
		},
		{
			name:    "a field changes",
			current: planDeployment("1", "web:1") + planService, planned: planDeployment("3", "web:1") + planService,
			want: []change{{deployment, ActionUpdate}}, unchanged: 1,
			diffHas: map[ObjectKey][]string{deployment: {"--- current", "+++ planned", "-  replicas: 1", "+  replicas: 3", "   template:"}},
		},
		{
			name:    "added and removed, in manifest order, removals last",
			current: planDeployment("1", "web:1") + planService, planned: planConfigMap + planDeployment("1", "web:2"),
			want:    []change{{configMap, ActionCreate}, {deployment, ActionUpdate}, {service, ActionDelete}},
			diffHas: map[ObjectKey][]string{configMap: {"+kind: ConfigMap", "+  greeting: hello"}, deployment: {"-        image: web:1", "+        image: web:2"}},
		},
		{
			name:    "an install: everything is created",
			current: "", planned: planDeployment("1", "web:1") + planService,
			want: []change{{deployment, ActionCreate}, {service, ActionCreate}},
		},
		{
			name:    "a Secret's value changes, redacted",
			current: secretWith("old-canary"), planned: secretWith("new-canary"),
			want:    []change{{secret, ActionUpdate}},
			diffHas: map[ObjectKey][]string{secret: {secretValuesChanged}},
		},
		{
			name:    "a Secret is created, its values redacted",
			current: "", planned: secretWith("new-canary"),
			want:    []change{{secret, ActionCreate}},
			diffHas: map[ObjectKey][]string{secret: {"+  password: " + redacted}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			changes, unchanged, truncated := diffManifests(tc.current, tc.planned, maxPlanDiff)
			var got []change
			for _, c := range changes {
				got = append(got, change{c.Object, c.Action})
				for _, canary := range []string{"old-canary", "new-canary"} {
					if strings.Contains(c.Diff, canary) {
						t.Errorf("%v: the diff shows a Secret's value:\n%s", c.Object, c.Diff)
					}
				}
				if c.Action == ActionDelete && c.Diff != "" {
					t.Errorf("%v: deleted, but with a diff:\n%s", c.Object, c.Diff)
				}
				if c.Action != ActionDelete && c.Diff == "" {
					t.Errorf("%v: %v without a diff", c.Object, c.Action)
				}
				for _, line := range tc.diffHas[c.Object] {
					if !strings.Contains(c.Diff, line) {
						t.Errorf("%v: diff lacks %q:\n%s", c.Object, line, c.Diff)
					}
				}
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(change{})); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if unchanged != tc.unchanged || truncated {
				t.Errorf("unchanged %d, truncated %v; want %d, false", unchanged, truncated, tc.unchanged)
			}
		})
	}
}

func TestDiffManifestsTruncates(t *testing.T) {
	current := planDeployment("1", "web:1") + planService
	planned := planDeployment("2", "web:1") + strings.Replace(planService, "port: 80", "port: 8080", 1)
	full, _, _ := diffManifests(current, planned, maxPlanDiff)
	if len(full) != 2 {
		t.Fatalf("%d changes, want 2", len(full))
	}
	// Room for the first diff only: the second is listed without its diff.
	changes, _, truncated := diffManifests(current, planned, len(full[0].Diff)+1)
	if len(changes) != 2 || changes[0].Diff != full[0].Diff || changes[1].Diff != "" || !truncated {
		t.Errorf("changes %+v, truncated %v; want the first diff only, truncated", changes, truncated)
	}
}

func TestValuesDiff(t *testing.T) {
	tests := []struct {
		name             string
		current, planned map[string]any
		want             []string
	}{
		{"equal", map[string]any{"a": 1}, map[string]any{"a": 1}, nil},
		{"none before", nil, map[string]any{"replicaCount": 3}, []string{"--- current", "+++ planned", "+replicaCount: 3"}},
		{"changed", map[string]any{"image": map[string]any{"tag": "1.0"}, "replicaCount": 1},
			map[string]any{"image": map[string]any{"tag": "1.1"}, "replicaCount": 1},
			[]string{" image:", "-  tag: \"1.0\"", "+  tag: \"1.1\"", " replicaCount: 1"}},
		{"all dropped", map[string]any{"a": "b"}, nil, []string{"-a: b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := valuesDiff(tc.current, tc.planned)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil && got != "" {
				t.Errorf("diff of equal values:\n%s", got)
			}
			for _, line := range tc.want {
				if !strings.Contains(got, line+"\n") {
					t.Errorf("diff lacks %q:\n%s", line, got)
				}
			}
		})
	}
}

func TestPinned(t *testing.T) {
	tests := []struct {
		ref    ChartRef
		source string
		want   ChartRef
	}{
		{ChartRef{Repository: "main", Chart: "hello", Version: "~0.2"}, "catalog:main/hello@0.2.3", ChartRef{Repository: "main", Chart: "hello", Version: "0.2.3"}},
		{ChartRef{OCI: "oci://r.example/c/hello:1.0"}, "oci:oci://r.example/c/hello:1.0", ChartRef{OCI: "oci://r.example/c/hello:1.0"}},
		{ChartRef{Upload: "sha256:ab"}, "upload:hello@1.0.0", ChartRef{Upload: "sha256:ab"}},
	}
	for _, tc := range tests {
		if got := pinned(tc.ref, tc.source); got != tc.want {
			t.Errorf("pinned(%+v, %q) = %+v, want %+v", tc.ref, tc.source, got, tc.want)
		}
	}
}

func TestPlanStore(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l, err := OpenLedger(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
		p := Plan{ID: "p1", Org: "acme", Cluster: "cl_1", Namespace: "web", Name: "shop", Base: 4,
			Chart: ChartRef{Repository: "main", Chart: "hello", Version: "0.2.3"}, ChartDigest: "sha256:ab", ChartSource: "catalog:main/hello@0.2.3",
			Values: map[string]any{"replicaCount": float64(3)}, Options: Options{Wait: true, Timeout: time.Minute, ResetValues: true},
			Manifest: planService, Creator: "user:alice", Created: at, Expires: at.Add(planTTL)}
		if err := l.PutPlan(ctx, p); err != nil {
			t.Fatal(err)
		}
		got, err := l.Plan(ctx, "acme", "p1", at.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p, got); diff != "" {
			t.Errorf("plan read back (-stored +read):\n%s", diff)
		}
		// Another org's plan answers as a missing one; so does an expired one.
		for _, c := range []struct {
			org string
			at  time.Time
		}{{"globex", at}, {"acme", at.Add(planTTL)}} {
			if _, err := l.Plan(ctx, c.org, "p1", c.at); !errors.Is(err, ErrPlanNotFound) {
				t.Errorf("plan p1 read by %s at %s: %v, want ErrPlanNotFound", c.org, c.at, err)
			}
		}
		// Storing a plan forgets the expired ones.
		q := p
		q.ID, q.Created, q.Expires = "p2", at.Add(2*planTTL), at.Add(3*planTTL)
		if err := l.PutPlan(ctx, q); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := l.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM plans`).Scan(&n); err != nil || n != 1 {
			t.Errorf("%d plans kept (%v), want 1", n, err)
		}
	})
}
