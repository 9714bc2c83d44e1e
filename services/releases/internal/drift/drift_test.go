package drift

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func obj(t *testing.T, y string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(y), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

const deployment = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: web
        image: nginx:1.27
        resources: {requests: {cpu: 0.5, memory: 64Mi}}
        ports: [{containerPort: 80}]
      - name: side
        image: busybox
`

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		name, live string
		ignore     []Path
		drifted    bool
		diffHas    []string
	}{
		{name: "as applied, with what the server adds", drifted: false, live: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, uid: x, resourceVersion: "9", labels: {app: web, app.kubernetes.io/managed-by: Helm}, annotations: {deployment.kubernetes.io/revision: "1"}}
spec:
  replicas: 2
  progressDeadlineSeconds: 600
  template:
    spec:
      containers:
      - name: side
        image: busybox
        imagePullPolicy: Always
      - name: web
        image: nginx:1.27
        resources: {requests: {cpu: 500m, memory: 64Mi}}
        ports: [{containerPort: 80, protocol: TCP}]
status: {replicas: 2}
`},
		{name: "scaled", drifted: true, diffHas: []string{"-  replicas: 2", "+  replicas: 5"}, live: `
metadata: {labels: {app: web}}
spec:
  replicas: 5
  template: {spec: {containers: [{name: web, image: "nginx:1.27", resources: {requests: {cpu: 500m, memory: 64Mi}}, ports: [{containerPort: 80}]}, {name: side, image: busybox}]}}
`},
		{name: "scaled under an autoscaler", ignore: []Path{{"spec", "replicas"}}, drifted: false, live: `
metadata: {labels: {app: web}}
spec:
  replicas: 5
  template: {spec: {containers: [{name: web, image: "nginx:1.27", resources: {requests: {cpu: 500m, memory: 64Mi}}, ports: [{containerPort: 80}]}, {name: side, image: busybox}]}}
`},
		{name: "image edited", drifted: true, diffHas: []string{"+      - image: nginx:1.28"}, live: `
metadata: {labels: {app: web}}
spec:
  replicas: 2
  template: {spec: {containers: [{name: web, image: "nginx:1.28", resources: {requests: {cpu: 500m, memory: 64Mi}}, ports: [{containerPort: 80}]}, {name: side, image: busybox}]}}
`},
		{name: "label removed, container gone", drifted: true, diffHas: []string{"-    app: web", "-      - image: busybox"}, live: `
metadata: {labels: {}}
spec:
  replicas: 2
  template: {spec: {containers: [{name: web, image: "nginx:1.27", resources: {requests: {cpu: 500m, memory: 64Mi}}, ports: [{containerPort: 80}]}]}}
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Compare(obj(t, deployment), obj(t, tc.live), tc.ignore)
			if err != nil {
				t.Fatal(err)
			}
			if r.Drifted != tc.drifted {
				t.Fatalf("drifted = %v, want %v; diff:\n%s", r.Drifted, tc.drifted, r.Diff)
			}
			if !tc.drifted && r.Diff != "" {
				t.Errorf("a diff without drift:\n%s", r.Diff)
			}
			if strings.Contains(r.Diff, "cpu: 500m") {
				t.Errorf("diff shows an equal quantity as a change:\n%s", r.Diff)
			}
			for _, want := range tc.diffHas {
				if !strings.Contains(r.Diff, want) {
					t.Errorf("diff lacks %q:\n%s", want, r.Diff)
				}
			}
		})
	}
}

// TestCompareSecret: stringData is compared as the data the server keeps,
// and a diff names the changed key with no value on either side.
func TestCompareSecret(t *testing.T) {
	manifest := obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: hunter2, user: admin}\n")
	same := obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: Opaque\ndata: {password: aHVudGVyMg==, user: YWRtaW4=}\n")
	if r, err := Compare(manifest, same, nil); err != nil || r.Drifted {
		t.Fatalf("same secret: %+v, %v", r, err)
	}
	changed := obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: c2VjcmV0, user: YWRtaW4=}\n")
	r, err := Compare(manifest, changed, nil)
	if err != nil || !r.Drifted {
		t.Fatalf("changed secret: %+v, %v", r, err)
	}
	for _, leak := range []string{"hunter2", "aHVudGVyMg", "c2VjcmV0", "secret", "YWRtaW4"} {
		if strings.Contains(r.Diff, leak) {
			t.Errorf("diff shows %q:\n%s", leak, r.Diff)
		}
	}
	if !strings.Contains(r.Diff, "+  password: REDACTED (changed)") {
		t.Errorf("diff does not name the changed key:\n%s", r.Diff)
	}
}
