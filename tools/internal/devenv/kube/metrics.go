package kube

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// Resource metrics (metrics.k8s.io). kwok answers each node's kubelet
// resource-metrics endpoint (at the path the node's metricsPathAnnotation
// names) from the pods it runs, every container using UsageCPUAnnotation and
// UsageMemoryAnnotation of its pod, or DefaultCPUUsage and
// DefaultMemoryUsage; the real metrics-server scrapes kwok as it would
// kubelets and serves metrics.k8s.io through the apiserver's aggregation
// layer. A pod's metrics appear two scrapes (MetricResolution apart) after
// it starts, as with real kubelets.
const (
	MetricsServerVersion = "v0.8.0"
	MetricResolution     = "10s" // metrics-server's minimum

	UsageCPUAnnotation    = "kwok.x-k8s.io/usage-cpu"    // a quantity: "250m"
	UsageMemoryAnnotation = "kwok.x-k8s.io/usage-memory" // a quantity: "64Mi"
	DefaultCPUUsage       = "5m"
	DefaultMemoryUsage    = "16Mi"

	metricsPathAnnotation = "metrics.k8s.io/resource-metrics-path" // read by metrics-server
	metricsServerUser     = "system:metrics-server"
	metricsService        = "metrics-server" // in kube-system
	metricsServiceName    = metricsService + ".kube-system.svc"
)

// EnvMetricsServer is the env var holding the URL of cluster id's
// metrics-server, set only for a cluster started with Metrics.
func EnvMetricsServer(id string) string { return "KUBE_" + envID(id) + "_METRICS_SERVER" }

// metricsServerBinary builds (once, into the cache) metrics-server.
func metricsServerBinary(ctx context.Context) (string, error) {
	return devenv.GoInstall(ctx, "metrics-server", "sigs.k8s.io/metrics-server/cmd/metrics-server", MetricsServerVersion)
}

// nodeMetricsPath is where kwok serves node's resource metrics.
func nodeMetricsPath(node string) string { return "/metrics/nodes/" + node + "/metrics/resource" }

// kwokMetricsConfig is kwok's configuration for the kubelet's resource
// metrics: the five series metrics-server reads, and every container's
// usage. CPU time is the usage times the pod's age, so it starts at zero
// with the pod, as container_start_time_seconds says; a node uses 50m and
// 256Mi besides its pods. The start time is rounded to the second (the
// creation timestamp's precision): computed from two readings of the clock
// it would move by microseconds either way between scrapes, and
// metrics-server drops a container whose start time went back ("unexpected
// decrease in startTime"), so that one container of a pod in four was
// missing at each read.
func kwokMetricsConfig() string {
	labels := `
    labels:
    - name: container
      value: container.name
    - name: namespace
      value: pod.metadata.namespace
    - name: pod
      value: pod.metadata.name`
	return fmt.Sprintf(`apiVersion: kwok.x-k8s.io/v1alpha1
kind: Metric
metadata:
  name: slipway-devstack-resource
spec:
  path: %q
  metrics:
  - name: node_cpu_usage_seconds_total
    help: Cumulative cpu time consumed by the node in core-seconds
    kind: counter
    dimension: node
    value: 'node.CumulativeUsage("cpu") + node.SinceSecond() * 0.05'
  - name: node_memory_working_set_bytes
    help: Current working set of the node in bytes
    kind: gauge
    dimension: node
    value: 'node.Usage("memory") + 268435456.0'
  - name: container_start_time_seconds
    help: Start time of the container since unix epoch in seconds
    kind: gauge
    dimension: container%[2]s
    value: 'double(int(UnixSecond(Now()) - pod.SinceSecond() + 0.5))'
  - name: container_cpu_usage_seconds_total
    help: Cumulative cpu time consumed by the container in core-seconds
    kind: counter
    dimension: container%[2]s
    value: 'pod.SinceSecond() * pod.Usage("cpu", container.name)'
  - name: container_memory_working_set_bytes
    help: Current working set of the container in bytes
    kind: gauge
    dimension: container%[2]s
    value: 'pod.Usage("memory", container.name)'
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterResourceUsage
metadata:
  name: slipway-devstack-usage
spec:
  usages:
  - usage:
      cpu:
        expression: '%[3]q in pod.metadata.annotations ? Quantity(pod.metadata.annotations[%[3]q]) : Quantity(%[4]q)'
      memory:
        expression: '%[5]q in pod.metadata.annotations ? Quantity(pod.metadata.annotations[%[5]q]) : Quantity(%[6]q)'
`, nodeMetricsPath("{nodeName}"), labels, UsageCPUAnnotation, DefaultCPUUsage, UsageMemoryAnnotation, DefaultMemoryUsage)
}

