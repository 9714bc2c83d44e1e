// Package kube runs a Kubernetes control plane — etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler — with nodes simulated by kwok,
// so Deployments, Jobs and Helm's --wait really complete without a
// container runtime. Several clusters can run in one stack, each with its
// own PKI, etcd data and ports.
package kube

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// Cluster is one Kubernetes cluster of a stack. Its field is ID, not Name,
// because Name is the devenv.Component method.
type Cluster struct {
	ID    string // "c1", "c2": names its state folder, processes and env vars; default "c1"
	Nodes int    // simulated nodes; default 3
	// Metrics serves metrics.k8s.io: metrics-server scraping the resource
	// metrics kwok emulates (see MetricsServerVersion).
	Metrics bool
}

var _ devenv.Component = (*Cluster)(nil)

// Service network of every cluster: nothing routes to service IPs (the
// apiserver's service proxy goes to the endpoints), so all clusters can use
// the same range. Pod addresses are each cluster's own (see PodPool).
const (
	serviceCIDR = "10.96.0.0/16"
	serviceIP   = "10.96.0.1" // the kubernetes Service, first of serviceCIDR
	issuer      = "https://kubernetes.default.svc.cluster.local"
)

// Node annotation and label of the simulated nodes: kwok manages the nodes
// carrying the annotation, and workloads can select on the label.
const (
	NodeAnnotation = "kwok.x-k8s.io/node"
	NodeLabel      = "type"
	nodeLabelValue = "kwok"
)

// EnvKubeconfig is the env var holding cluster id's admin kubeconfig path.
func EnvKubeconfig(id string) string { return "KUBECONFIG_" + envID(id) }

// EnvServer is the env var holding cluster id's apiserver URL.
func EnvServer(id string) string { return "KUBE_" + envID(id) + "_SERVER" }

func envID(id string) string { return strings.ToUpper(strings.ReplaceAll(id, "-", "_")) }

func (c *Cluster) id() string {
	if c.ID == "" {
		return "c1"
	}
	return c.ID
}

func (c *Cluster) nodes() int {
	if c.Nodes <= 0 {
		return 3
	}
	return c.Nodes
}

// Name is "kube-<id>".
func (c *Cluster) Name() string { return "kube-" + c.id() }

// ports a cluster listens on, all on 127.0.0.1.
type ports struct {
	etcdClient, etcdPeer, apiserver, controllerManager, scheduler, kwok, metricsServer int
}

// freePorts picks distinct free ports: FreePort closes its listener,
// so two calls in a row can in principle return the same one.
func freePorts() (ports, error) {
	var p ports
	seen := map[int]bool{}
	for _, f := range []*int{&p.etcdClient, &p.etcdPeer, &p.apiserver, &p.controllerManager, &p.scheduler, &p.kwok, &p.metricsServer} {
		for *f == 0 || seen[*f] {
			n, err := devenv.FreePort()
			if err != nil {
				return p, fmt.Errorf("find a free port: %w", err)
			}
			*f = n
		}
		seen[*f] = true
	}
	return p, nil
}

