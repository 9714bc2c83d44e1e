package releases

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
	"github.com/slipwayhq/slipway/pkg/validate"
)

func ingObj(name string, hosts []string, tls []string, path string, lb ...networkingv1.IngressLoadBalancerIngress) networkingv1.Ingress {
	ing := networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "app-x"}}
	for _, h := range hosts {
		r := networkingv1.IngressRule{Host: h}
		if path != "" {
			r.HTTP = &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{Path: path}}}
		}
		ing.Spec.Rules = append(ing.Spec.Rules, r)
	}
	if tls != nil {
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: tls}}
	}
	ing.Status.LoadBalancer.Ingress = lb
	return ing
}

func svcObj(name string, typ corev1.ServiceType, port int32, lb ...corev1.LoadBalancerIngress) corev1.Service {
	s := corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "app-x"}, Spec: corev1.ServiceSpec{Type: typ}}
	if port != 0 {
		s.Spec.Ports = []corev1.ServicePort{{Port: port}}
	}
	s.Status.LoadBalancer.Ingress = lb
	return s
}

func TestLocationOf(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ings  []networkingv1.Ingress
		svcs  []corev1.Service
		want  string
		found bool
	}{
		{"nothing to reach", nil, nil, "", true},
		{"ingress host", []networkingv1.Ingress{ingObj("web", []string{"a.example.com"}, nil, "/")}, []corev1.Service{svcObj("web", corev1.ServiceTypeClusterIP, 80)},
			"http://a.example.com", true},
		{"ingress host with tls and a path", []networkingv1.Ingress{ingObj("web", []string{"a.example.com"}, []string{"a.example.com"}, "/app")}, nil,
			"https://a.example.com/app", true},
		{"tls of another host", []networkingv1.Ingress{ingObj("web", []string{"a.example.com"}, []string{"b.example.com"}, "")}, nil, "http://a.example.com", true},
		{"wildcard host skipped for the next", []networkingv1.Ingress{ingObj("web", []string{"*.example.com", "c.example.com"}, nil, "")}, nil, "http://c.example.com", true},
		{"ingresses in name order", []networkingv1.Ingress{ingObj("b", []string{"b.example.com"}, nil, ""), ingObj("a", []string{"a.example.com"}, nil, "")}, nil,
			"http://a.example.com", true},
		{"ingress without host: its address", []networkingv1.Ingress{ingObj("web", nil, nil, "", networkingv1.IngressLoadBalancerIngress{IP: "203.0.113.7"})}, nil,
			"http://203.0.113.7", true},
		{"ingress without host nor address yet, beside a service", []networkingv1.Ingress{ingObj("web", nil, nil, "")},
			[]corev1.Service{svcObj("web", corev1.ServiceTypeClusterIP, 80)}, "", false},
		{"load balancer hostname", nil, []corev1.Service{svcObj("web", corev1.ServiceTypeLoadBalancer, 8080, corev1.LoadBalancerIngress{Hostname: "lb.example.net"})},
			"http://lb.example.net:8080", true},
		{"load balancer ip at 443", nil, []corev1.Service{svcObj("web", corev1.ServiceTypeLoadBalancer, 443, corev1.LoadBalancerIngress{IP: "198.51.100.2"})},
			"https://198.51.100.2", true},
		{"load balancer pending beats a cluster service", nil, []corev1.Service{svcObj("a", corev1.ServiceTypeClusterIP, 80), svcObj("b", corev1.ServiceTypeLoadBalancer, 80)},
			"", false},
		{"cluster service at 80", nil, []corev1.Service{svcObj("web", corev1.ServiceTypeClusterIP, 80)}, "http://web.app-x.svc", true},
		{"cluster service at another port, external names and portless skipped", nil, []corev1.Service{
			svcObj("a", corev1.ServiceTypeExternalName, 80), svcObj("b", corev1.ServiceTypeClusterIP, 0), svcObj("c", corev1.ServiceTypeNodePort, 8080)},
			"http://c.app-x.svc:8080", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, found := locationOf(tc.ings, tc.svcs)
			if got != tc.want || found != tc.found {
				t.Errorf("locationOf = %q, %t; want %q, %t", got, found, tc.want, tc.found)
			}
		})
	}
}

