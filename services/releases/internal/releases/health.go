package releases

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/services/releases/internal/status"
)

// DeploymentHealth is a release's overall verdict with its workloads' and
// pods' readiness and, for an application that declares a health
// endpoint, what its ready pods answer there.
type DeploymentHealth struct {
	Release  Revision
	Verdict  status.Verdict
	Message  string
	Observed time.Time
	// Workloads and ReadyWorkloads count the release's workloads, and
	// those whose verdict is ready.
	Workloads, ReadyWorkloads int
	// Pods and ReadyPods count the release's pods, and those Ready.
	Pods, ReadyPods int
	// Probe is the application's health probe; nil when it declares none.
	Probe *HealthProbe
}

// HealthProbe is what the health endpoint answered, per ready pod.
type HealthProbe struct {
	Path, Port string
	// Pods asked, by name: at most proxyPods.
	Pods []PodProbe
	// Skipped counts the ready pods not asked.
	Skipped int
}

// PodProbe is one pod's answer to the health probe.
type PodProbe struct {
	Pod     string
	Healthy bool
	// Code is the pod's HTTP status; 0 when no answer came from the pod.
	Code    int
	Message string
	Latency time.Duration
}

// HealthService answers the health and metrics routes. Like Service, it
// answers another org's release exactly as a missing one.
type HealthService interface {
	DeploymentHealth(ctx context.Context, cluster, namespace, name string) (DeploymentHealth, error)
	DeploymentMetrics(ctx context.Context, cluster, namespace, name string, prometheus bool, p PageRequest) (MetricsPage, error)
}

type healthService struct {
	st      *statusService
	apps    AppProbes
	metrics MetricsClients
	http    PodHTTP
}

// NewHealthService reads releases through svc and their pods from cache;
// asks the catalog (apps) what an application's pods serve; reads the
// clusters' metrics.k8s.io with metrics, and their pods through the API
// servers' pod proxy with podHTTP.
func NewHealthService(svc Service, access ClusterAccess, cache *status.Cache, apps AppProbes, metrics MetricsClients, podHTTP PodHTTP) HealthService {
	return &healthService{st: &statusService{svc: svc, access: access, cache: cache, now: time.Now}, apps: apps, metrics: metrics, http: podHTTP}
}

func (h *healthService) DeploymentHealth(ctx context.Context, cluster, namespace, name string) (DeploymentHealth, error) {
	d, sr, err := h.st.status(ctx, cluster, namespace, name)
	if err != nil {
		return DeploymentHealth{}, err
	}
	out := DeploymentHealth{Release: d.Release, Verdict: d.Verdict, Message: d.Message, Observed: d.Observed,
		Workloads: d.WorkloadCount, ReadyWorkloads: readyWorkloads(d.Snapshot)}
	if sr.Revision == "" {
		return out, nil // uninstalled: nothing runs
	}
	pods, err := h.st.cache.Pods(ctx, sr)
	if err != nil {
		return DeploymentHealth{}, cacheError(cluster, d.Release, err)
	}
	ready := readyPods(pods)
	out.Pods, out.ReadyPods = len(pods), len(ready)
	if d.Release.Application == "" {
		return out, nil
	}
	caller, _ := identity.FromContext(ctx) // GetRelease checked it
	probes, err := h.apps.Probes(ctx, caller.Org, d.Release.Application)
	if err != nil {
		return DeploymentHealth{}, err
	}
	if probes.HealthPath == "" {
		return out, nil
	}
	hc, base, err := h.http(sr.Access)
	if err != nil {
		return DeploymentHealth{}, cacheError(cluster, d.Release, err)
	}
	out.Probe = probeHealth(ctx, hc, base, ready, probes.HealthPath, probes.HealthPort)
	out.Verdict, out.Message = probeVerdict(out.Verdict, out.Message, out.Probe)
	return out, nil
}

// readyWorkloads counts the ready workloads of a snapshot. Its list is
// worst first and cut at status.MaxWorkloads: when its last is ready,
// every one cut is too.
func readyWorkloads(s status.Snapshot) int {
	n := 0
	for _, w := range s.Workloads {
		if w.Verdict == status.Ready {
			n++
		}
	}
	if l := len(s.Workloads); l > 0 && l < s.WorkloadCount && s.Workloads[l-1].Verdict == status.Ready {
		n += s.WorkloadCount - l
	}
	return n
}

// podReady reports whether a pod runs, is Ready and is not going away.
func podReady(p *corev1.Pod) bool {
	if p == nil || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// readyPods returns the ready ones of pods, by namespace and name.
func readyPods(pods []status.Pod) []status.Pod {
	var out []status.Pod
	for _, p := range pods {
		if podReady(p.Object) {
			out = append(out, p)
		}
	}
	sortPods(out)
	return out
}

func sortPods(pods []status.Pod) {
	sort.Slice(pods, func(i, j int) bool {
		if pods[i].Namespace != pods[j].Namespace {
			return pods[i].Namespace < pods[j].Namespace
		}
		return pods[i].Name < pods[j].Name
	})
}

// probeHealth asks the first proxyPods of the ready pods GET path on port,
// at once.
func probeHealth(ctx context.Context, hc *http.Client, base *url.URL, ready []status.Pod, path, port string) *HealthProbe {
	hp := &HealthProbe{Path: path, Port: port}
	asked := ready
	if len(asked) > proxyPods {
		asked, hp.Skipped = asked[:proxyPods], len(asked)-proxyPods
	}
	hp.Pods = make([]PodProbe, len(asked))
	eachPod(len(asked), func(i int) {
		p := asked[i]
		pp := PodProbe{Pod: p.Name}
		num, err := podPort(p.Object, port)
		if err != nil {
			pp.Message = err.Error()
			hp.Pods[i] = pp
			return
		}
		a := proxyGet(ctx, hc, base, p.Namespace, p.Name, num, path, snippetBytes)
		pp.Code, pp.Latency = a.Code, a.Latency
		switch {
		case a.Code == 0:
			pp.Message = a.Message
		case a.Code >= 200 && a.Code < 400:
			pp.Healthy = true
		default:
			pp.Message = fmt.Sprintf("answered %d %s", a.Code, http.StatusText(a.Code))
			if s := snippet(a.Body); s != "" {
				pp.Message += ": " + s
			}
		}
		hp.Pods[i] = pp
	})
	return hp
}

// probeVerdict is the verdict once the probe is in: a pod that answered
// unhealthy makes a better verdict degraded, named in the message.
func probeVerdict(v status.Verdict, msg string, hp *HealthProbe) (status.Verdict, string) {
	var first *PodProbe
	bad := 0
	for i := range hp.Pods {
		if !hp.Pods[i].Healthy {
			if first == nil {
				first = &hp.Pods[i]
			}
			bad++
		}
	}
	if first == nil || v.Severity() >= status.Degraded.Severity() {
		return v, msg
	}
	msg = fmt.Sprintf("pod %s: health probe GET %s on port %s: %s", first.Pod, hp.Path, hp.Port, first.Message)
	if bad > 1 {
		msg += fmt.Sprintf(" (and %d more unhealthy)", bad-1)
	}
	return status.Degraded, msg
}
