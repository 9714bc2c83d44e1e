package status

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
)

// The kinds the cache watches (besides Events).
var (
	gkDeployment  = schema.GroupKind{Group: "apps", Kind: "Deployment"}
	gkStatefulSet = schema.GroupKind{Group: "apps", Kind: "StatefulSet"}
	gkDaemonSet   = schema.GroupKind{Group: "apps", Kind: "DaemonSet"}
	gkReplicaSet  = schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}
	gkJob         = schema.GroupKind{Group: "batch", Kind: "Job"}
	gkCronJob     = schema.GroupKind{Group: "batch", Kind: "CronJob"}
	gkPod         = schema.GroupKind{Kind: "Pod"}
	gkService     = schema.GroupKind{Kind: "Service"}

	workloadKinds = map[schema.GroupKind]bool{gkDeployment: true, gkStatefulSet: true, gkDaemonSet: true, gkJob: true, gkCronJob: true}
	watched       = map[schema.GroupKind]bool{gkDeployment: true, gkStatefulSet: true, gkDaemonSet: true, gkJob: true, gkCronJob: true,
		gkPod: true, gkService: true}
)

// Defaults of Options.
const (
	DefaultMaxScopes   = 256
	DefaultIdleAfter   = 10 * time.Minute
	DefaultSyncTimeout = 10 * time.Second
)

// Options configure a Cache.
type Options struct {
	// Clients returns the clientset of a cluster (helmexec's cached one,
	// on the outbound policy's dialer). Required.
	Clients func(helmexec.Access) (kubernetes.Interface, error)
	// MaxScopes bounds the cluster namespaces watched at once
	// (DefaultMaxScopes). Past it the least recently used unwatched one
	// stops; when every one is watched, reads of a new one fail ErrBusy.
	MaxScopes int
	// IdleAfter stops a scope unused and unwatched this long
	// (DefaultIdleAfter).
	IdleAfter time.Duration
	// SyncTimeout bounds how long a read waits for a new scope's first
	// list (DefaultSyncTimeout); kinds not listed by then are reported
	// unknown.
	SyncTimeout time.Duration
	// Grace is the verdict's grace period (DefaultGrace).
	Grace time.Duration
	// Log gets the scopes' starts, stops and watch errors; nil discards.
	Log *slog.Logger
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// Cache is the per-cluster informer cache. It is safe for concurrent use.
type Cache struct {
	o         Options
	manifests manifests

	mu     sync.Mutex
	scopes map[scopeKey]*scope
	closed bool

	// started counts scopes started, for tests.
	started atomic.Int64
}

// New returns a Cache. Run its janitor with Run; Close stops everything.
func New(o Options) *Cache {
	if o.MaxScopes <= 0 {
		o.MaxScopes = DefaultMaxScopes
	}
	if o.IdleAfter <= 0 {
		o.IdleAfter = DefaultIdleAfter
	}
	if o.SyncTimeout <= 0 {
		o.SyncTimeout = DefaultSyncTimeout
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Cache{o: o, scopes: map[scopeKey]*scope{}, manifests: manifests{max: 1024, byKey: map[string]*Manifest{}}}
}

// Run stops idle scopes until ctx ends, then stops every scope. It fits an
// oklog/run group.
func (c *Cache) Run(ctx context.Context) error {
	t := time.NewTicker(max(c.o.IdleAfter/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.Close()
			return nil
		case <-t.C:
			c.sweep()
		}
	}
}

// Close stops every scope; later reads fail.
func (c *Cache) Close() {
	c.mu.Lock()
	c.closed = true
	scopes := c.scopes
	c.scopes = map[scopeKey]*scope{}
	c.mu.Unlock()
	for _, s := range scopes {
		s.close("cache closed")
	}
}

// Invalidate stops the scopes of a cluster (its credential was deleted).
func (c *Cache) Invalidate(clusterID string) {
	c.mu.Lock()
	var gone []*scope
	for k, s := range c.scopes {
		if k.cluster == clusterID {
			gone = append(gone, s)
			delete(c.scopes, k)
		}
	}
	c.mu.Unlock()
	for _, s := range gone {
		s.close("cluster invalidated")
	}
}

func (c *Cache) sweep() {
	cutoff := c.o.Now().Add(-c.o.IdleAfter).UnixNano()
	c.mu.Lock()
	var gone []*scope
	for k, s := range c.scopes {
		if s.idle() && s.lastUsed.Load() < cutoff {
			gone = append(gone, s)
			delete(c.scopes, k)
		}
	}
	c.mu.Unlock()
	for _, s := range gone {
		s.close("idle")
	}
}

// Scopes returns how many cluster namespaces are watched.
func (c *Cache) Scopes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.scopes)
}

type scopeKey struct{ cluster, ns string }