// Start builds or finds the binaries, generates the cluster's PKI and
// kubeconfigs under <state>/kube/<id>, starts the control plane and kwok,
// registers the simulated nodes and returns once they are Ready and the
// default namespace can run pods. It publishes KUBECONFIG_<ID> (the admin
// kubeconfig), KUBE_<ID>_SERVER, KUBE_<ID>_LOGS (see EnvLogDir) and
// KUBE_<ID>_POD_CIDR (see PodPool); with Metrics, once metrics.k8s.io is
// available, KUBE_<ID>_METRICS_SERVER.
func (c *Cluster) Start(ctx context.Context, s *devenv.Stack) error {
	id := c.id()
	t0 := time.Now()
	bins, err := findBinaries(ctx)
	if err != nil {
		return err
	}
	var metricsServer string
	if c.Metrics {
		if metricsServer, err = metricsServerBinary(ctx); err != nil {
			return err
		}
	}
	tBins := time.Since(t0)
	// Every start is a new cluster: ports and keys change, so an old etcd
	// member, old tokens or old node leases would only get in the way.
	if err := os.RemoveAll(filepath.Join(s.State, "kube", id)); err != nil {
		return fmt.Errorf("clear old state of cluster %s: %w", id, err)
	}
	dir, err := s.Dir("kube", id)
	if err != nil {
		return err
	}
	pk, err := newPKI(filepath.Join(dir, "pki"))
	if err != nil {
		return err
	}
	p, err := freePorts()
	if err != nil {
		return err
	}
	server := "https://127.0.0.1:" + strconv.Itoa(p.apiserver)
	kubeconfigs := map[string]keyPair{"admin": pk.admin, "controller-manager": pk.ctrlMgr, "scheduler": pk.sched, "metrics-server": pk.metrics}
	for user, kp := range kubeconfigs {
		if err := writeKubeconfig(filepath.Join(dir, user+".kubeconfig"), id, server, pk.caPEM, user, kp); err != nil {
			return err
		}
	}
	kubeconfig := func(user string) string { return filepath.Join(dir, user+".kubeconfig") }
	name := func(proc string) string { return "kube-" + id + "-" + proc }

	// First, as it is what most often cannot be had (no root).
	podCIDR, err := claimPodCIDR(ctx, s, name("podroute"))
	if err != nil {
		return err
	}

	// etcd
	t := time.Now()
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(p.etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(p.etcdPeer)
	etcd := exec.Command(bins.etcd,
		"--name="+id,
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster="+id+"="+peerURL,
		"--initial-cluster-state=new",
		"--logger=zap",
		"--log-level=warn",
	)
	etcd.Env = os.Environ()
	if runtime.GOARCH != "amd64" {
		etcd.Env = append(etcd.Env, "ETCD_UNSUPPORTED_ARCH="+runtime.GOARCH) // etcd 3.4 refuses other arches without it
	}
	etcdProc, err := s.Start(name("etcd"), etcd)
	if err != nil {
		return err
	}
	if err := devenv.WaitFor(ctx, name("etcd"), etcdProc, httpOK(http.DefaultClient, etcdURL+"/health")); err != nil {
		return err
	}
	tEtcd := time.Since(t)

	// kube-apiserver
	t = time.Now()
	apiserver := exec.Command(bins.apiserver,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(p.apiserver),
		"--cert-dir="+filepath.Join(dir, "apiserver"),
		"--tls-cert-file="+pk.path(servingCert),
		"--tls-private-key-file="+pk.path(servingKey),
		"--client-ca-file="+pk.path(caCertFile),
		"--service-account-issuer="+issuer,
		"--service-account-key-file="+pk.path(saPubFile),
		"--service-account-signing-key-file="+pk.path(saKeyFile),
		"--service-cluster-ip-range="+serviceCIDR,
		"--authorization-mode=Node,RBAC",
		// The aggregation layer, so that controllers and scheduler find a
		// complete extension-apiserver-authentication ConfigMap and
		// aggregated APIs (metrics-server and the like) can be installed.
		"--requestheader-client-ca-file="+pk.path(frontProxyCACert),
		"--requestheader-allowed-names="+frontProxyClient,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+pk.path(frontProxyCert),
		"--proxy-client-key-file="+pk.path(frontProxyKey),
		"--allow-privileged=true",
		// The kubernetes Service would point at 127.0.0.1, which Endpoints
		// reject; nothing in a simulated pod calls the apiserver anyway.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		// kwok is every node's kubelet, at 127.0.0.1 (the nodes' InternalIP;
		// their Hostname resolves nowhere) with a self-signed certificate,
		// which the apiserver accepts without a --kubelet-certificate-authority.
		"--kubelet-preferred-address-types=InternalIP",
	)
	apiProc, err := s.Start(name("apiserver"), apiserver)
	if err != nil {
		return err
	}
	cfg, err := RESTConfig(kubeconfig("admin"))
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := devenv.WaitFor(ctx, name("apiserver"), apiProc, func(ctx context.Context) error {
		return cs.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
	}); err != nil {
		return err
	}
	tAPI := time.Since(t)

	// The rest start together: none waits for another.
	t = time.Now()
	cm := exec.Command(bins.controllerManager,
		"--kubeconfig="+kubeconfig("controller-manager"),
		"--authentication-kubeconfig="+kubeconfig("controller-manager"),
		"--authorization-kubeconfig="+kubeconfig("controller-manager"),
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(p.controllerManager),
		"--cert-dir="+filepath.Join(dir, "controller-manager"),
		"--leader-elect=false",
		// Each controller runs as its own service account, so the bootstrap
		// RBAC roles are exercised as in a real cluster.
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+pk.path(saKeyFile),
		"--root-ca-file="+pk.path(caCertFile),
		"--cluster-signing-cert-file="+pk.path(caCertFile),
		"--cluster-signing-key-file="+pk.path(caKeyFile),
		"--service-cluster-ip-range="+serviceCIDR,
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		"--profiling=false",
	)
	cmProc, err := s.Start(name("controller-manager"), cm)
	if err != nil {
		return err
	}
	sched := exec.Command(bins.scheduler,
		"--kubeconfig="+kubeconfig("scheduler"),
		"--authentication-kubeconfig="+kubeconfig("scheduler"),
		"--authorization-kubeconfig="+kubeconfig("scheduler"),
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(p.scheduler),
		"--leader-elect=false",
		"--profiling=false",
	)
	if _, err := s.Start(name("scheduler"), sched); err != nil {
		return err
	}
	kwokHome, err := s.Dir("kube", id, "kwok")
	if err != nil {
		return err
	}
	logDir, err := s.Dir("kube", id, "logs")
	if err != nil {
		return err
	}
	kwokConfig := filepath.Join(kwokHome, "kwok.yaml")
	logsConfig, err := writeLogs(logDir, time.Now())
	if err != nil {
		return err
	}
	configs := []string{logsConfig}
	if c.Metrics {
		configs = append(configs, kwokMetricsConfig())
	}
	if err := os.WriteFile(kwokConfig, []byte(strings.Join(configs, "---\n")), 0o644); err != nil {
		return fmt.Errorf("write kwok config: %w", err)
	}
	kwok := exec.Command(bins.kwok,
		"--config="+kwokConfig,
		// The kubelet API (logs), which the node stages advertise in each
		// node's addresses and daemon endpoint.
		"--node-ip=127.0.0.1",
		"--node-port="+strconv.Itoa(p.kwok),
		"--server-address=127.0.0.1:"+strconv.Itoa(p.kwok),
		"--kubeconfig="+kubeconfig("admin"),
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+NodeAnnotation+"=fake",
		// With leases the node lifecycle controller sees the nodes alive
		// between kwok's (slow) status heartbeats.
		"--node-lease-duration-seconds=40",
		"--cidr="+podCIDR.String(),
	)
	// kwok also reads ~/.kwok/kwok.yaml: keep a developer's own out.
	kwok.Env = append(os.Environ(), "HOME="+kwokHome)
	kwokProc, err := s.Start(name("kwok"), kwok)
	if err != nil {
		return err
	}

	if err := createNodes(ctx, cs, c.nodes()); err != nil {
		return err
	}
	if err := devenv.WaitFor(ctx, name("kwok")+" nodes", kwokProc, func(ctx context.Context) error {
		return nodesReady(ctx, cs, c.nodes())
	}); err != nil {
		return err
	}
	// Pods are refused until the service account controller has made the
	// namespace's default account.
	if err := devenv.WaitFor(ctx, name("controller-manager"), cmProc, func(ctx context.Context) error {
		_, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		return err
	}
	tRest := time.Since(t)

	var tMetrics time.Duration
	if c.Metrics {
		t = time.Now()
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return err
		}
		if err := startMetricsServer(ctx, s, name("metrics-server"), metricsServer, dir, kubeconfig("metrics-server"), pk, p.metricsServer, cs, dyn); err != nil {
			return err
		}
		tMetrics = time.Since(t)
		s.SetEnv(EnvMetricsServer(id), "https://127.0.0.1:"+strconv.Itoa(p.metricsServer))
	}

	s.SetEnv(EnvKubeconfig(id), kubeconfig("admin"))
	s.SetEnv(EnvServer(id), server)
	s.SetEnv(EnvLogDir(id), logDir)
	s.SetEnv(EnvPodCIDR(id), podCIDR.String())
	fmt.Fprintf(s.Out, "kube %s ready at %s, pods in %s, in %s (binaries %s, etcd %s, apiserver %s, controllers and %d nodes %s, metrics-server %s)\n",
		id, server, podCIDR, round(time.Since(t0)), round(tBins), round(tEtcd), round(tAPI), c.nodes(), round(tRest), round(tMetrics))
	return nil
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }

// createNodes registers n nodes for kwok to manage.
func createNodes(ctx context.Context, cs kubernetes.Interface, n int) error {
	for i := range n {
		name := "kwok-node-" + strconv.Itoa(i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name: name,
				Annotations: map[string]string{
					NodeAnnotation:                 "fake",
					"node.alpha.kubernetes.io/ttl": "0",
					// kwok serves every node's kubelet API on one port.
					metricsPathAnnotation: nodeMetricsPath(name),
				},
				Labels: map[string]string{
					NodeLabel:                       nodeLabelValue,
					"kubernetes.io/hostname":        name,
					"kubernetes.io/os":              "linux",
					"kubernetes.io/arch":            runtime.GOARCH,
					"kubernetes.io/role":            "agent",
					"node-role.kubernetes.io/agent": "",
				},
			},
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create node %s: %w", name, err)
		}
	}
	return nil
}

// nodesReady reports whether n nodes are Ready and schedulable. New nodes
// carry the not-ready taint until the node lifecycle controller's next pass
// (up to 5 s); once kwok marks a node Ready, removing the taint here is
// what that controller would do, only sooner.
func nodesReady(ctx context.Context, cs kubernetes.Interface, n int) error {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: NodeLabel + "=" + nodeLabelValue})
	if err != nil {
		return err
	}
	ready := 0
	for i := range nodes.Items {
		node := &nodes.Items[i]
		if !isReady(node) {
			continue
		}
		var keep []corev1.Taint
		for _, t := range node.Spec.Taints {
			if t.Key != corev1.TaintNodeNotReady {
				keep = append(keep, t)
			}
		}
		if len(keep) != len(node.Spec.Taints) {
			node.Spec.Taints = keep
			if _, err := cs.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("untaint node %s: %w", node.Name, err)
			}
		}
		ready++
	}
	if ready < n {
		return fmt.Errorf("%d of %d nodes ready", ready, n)
	}
	return nil
}

func isReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// httpOK checks that url answers 200.
func httpOK(c *http.Client, url string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
}