func TestInstanceName(t *testing.T) {
	id := "inst_01JF3Q8ZK2X5N7R4T6V8W0Y2A4"
	if got := InstanceName("api", id); got != "api-t6v8w0y2a4" {
		t.Errorf("InstanceName(api) = %q", got)
	}
	long := strings.Repeat("a", 41) + "-" + strings.Repeat("b", 21)
	got := InstanceName(long, id)
	if len(got) > maxReleaseName || got != strings.Repeat("a", 41)+"-t6v8w0y2a4" {
		t.Errorf("InstanceName(63 characters) = %q (%d characters); want at most %d, no double dash", got, len(got), maxReleaseName)
	}
	if err := validate.DNSLabel("name", got); err != nil {
		t.Error(err)
	}
}

func TestInstancesStore(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l, err := OpenLedger(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
		inst := func(org string, n int) Instance {
			id := fmt.Sprintf("inst_%026d", n)
			return Instance{Org: org, ID: id, Application: "api", Target: "dev", Cluster: "cl_1", Namespace: InstanceName("api", id), Release: InstanceName("api", id),
				State: InstanceLaunching, TTL: time.Hour, LastActivity: at, Expires: at.Add(time.Duration(n) * time.Minute), Creator: "user:alice", Created: at}
		}
		for n := 1; n <= 3; n++ {
			if err := l.PutInstance(ctx, inst("acme", n), 3); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.PutInstance(ctx, inst("acme", 4), 3); !errors.Is(err, ErrInstanceLimit) {
			t.Fatalf("a fourth instance with a limit of 3: %v; want ErrInstanceLimit", err)
		}
		if err := l.PutInstance(ctx, inst("globex", 4), 3); err != nil {
			t.Fatalf("another org's instance: %v", err)
		}
		keyed := inst("globex", 5)
		keyed.IdempotencyKey, keyed.RequestHash = "k1", "h1"
		if err := l.PutInstance(ctx, keyed, 3); err != nil {
			t.Fatal(err)
		}
		again := inst("globex", 6)
		again.IdempotencyKey = "k1"
		if err := l.PutInstance(ctx, again, 3); !errors.Is(err, errInstanceKeyRace) {
			t.Fatalf("a second instance with key k1: %v; want errInstanceKeyRace", err)
		}
		if got, found, err := l.InstanceByKey(ctx, "globex", "k1"); err != nil || !found || got.ID != keyed.ID || got.RequestHash != "h1" {
			t.Fatalf("InstanceByKey = %+v, %t, %v", got, found, err)
		}
		if _, found, _ := l.InstanceByKey(ctx, "acme", "k1"); found {
			t.Error("acme finds globex's key")
		}
		if _, err := l.GetInstance(ctx, "globex", inst("acme", 1).ID); !errors.Is(err, ErrInstanceNotFound) {
			t.Errorf("globex reads acme's instance: %v", err)
		}

		// Newest first, paged by id.
		page, err := l.ListInstances(ctx, "acme", InstanceFilter{Application: "api"}, "", 2)
		if err != nil || len(page) != 2 || page[0].ID != inst("acme", 3).ID || page[1].ID != inst("acme", 2).ID {
			t.Fatalf("first page = %v, %v", page, err)
		}
		if rest, _ := l.ListInstances(ctx, "acme", InstanceFilter{Application: "api"}, page[1].ID, 2); len(rest) != 1 || rest[0].ID != inst("acme", 1).ID {
			t.Errorf("second page = %v", rest)
		}

		// Launch settled: running with a location.
		id1 := inst("acme", 1).ID
		if err := l.SetInstanceLaunchOp(ctx, "acme", id1, "op_1"); err != nil {
			t.Fatal(err)
		}
		if err := l.SetInstanceLaunchOp(ctx, "acme", id1, "op_other"); err != nil {
			t.Fatal(err)
		}
		if err := l.InstanceLaunched(ctx, "acme", id1, "http://a.example.com", true, at); err != nil {
			t.Fatal(err)
		}
		got, err := l.GetInstance(ctx, "acme", id1)
		if err != nil || got.State != InstanceRunning || got.Location != "http://a.example.com" || got.LaunchOp != "op_1" || !got.Launched.Equal(at) {
			t.Fatalf("after launch = %+v, %v", got, err)
		}
		if running, _ := l.ListInstances(ctx, "acme", InstanceFilter{Application: "api", State: InstanceRunning}, "", 10); len(running) != 1 || running[0].ID != id1 {
			t.Errorf("running = %v", running)
		}
		// Keepalive with a new TTL.
		later := at.Add(10 * time.Minute)
		got, ok, err := l.KeepInstanceAlive(ctx, "acme", id1, 2*time.Hour, later)
		if err != nil || !ok || got.TTL != 2*time.Hour || !got.Expires.Equal(later.Add(2*time.Hour)) || !got.LastActivity.Equal(later) {
			t.Fatalf("keepalive = %+v, %t, %v", got, ok, err)
		}

		// Expired: instances 2 and 3 (expiring at +2 and +3 minutes), not 1
		// (kept alive) nor globex's (+4, +5).
		exp, err := l.ExpiredInstances(ctx, at.Add(3*time.Minute), 10)
		if err != nil || len(exp) != 2 || exp[0].ID != inst("acme", 2).ID || exp[1].ID != inst("acme", 3).ID {
			t.Fatalf("expired = %v, %v", exp, err)
		}
		id2 := inst("acme", 2).ID
		if live, err := l.InstanceDeleting(ctx, "acme", id2, "op_d1", later); err != nil || !live {
			t.Fatalf("deleting = %t, %v", live, err)
		}
		if live, _ := l.InstanceDeleting(ctx, "acme", id2, "op_d2", later); live {
			t.Error("a second deletion of a deleting instance took it")
		}
		if _, ok, _ := l.KeepInstanceAlive(ctx, "acme", id2, 0, later); ok {
			t.Error("a deleting instance was kept alive")
		}
		// The delete fails: failed, culled again at the retry.
		if err := l.InstanceDeleteFailed(ctx, "acme", id2, "op_d1", later.Add(5*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, _ := l.GetInstance(ctx, "acme", id2); got.State != InstanceFailed || !got.Expires.Equal(later.Add(5*time.Minute)) || got.DeleteOp != "op_d1" {
			t.Errorf("after a failed delete = %+v", got)
		}
		if live, _ := l.InstanceDeleting(ctx, "acme", id2, "op_d2", later); !live {
			t.Error("a failed instance could not be deleted again")
		}
		if err := l.InstanceDeleted(ctx, "acme", id2, "op_d1", later); err != nil {
			t.Fatal(err)
		}
		if got, _ := l.GetInstance(ctx, "acme", id2); got.State != InstanceDeleting {
			t.Errorf("the old delete's success settled the new delete: %+v", got)
		}
		if err := l.InstanceDeleted(ctx, "acme", id2, "op_d2", later); err != nil {
			t.Fatal(err)
		}
		if got, _ := l.GetInstance(ctx, "acme", id2); got.State != InstanceDeleted || !got.Deleted.Equal(later) {
			t.Errorf("deleted = %+v", got)
		}
		// A deleted instance leaves the count: a new one fits.
		if err := l.PutInstance(ctx, inst("acme", 7), 3); err != nil {
			t.Errorf("an instance in place of a deleted one: %v", err)
		}
		// Listed while retained, then forgotten.
		if all, _ := l.ListInstances(ctx, "acme", InstanceFilter{Application: "api", DeletedSince: later.Add(time.Minute)}, "", 10); len(all) != 3 {
			t.Errorf("listed past the deleted one's retention: %d instances, want 3", len(all))
		}
		if n, err := l.PurgeInstances(ctx, later.Add(time.Minute)); err != nil || n != 1 {
			t.Errorf("purge = %d, %v", n, err)
		}
		if _, err := l.GetInstance(ctx, "acme", id2); !errors.Is(err, ErrInstanceNotFound) {
			t.Errorf("purged instance: %v", err)
		}
		if uns, err := l.UnsettledInstances(ctx, at, 10); err != nil || len(uns) != 4 {
			t.Errorf("unsettled = %d, %v; want the 4 launching", len(uns), err)
		}
	})
}
