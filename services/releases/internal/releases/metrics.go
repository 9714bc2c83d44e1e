package releases

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/paging"
	"github.com/slipwayhq/slipway/pkg/validate"
	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
	"github.com/slipwayhq/slipway/services/releases/internal/status"
)

// Sentinel errors of the metrics route.
var (
	// ErrMetricsUnsupported: the cluster does not serve metrics.k8s.io.
	ErrMetricsUnsupported = errors.New("the cluster does not serve the resource metrics API")
	// ErrMetricsUnavailable: the cluster registers metrics.k8s.io, but
	// what serves it does not answer.
	ErrMetricsUnavailable = errors.New("the cluster's resource metrics API does not answer")
	// ErrMetricsForbidden: the cluster's credential may not read
	// metrics.k8s.io.
	ErrMetricsForbidden = errors.New("the cluster's credential may not read the resource metrics API")
)

// metricsTimeout bounds the reads of metrics.k8s.io of one call.
const metricsTimeout = 10 * time.Second

// MetricsClients returns a client of a cluster's metrics.k8s.io:
// helmexec.Executor.Metrics.
type MetricsClients func(helmexec.Access) (metricsclient.Interface, error)

// Usage is an amount of CPU (thousandths of a core) and memory (bytes).
type Usage struct {
	CPUMillis, MemoryBytes int64
}

func (u Usage) plus(o Usage) Usage {
	return Usage{CPUMillis: u.CPUMillis + o.CPUMillis, MemoryBytes: u.MemoryBytes + o.MemoryBytes}
}

// usageOf reads the CPU and memory of a resource list.
func usageOf(l corev1.ResourceList) Usage {
	var u Usage
	if q, ok := l[corev1.ResourceCPU]; ok {
		u.CPUMillis = q.MilliValue()
	}
	if q, ok := l[corev1.ResourceMemory]; ok {
		u.MemoryBytes = q.Value()
	}
	return u
}

// ContainerMetrics is one container's use, requests, limits and restarts.
type ContainerMetrics struct {
	Name                    string
	Usage, Requests, Limits Usage
	Restarts                int32
}

// PodMetrics is one pod's use, in all and per container.
type PodMetrics struct {
	Namespace, Name string
	Usage           Usage
	Containers      []ContainerMetrics
	// UsageMissing: metrics.k8s.io has no sample of the pod.
	UsageMissing bool
	// Prometheus is what its Prometheus endpoint answered, when asked.
	Prometheus *Scrape
}

// Scrape is a pod's Prometheus endpoint's answer.
type Scrape struct {
	Path, Port string
	Code       int
	Text       string
	Truncated  bool
	Message    string
}

// MetricsPage is a page of a release's pods' metrics, with the total of
// them all.
type MetricsPage struct {
	Total         Usage
	Pods          []PodMetrics
	PodCount      int
	Window        time.Duration
	Observed      time.Time
	NextPageToken string
}

func (h *healthService) DeploymentMetrics(ctx context.Context, cluster, namespace, name string, prometheus bool, p PageRequest) (MetricsPage, error) {
	r, _, sr, live, err := h.st.release(ctx, cluster, namespace, name)
	if err != nil {
		return MetricsPage{}, err
	}
	caller, _ := identity.FromContext(ctx) // GetRelease checked it
	fp := paging.Fingerprint(caller.Org, "metrics", r.Cluster, r.Namespace, r.Name, strconv.Itoa(r.Revision), strconv.FormatBool(prometheus))
	size, from, err := offsetPage(p, fp)
	if err != nil {
		return MetricsPage{}, err
	}
	var probes Probes
	if prometheus {
		if r.Application == "" {
			return MetricsPage{}, validate.Field("include_prometheus", "release %s/%s is not an application's, so no Prometheus endpoint is declared for it", r.Namespace, r.Name)
		}
		if probes, err = h.apps.Probes(ctx, caller.Org, r.Application); err != nil {
			return MetricsPage{}, err
		}
		if probes.MetricsPort == "" {
			return MetricsPage{}, validate.Field("include_prometheus", "application %s declares no Prometheus endpoint (probes.metrics_port)", r.Application)
		}
	}
	if !live {
		return MetricsPage{}, nil // uninstalled: nothing runs
	}
	pods, err := h.st.cache.Pods(ctx, sr)
	if err != nil {
		return MetricsPage{}, cacheError(cluster, r, err)
	}
	sortPods(pods)
	mc, err := h.metrics(sr.Access)
	if err != nil {
		return MetricsPage{}, cacheError(cluster, r, err)
	}
	// One list per namespace; the release's own even without pods, so
	// that a cluster without metrics.k8s.io always says so.
	namespaces, seen := []string{r.Namespace}, map[string]bool{r.Namespace: true}
	for _, pod := range pods {
		if !seen[pod.Namespace] {
			seen[pod.Namespace] = true
			namespaces = append(namespaces, pod.Namespace)
		}
	}
	samples, err := podSamples(ctx, mc, cluster, namespaces)
	if err != nil {
		return MetricsPage{}, err
	}
	page := aggregateMetrics(pods, samples)
	if from < len(page.Pods) {
		end := min(from+size, len(page.Pods))
		if end < len(page.Pods) {
			page.NextPageToken = paging.Encode(strconv.Itoa(end), fp)
		}
		page.Pods = page.Pods[from:end]
	} else {
		page.Pods = nil
	}
	if prometheus && len(page.Pods) > 0 {
		hc, base, err := h.http(sr.Access)
		if err != nil {
			return MetricsPage{}, cacheError(cluster, r, err)
		}
		objs := map[string]*corev1.Pod{}
		for _, pod := range pods {
			objs[pod.Namespace+"/"+pod.Name] = pod.Object
		}
		scrapePrometheus(ctx, hc, base, page.Pods, objs, probes)
	}
	return page, nil
}