// scope is the informers of one namespace of one cluster, under one
// credential.
type scope struct {
	key      scopeKey
	fp       [sha256.Size]byte
	log      *slog.Logger
	stop     chan struct{}
	stopOnce sync.Once
	started  time.Time
	lastUsed atomic.Int64

	infs        map[schema.GroupKind]cache.SharedIndexInformer
	deployments appslisters.DeploymentLister
	statefuls   appslisters.StatefulSetLister
	daemons     appslisters.DaemonSetLister
	jobs        batchlisters.JobLister
	cronjobs    batchlisters.CronJobLister
	pods        corelisters.PodLister
	services    corelisters.ServiceLister
	events      cache.SharedIndexInformer

	mu    sync.Mutex
	errs  map[schema.GroupKind]error
	subs  map[objKey]map[*Watch]struct{}
	watch int // watches subscribed
	gone  string
}

// gkEvent keys the Events informer's errors.
var gkEvent = schema.GroupKind{Kind: "Event"}

// Index names of the informers.
const (
	byOwner    = "owner"    // pods and jobs: the workload owning them
	byInvolved = "involved" // events: the object they are about
)

// stripManaged drops what the cache never reads: managed fields and the
// last-applied annotation are most of an object's size.
func stripManaged(obj any) (any, error) {
	if a, err := meta.Accessor(obj); err == nil {
		a.SetManagedFields(nil)
		if ann := a.GetAnnotations(); ann[corev1.LastAppliedConfigAnnotation] != "" {
			delete(ann, corev1.LastAppliedConfigAnnotation)
		}
	}
	return obj, nil
}

func (c *Cache) newScope(k scopeKey, a helmexec.Access) (*scope, error) {
	cs, err := c.o.Clients(a)
	if err != nil {
		return nil, err
	}
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(k.ns), informers.WithTransform(stripManaged))
	s := &scope{
		key: k, fp: a.Fingerprint(), log: c.o.Log.With("cluster", k.cluster, "namespace", k.ns),
		stop: make(chan struct{}), started: c.o.Now(),
		infs: map[schema.GroupKind]cache.SharedIndexInformer{},
		errs: map[schema.GroupKind]error{}, subs: map[objKey]map[*Watch]struct{}{},
	}
	d, st, ds := f.Apps().V1().Deployments(), f.Apps().V1().StatefulSets(), f.Apps().V1().DaemonSets()
	j, cj := f.Batch().V1().Jobs(), f.Batch().V1().CronJobs()
	p, svc, ev := f.Core().V1().Pods(), f.Core().V1().Services(), f.Core().V1().Events()
	s.deployments, s.statefuls, s.daemons, s.jobs, s.cronjobs, s.pods, s.services = d.Lister(), st.Lister(), ds.Lister(), j.Lister(), cj.Lister(), p.Lister(), svc.Lister()
	s.infs[gkDeployment], s.infs[gkStatefulSet], s.infs[gkDaemonSet] = d.Informer(), st.Informer(), ds.Informer()
	s.infs[gkJob], s.infs[gkCronJob], s.infs[gkPod], s.infs[gkService] = j.Informer(), cj.Informer(), p.Informer(), svc.Informer()
	s.events = ev.Informer()
	if err := errors.Join(
		s.infs[gkPod].AddIndexers(cache.Indexers{byOwner: podOwnerIndex}),
		s.infs[gkJob].AddIndexers(cache.Indexers{byOwner: jobOwnerIndex}),
		s.events.AddIndexers(cache.Indexers{byInvolved: involvedIndex}),
	); err != nil {
		return nil, fmt.Errorf("index informers: %w", err)
	}
	for gk, inf := range s.infs {
		s.watchErrors(gk, inf)
		if _, err := inf.AddEventHandler(s.handler(gk)); err != nil {
			return nil, fmt.Errorf("watch %s: %w", gk.Kind, err)
		}
	}
	s.watchErrors(gkEvent, s.events)
	f.Start(s.stop)
	c.started.Add(1)
	s.log.Debug("status scope started")
	return s, nil
}

func (s *scope) watchErrors(gk schema.GroupKind, inf cache.SharedIndexInformer) {
	// In place of client-go's handler, which logs through klog: the
	// reflector retries by itself, and reads report the error while the
	// kind is not listed.
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		select {
		case <-s.stop:
			return
		default:
		}
		s.mu.Lock()
		s.errs[gk] = err
		s.mu.Unlock()
		s.log.Debug("status watch failed", "kind", gk.Kind, "error", err)
	})
}