var apiServices = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// startMetricsServer runs metrics-server on 127.0.0.1:port against the
// cluster (kwok's kubelet endpoints at the nodes' InternalIP and status
// port, whose self-signed certificates it cannot verify), as the user
// system:metrics-server with the RBAC of the upstream manifests, and
// registers it as v1beta1.metrics.k8s.io. The apiserver reaches it through
// an ExternalName Service naming 127.0.0.1 (what the aggregator resolves
// without endpoints) and verifies its certificate, issued by the cluster CA
// to metrics-server.kube-system.svc. It returns once the APIService is
// Available.
func startMetricsServer(ctx context.Context, s *devenv.Stack, name, bin, dir, kubeconfig string, pk *pki, port int, cs kubernetes.Interface, dyn dynamic.Interface) error {
	if err := metricsRBAC(ctx, cs); err != nil {
		return err
	}
	ms := exec.Command(bin,
		"--kubeconfig="+kubeconfig,
		"--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
		"--cert-dir="+filepath.Join(dir, "metrics-server"),
		"--tls-cert-file="+pk.path(metricsServingCert),
		"--tls-private-key-file="+pk.path(metricsServingKey),
		"--kubelet-insecure-tls",
		"--kubelet-preferred-address-types=InternalIP",
		"--kubelet-use-node-status-port",
		"--kubelet-request-timeout=5s",
		"--metric-resolution="+MetricResolution,
		"--profiling=false",
	)
	proc, err := s.Start(name, ms)
	if err != nil {
		return err
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: metricsService, Namespace: metav1.NamespaceSystem},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "127.0.0.1"},
	}
	if _, err := cs.CoreV1().Services(metav1.NamespaceSystem).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create metrics-server service: %w", err)
	}
	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": "v1beta1.metrics.k8s.io"},
		"spec": map[string]any{
			"group":                "metrics.k8s.io",
			"version":              "v1beta1",
			"groupPriorityMinimum": int64(100),
			"versionPriority":      int64(100),
			"caBundle":             base64.StdEncoding.EncodeToString(pk.caPEM),
			"service":              map[string]any{"name": metricsService, "namespace": metav1.NamespaceSystem, "port": int64(port)},
		},
	}}
	if _, err := dyn.Resource(apiServices).Create(ctx, apiService, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("register metrics.k8s.io: %w", err)
	}
	return devenv.WaitFor(ctx, name, proc, func(ctx context.Context) error {
		got, err := dyn.Resource(apiServices).Get(ctx, "v1beta1.metrics.k8s.io", metav1.GetOptions{})
		if err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, c := range conds {
			c, _ := c.(map[string]any)
			if c["type"] == "Available" {
				if c["status"] == "True" {
					return nil
				}
				return fmt.Errorf("APIService v1beta1.metrics.k8s.io not available: %v: %v", c["reason"], c["message"])
			}
		}
		return errors.New("APIService v1beta1.metrics.k8s.io has no Available condition yet")
	})
}

// metricsRBAC grants system:metrics-server what the upstream manifests do:
// read nodes, their metrics and pods; delegate authentication and
// authorization; read the requestheader configuration. It also adds
// metrics.k8s.io to the view, edit and admin roles.
func metricsRBAC(ctx context.Context, cs kubernetes.Interface) error {
	user := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: metricsServerUser}}
	clusterRoles := []*rbacv1.ClusterRole{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "system:metrics-server"},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"nodes/metrics"}, Verbs: []string{"get"}},
				{APIGroups: []string{""}, Resources: []string{"pods", "nodes"}, Verbs: []string{"get", "list", "watch"}},
			},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "system:aggregated-metrics-reader", Labels: map[string]string{
				"rbac.authorization.k8s.io/aggregate-to-view":  "true",
				"rbac.authorization.k8s.io/aggregate-to-edit":  "true",
				"rbac.authorization.k8s.io/aggregate-to-admin": "true",
			}},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"metrics.k8s.io"}, Resources: []string{"pods", "nodes"}, Verbs: []string{"get", "list", "watch"}}},
		},
	}
	for _, r := range clusterRoles {
		if _, err := cs.RbacV1().ClusterRoles().Create(ctx, r, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create cluster role %s: %w", r.Name, err)
		}
	}
	bindings := []*rbacv1.ClusterRoleBinding{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "system:metrics-server"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:metrics-server"},
			Subjects:   user,
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "metrics-server:system:auth-delegator"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
			Subjects:   user,
		},
	}
	for _, b := range bindings {
		if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create cluster role binding %s: %w", b.Name, err)
		}
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-server-auth-reader", Namespace: metav1.NamespaceSystem},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "extension-apiserver-authentication-reader"},
		Subjects:   user,
	}
	if _, err := cs.RbacV1().RoleBindings(metav1.NamespaceSystem).Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create role binding %s: %w", rb.Name, err)
	}
	return nil
}
