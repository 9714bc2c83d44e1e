package releases

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/validate"
	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
	"github.com/slipwayhq/slipway/services/releases/internal/podlogs"
	"github.com/slipwayhq/slipway/services/releases/internal/status"
)

// Sentinel errors of the logs route.
var (
	// ErrPodNotFound: the pod (or container) named is not one of the
	// release's.
	ErrPodNotFound = errors.New("pod not found in the release")
)

// Bounds of a logs request (see GetDeploymentLogsRequest).
const (
	defaultLogTail = 100
	maxLogTail     = 5000
	maxLogPods     = 20
)

// LogLimits bound every logs stream: podlogs.Limits (lines, bytes per
// second), and how long one follows; zero fields take the defaults.
type LogLimits struct {
	podlogs.Limits
	// Follow ends a following stream after this long (1 h); the client
	// reconnects with `since`.
	Follow time.Duration
}

func (l LogLimits) withDefaults() LogLimits {
	if l.Follow <= 0 {
		l.Follow = time.Hour
	}
	return l
}

// LogQuery selects the logs of GetDeploymentLogs.
type LogQuery struct {
	Pod       string        // only this pod of the release, when set
	Container string        // only this container, when set
	Tail      int           // lines per container from the end; 0: defaultLogTail
	Since     time.Duration // only lines written within this long, when set
	Follow    bool          // keep streaming new lines
	Previous  bool          // the previous, terminated container instead
}

// LogService streams the container logs of releases' pods. Like Service,
// it answers another org's release exactly as a missing one.
type LogService interface {
	// DeploymentLogs sends batches of lines until every container's tail
	// is sent or, with Follow, until ctx ends or a bound is reached.
	DeploymentLogs(ctx context.Context, cluster, namespace, name string, q LogQuery, send func([]podlogs.Line) error) error
}

type logService struct {
	st      *statusService
	clients func(helmexec.Access) (kubernetes.Interface, error)
	limits  LogLimits
	// shared lets the streams that follow one container share one read
	// of it, so that many followers cost the kubelet one stream.
	shared *podlogs.Shared
	log    *slog.Logger
}

// NewLogService reads releases through svc, finds their pods in cache and
// reads the pods' logs from the clusters' API servers (which ask the
// nodes' kubelets) with clients. Followers of one container share one
// read of its log (podlogs.Shared), within one organization and cluster
// credential.
func NewLogService(svc Service, access ClusterAccess, cache *status.Cache, clients func(helmexec.Access) (kubernetes.Interface, error), limits LogLimits, log *slog.Logger) LogService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	limits = limits.withDefaults()
	shared := podlogs.NewShared(podlogs.SharedOptions{BytesPerSecond: limits.BytesPerSecond, Log: log})
	return &logService{st: &statusService{svc: svc, access: access, cache: cache, now: time.Now}, clients: clients, limits: limits, shared: shared, log: log}
}

func (q LogQuery) check() error {
	switch {
	case q.Tail < 0:
		return validate.Field("tail", "must not be negative")
	case q.Tail > maxLogTail:
		return validate.Field("tail", "must be at most %d, got %d", maxLogTail, q.Tail)
	case q.Since < 0:
		return validate.Field("since", "must not be negative")
	}
	if q.Pod != "" {
		if errs := validation.IsDNS1123Subdomain(q.Pod); len(errs) > 0 {
			return validate.Field("pod", "must be a pod name, got %q", q.Pod)
		}
	}
	if q.Container != "" {
		if err := validate.DNSLabel("container", q.Container); err != nil {
			return err
		}
	}
	return nil
}

// targets picks the containers q names among the release's pods: every
// container of the newest maxLogPods pods, unless q names a pod or a
// container.
func (q LogQuery) targets(pods []status.Pod, release string) ([]podlogs.Target, error) {
	var out []podlogs.Target
	n := 0
	for _, p := range pods {
		if q.Pod != "" && p.Name != q.Pod {
			continue
		}
		if n == maxLogPods {
			break
		}
		n++
		switch {
		case q.Container == "":
			for _, c := range p.Containers {
				out = append(out, podlogs.Target{Namespace: p.Namespace, Pod: p.Name, Container: c})
			}
		case slices.Contains(p.Containers, q.Container) || q.Pod != "" && slices.Contains(p.Init, q.Container):
			out = append(out, podlogs.Target{Namespace: p.Namespace, Pod: p.Name, Container: q.Container})
		}
	}
	switch {
	case q.Pod != "" && n == 0:
		return nil, fmt.Errorf("%w: %s is not a pod of %s", ErrPodNotFound, q.Pod, release)
	case q.Container != "" && len(out) == 0 && n > 0:
		return nil, fmt.Errorf("%w: no container %s in the pods of %s", ErrPodNotFound, q.Container, release)
	}
	return out, nil
}

func (s *logService) DeploymentLogs(ctx context.Context, cluster, namespace, name string, q LogQuery, send func([]podlogs.Line) error) error {
	if err := q.check(); err != nil {
		return err
	}
	if q.Tail == 0 {
		q.Tail = defaultLogTail
	}
	r, _, sr, live, err := s.st.release(ctx, cluster, namespace, name)
	if err != nil {
		return err
	}
	if !live {
		if q.Pod != "" {
			return fmt.Errorf("%w: %s is not a pod of %s/%s", ErrPodNotFound, q.Pod, r.Namespace, r.Name)
		}
		return nil // uninstalled: no pods, no lines
	}
	pods, err := s.st.cache.Pods(ctx, sr)
	if err != nil {
		return cacheError(cluster, r, err)
	}
	targets, err := q.targets(pods, r.Namespace+"/"+r.Name)
	if err != nil || len(targets) == 0 {
		return err
	}
	cs, err := s.clients(sr.Access)
	if err != nil {
		return cacheError(cluster, r, err)
	}
	if q.Follow {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.limits.Follow)
		defer cancel()
	}
	o := podlogs.Options{Tail: q.Tail, Since: q.Since, Follow: q.Follow, Previous: q.Previous}
	// Streams are shared only by callers of the same organization reading
	// with the same credential; each caller's right was checked above.
	caller, _ := identity.FromContext(ctx)
	scope := strings.Join([]string{caller.Org, sr.Access.ClusterID, sr.Access.Server, sr.Access.CredentialID, strconv.FormatInt(sr.Access.CredentialVersion, 10)}, "\x00")
	err = podlogs.Stream(ctx, s.shared.Source(scope, podlogs.Kube(cs)), targets, o, s.limits.Limits, s.log, send)
	if q.Follow && errors.Is(err, context.DeadlineExceeded) {
		return nil // s.limits.Follow: the client reconnects
	}
	return err
}