// close stops the informers and tells every watch to subscribe again.
func (s *scope) close(why string) {
	s.stopOnce.Do(func() {
		close(s.stop)
		s.mu.Lock()
		s.gone = why
		var ws []*Watch
		for _, m := range s.subs {
			for w := range m {
				ws = append(ws, w)
			}
		}
		s.mu.Unlock()
		for _, w := range ws {
			w.markStale()
		}
		s.log.Debug("status scope stopped", "reason", why)
	})
}

func (s *scope) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watch == 0
}

// synced reports whether gk's informer has listed, and else why not.
func (s *scope) synced(gk schema.GroupKind) error {
	inf := s.infs[gk]
	if gk == gkEvent {
		inf = s.events
	}
	if inf.HasSynced() {
		return nil
	}
	s.mu.Lock()
	err := s.errs[gk]
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cannot watch %s: %w", gk.Kind, err)
	}
	return fmt.Errorf("%s not listed yet", gk.Kind)
}

// waitSynced waits, within the scope's first SyncTimeout, for its
// informers' first list.
func (s *scope) waitSynced(ctx context.Context, timeout time.Duration, now time.Time) {
	left := timeout - now.Sub(s.started)
	if left <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, left)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		all := s.events.HasSynced()
		for _, inf := range s.infs {
			all = all && inf.HasSynced()
		}
		if all {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// scope returns the scope of namespace ns of a's cluster, starting it on
// first use, or anew when a's credential differs from the one it runs
// with (then every scope of the cluster under the old one stops).
func (c *Cache) scope(ctx context.Context, a helmexec.Access, ns string) (*scope, error) {
	k := scopeKey{a.ClusterID, ns}
	fp := a.Fingerprint()
	now := c.o.Now()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errors.New("status cache closed")
	}
	s := c.scopes[k]
	var stale []*scope
	if s != nil && s.fp != fp {
		for k2, o := range c.scopes {
			if k2.cluster == a.ClusterID && o.fp != fp {
				stale = append(stale, o)
				delete(c.scopes, k2)
			}
		}
		s = nil
	}
	if s == nil {
		if len(c.scopes) >= c.o.MaxScopes && !c.evictLocked() {
			c.mu.Unlock()
			return nil, ErrBusy
		}
		var err error
		if s, err = c.newScope(k, a); err != nil {
			c.mu.Unlock()
			return nil, err
		}
		c.scopes[k] = s
	}
	s.lastUsed.Store(now.UnixNano())
	c.mu.Unlock()
	for _, o := range stale {
		o.close("credential changed")
	}
	s.waitSynced(ctx, c.o.SyncTimeout, now)
	return s, nil
}

// evictLocked stops the least recently used unwatched scope; false when
// every scope is watched.
func (c *Cache) evictLocked() bool {
	var oldest *scope
	for _, s := range c.scopes {
		if s.idle() && (oldest == nil || s.lastUsed.Load() < oldest.lastUsed.Load()) {
			oldest = s
		}
	}
	if oldest == nil {
		return false
	}
	delete(c.scopes, oldest.key)
	go oldest.close("evicted")
	return true
}

// ownerKey is the workload a pod or job belongs to, as an index value.
func ownerKey(gk schema.GroupKind, name string) string { return gk.Kind + "/" + name }

// podOwnerIndex indexes a pod by its workload: its controller, or, for a
// ReplicaSet, the Deployment that made it (the ReplicaSet's name is the
// Deployment's plus "-" and the pod template hash the pod carries).
func podOwnerIndex(obj any) ([]string, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	gk, name, ok := podOwner(p)
	if !ok {
		return nil, nil
	}
	return []string{ownerKey(gk, name)}, nil
}

func podOwner(p *corev1.Pod) (schema.GroupKind, string, bool) {
	for _, o := range p.OwnerReferences {
		if o.Controller == nil || !*o.Controller {
			continue
		}
		gv, _ := schema.ParseGroupVersion(o.APIVersion)
		gk := schema.GroupKind{Group: gv.Group, Kind: o.Kind}
		if gk == gkReplicaSet {
			hash := p.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
			if d, ok := cutSuffix(o.Name, "-"+hash); ok && hash != "" {
				return gkDeployment, d, true
			}
		}
		return gk, o.Name, true
	}
	return schema.GroupKind{}, "", false
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) > len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return "", false
}

func jobOwnerIndex(obj any) ([]string, error) {
	j, ok := obj.(*batchv1.Job)
	if !ok {
		return nil, nil
	}
	for _, o := range j.OwnerReferences {
		if o.Controller != nil && *o.Controller && o.Kind == "CronJob" {
			return []string{ownerKey(gkCronJob, o.Name)}, nil
		}
	}
	return nil, nil
}

func involvedIndex(obj any) ([]string, error) {
	e, ok := obj.(*corev1.Event)
	if !ok {
		return nil, nil
	}
	return []string{e.InvolvedObject.Kind + "/" + e.InvolvedObject.Name}, nil
}