// podSamples lists the pods' samples of metrics.k8s.io in each namespace,
// by "namespace/name".
func podSamples(ctx context.Context, mc metricsclient.Interface, cluster string, namespaces []string) (map[string]*metricsv1beta1.PodMetrics, error) {
	ctx, cancel := context.WithTimeout(ctx, metricsTimeout)
	defer cancel()
	samples := map[string]*metricsv1beta1.PodMetrics{}
	for _, ns := range namespaces {
		l, err := mc.MetricsV1beta1().PodMetricses(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, metricsError(cluster, ns, err)
		}
		for i := range l.Items {
			samples[l.Items[i].Namespace+"/"+l.Items[i].Name] = &l.Items[i]
		}
	}
	return samples, nil
}

// aggregateMetrics builds every pod's metrics (pods in order) from the
// samples of metrics.k8s.io (by "namespace/name") and the pods' specs and
// statuses, with their total, the longest window and the latest sample.
func aggregateMetrics(pods []status.Pod, samples map[string]*metricsv1beta1.PodMetrics) MetricsPage {
	page := MetricsPage{PodCount: len(pods), Pods: make([]PodMetrics, 0, len(pods))}
	for _, pod := range pods {
		pm := PodMetrics{Namespace: pod.Namespace, Name: pod.Name}
		used := map[string]Usage{}
		s := samples[pod.Namespace+"/"+pod.Name]
		if s == nil || len(s.Containers) == 0 {
			pm.UsageMissing = true
		} else {
			for _, c := range s.Containers {
				used[c.Name] = usageOf(c.Usage)
			}
			page.Window = max(page.Window, s.Window.Duration)
			if s.Timestamp.After(page.Observed) {
				page.Observed = s.Timestamp.Time
			}
		}
		restarts := map[string]int32{}
		if pod.Object != nil {
			for _, cs := range pod.Object.Status.ContainerStatuses {
				restarts[cs.Name] = cs.RestartCount
			}
			for _, c := range pod.Object.Spec.Containers {
				cm := ContainerMetrics{Name: c.Name, Usage: used[c.Name], Requests: usageOf(c.Resources.Requests),
					Limits: usageOf(c.Resources.Limits), Restarts: restarts[c.Name]}
				pm.Usage = pm.Usage.plus(cm.Usage)
				pm.Containers = append(pm.Containers, cm)
			}
		}
		page.Total = page.Total.plus(pm.Usage)
		page.Pods = append(page.Pods, pm)
	}
	return page
}

// metricsError explains a failed read of metrics.k8s.io, naming the
// cluster as the caller named it.
func metricsError(cluster, ns string, err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: cluster %s does not serve metrics.k8s.io: install metrics-server (or another provider of the resource metrics API) in it", ErrMetricsUnsupported, cluster)
	case apierrors.IsServiceUnavailable(err):
		return fmt.Errorf("%w: cluster %s registers metrics.k8s.io but it does not answer (%s): check its metrics-server", ErrMetricsUnavailable, cluster, apiMessage(err))
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%w: the credential of cluster %s may not list pods.metrics.k8s.io in namespace %s", ErrMetricsForbidden, cluster, ns)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: cluster %s: metrics.k8s.io did not answer within %s", ErrMetricsUnavailable, cluster, metricsTimeout)
	}
	return fmt.Errorf("%w: cluster %s: read metrics.k8s.io: %s", ErrMetricsUnavailable, cluster, apiMessage(err))
}

func apiMessage(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) && se.Status().Message != "" {
		return se.Status().Message
	}
	return err.Error()
}

// scrapePrometheus reads the Prometheus endpoint of the first proxyPods
// pods that run, at once.
func scrapePrometheus(ctx context.Context, hc *http.Client, base *url.URL, pods []PodMetrics, objs map[string]*corev1.Pod, probes Probes) {
	var idx []int
	for i := range pods {
		if len(idx) == proxyPods {
			break
		}
		if p := objs[pods[i].Namespace+"/"+pods[i].Name]; p != nil && p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			idx = append(idx, i)
		}
	}
	eachPod(len(idx), func(k int) {
		pm := &pods[idx[k]]
		sc := &Scrape{Path: probes.MetricsPath, Port: probes.MetricsPort}
		pm.Prometheus = sc
		num, err := podPort(objs[pm.Namespace+"/"+pm.Name], probes.MetricsPort)
		if err != nil {
			sc.Message = err.Error()
			return
		}
		a := proxyGet(ctx, hc, base, pm.Namespace, pm.Name, num, probes.MetricsPath, scrapeBytes)
		sc.Code = a.Code
		switch {
		case a.Code == 0:
			sc.Message = a.Message
		case a.Code != http.StatusOK:
			sc.Message = fmt.Sprintf("answered %d %s", a.Code, http.StatusText(a.Code))
			if s := snippet(a.Body); s != "" {
				sc.Message += ": " + s
			}
		default:
			sc.Text, sc.Truncated = exposition(a.Body, a.Truncated), a.Truncated
		}
	})
}
