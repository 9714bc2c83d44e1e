// Package helmexec runs Helm v3 actions (install, upgrade, rollback,
// uninstall, reads, recovery of stuck releases) against the clusters of
// many organizations at once, through the Helm SDK.
//
// An Executor caches per cluster (its Access: cluster id, credential
// version, and every other field) one HTTP transport, rest.Config,
// discovery client, REST mapper and the Capabilities templates see, and per
// namespace one action.Configuration storing releases in Secrets (Helm's
// default driver, so the helm CLI sees the same releases). Each action runs
// on a copy of that Configuration with its own storage and kube client
// wrappers, which:
//   - refuse a release whose stored record would exceed Kubernetes' 1 MiB
//     Secret limit before anything of it is applied (ErrRecordTooLarge);
//   - wait for readiness themselves, so waits report progress, honour the
//     caller's context and time out with ErrTimeout;
//   - let an Atomic rollback run to its end even when the caller gives up.
//
// No repository index is ever loaded: callers pass charts already loaded.
package helmexec

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"helm.sh/helm/v3/pkg/chart"
)

// DefaultTimeout bounds each Kubernetes step (hooks, waits) of an action
// whose Request sets no Timeout.
const DefaultTimeout = 5 * time.Minute

// Options configure an Executor. The zero value works.
type Options struct {
	// Dial connects to API servers: the outbound policy's dialer
	// (outbound.Policy.DialContext). Nil means a net.Dialer with 30 s
	// timeouts. No proxy is ever used, whatever the environment says.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// QPS and Burst limit the requests to one cluster, across all its
	// namespaces and actions: 500 and 1000 when zero. Helm's defaults
	// throttle concurrent installs below the rate of one at a time.
	QPS   float32
	Burst int
	// MaxHistory is how many revisions of a release Helm keeps: 10 when
	// zero, unlimited when negative.
	MaxHistory int
	// MaxClusters bounds the clusters cached; the least recently used is
	// dropped beyond it. 256 when zero.
	MaxClusters int
	// Log receives Helm's messages at debug level; nil discards them.
	Log *slog.Logger
}

// Executor runs Helm actions. It is safe for concurrent use; the service
// guarantees one writer per release, and actions on different releases,
// namespaces and clusters run in parallel.
type Executor struct {
	o Options

	mu       sync.Mutex
	clusters map[string]*cluster

	// Counts, for tests.
	clustersBuilt atomic.Int64
	configsBuilt  atomic.Int64
	// wrap, when set (tests), wraps every cluster's transport.
	wrap func(http.RoundTripper) http.RoundTripper
	// clientValidation keeps Helm's client-side OpenAPI validation even
	// where the server validates (benchmarks, to measure what skipping it
	// saves).
	clientValidation bool
}

// New returns an Executor.
func New(o Options) *Executor {
	if o.Dial == nil {
		o.Dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	if o.QPS <= 0 {
		o.QPS = 500
	}
	if o.Burst <= 0 {
		o.Burst = 1000
	}
	switch {
	case o.MaxHistory == 0:
		o.MaxHistory = 10
	case o.MaxHistory < 0:
		o.MaxHistory = 0 // Helm's "unlimited"
	}
	if o.MaxClusters <= 0 {
		o.MaxClusters = 256
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Executor{o: o, clusters: map[string]*cluster{}}
}

// Request is one install, upgrade, rollback or uninstall.
type Request struct {
	Access Access
	// Namespace of the release: "default" when empty.
	Namespace string
	// Release is the release's name.
	Release string
	// Chart is the chart, already loaded (from the catalog or an upload).
	// The executor does not change it: each action works on a copy.
	Chart *chart.Chart
	// Values are the caller's values, merged over the chart's.
	Values map[string]any
	// Wait until workloads are ready and jobs complete.
	Wait bool
	// Timeout bounds each Kubernetes step (hooks, waits): DefaultTimeout
	// when zero.
	Timeout time.Duration
	// Atomic undoes a failed install (uninstalls it) or upgrade (rolls it
	// back); it implies Wait.
	Atomic bool
	// CreateNamespace creates the namespace when missing (install only).
	CreateNamespace bool
	// DryRun renders and checks against the cluster, changing nothing.
	DryRun bool
	// ReuseValues starts an upgrade from the current revision's values;
	// otherwise an upgrade starts from the chart's defaults (ResetValues,
	// the default). Setting both is invalid.
	ReuseValues, ResetValues bool
	// Description is recorded on the revision.
	Description string
	// Operation names the Slipway operation acting: every revision the
	// action records carries it as the label OperationLabel, so a retry of
	// an interrupted operation can tell whether its action already ran.
	Operation string
	// Progress, when set, is called with a phase (the Phase constants,
	// operations.proto's names) and a message for people, from the
	// goroutine running the action and never after the method returns.
	Progress func(phase, message string)
}

func (r *Request) namespace() string {
	if r.Namespace == "" {
		return "default"
	}
	return r.Namespace
}

func (r *Request) timeout() time.Duration {
	if r.Timeout <= 0 {
		return DefaultTimeout
	}
	return r.Timeout
}

func (r *Request) values() map[string]any {
	if r.Values == nil {
		return map[string]any{}
	}
	return r.Values
}

// cluster returns the cached clients for a, building them when a's cluster
// is new or its Access changed (a rotated credential).
func (e *Executor) cluster(a Access) (*cluster, error) {
	if a.ClusterID == "" {
		return nil, errInvalidAccess("no cluster id")
	}
	fp := a.fingerprint()
	now := time.Now().UnixNano()
	e.mu.Lock()
	if c := e.clusters[a.ClusterID]; c != nil && c.fingerprint == fp {
		c.lastUsed.Store(now)
		e.mu.Unlock()
		return c, nil
	}
	e.mu.Unlock()
	// Outside the lock: parsing keys takes a while. No network yet.
	nc, err := newCluster(a, &e.o, e.wrap, &e.configsBuilt)
	if err != nil {
		return nil, err
	}
	nc.lastUsed.Store(now)
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.clusters[a.ClusterID]; c != nil {
		if c.fingerprint == fp { // built meanwhile by another caller
			return c, nil
		}
		c.close()
	}
	e.clusters[a.ClusterID] = nc
	e.clustersBuilt.Add(1)
	for len(e.clusters) > e.o.MaxClusters {
		e.evictLocked()
	}
	return nc, nil
}

func (e *Executor) evictLocked() {
	var oldest *cluster
	for _, c := range e.clusters {
		if oldest == nil || c.lastUsed.Load() < oldest.lastUsed.Load() {
			oldest = c
		}
	}
	delete(e.clusters, oldest.id)
	oldest.close()
}

// Invalidate drops everything cached for a cluster (its credential was
// deleted, or the clusters service reset its change stream). Actions
// running on it finish on what they hold.
func (e *Executor) Invalidate(clusterID string) {
	e.mu.Lock()
	c := e.clusters[clusterID]
	delete(e.clusters, clusterID)
	e.mu.Unlock()
	if c != nil {
		c.close()
	}
}
