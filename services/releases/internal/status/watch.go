package status

import (
	"context"
	"sync"
	"sync/atomic"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

// Watch is a subscription to the changes of a release's objects: C
// receives (coalesced) whenever an informer sees one of its workloads,
// their pods or jobs, or its Services change. Once Stale, the scopes it
// listens to have stopped (a credential rotated, the cache closed):
// Close it and watch again.
type Watch struct {
	c      chan struct{}
	stale  atomic.Bool
	once   sync.Once
	scopes []*scope
	keys   []objKey
}

// C receives a value after changes.
func (w *Watch) C() <-chan struct{} { return w.c }

// Stale reports whether the watch no longer hears of changes.
func (w *Watch) Stale() bool { return w.stale.Load() }

func (w *Watch) notify() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

func (w *Watch) markStale() {
	w.stale.Store(true)
	w.notify()
}

// Close ends the subscription.
func (w *Watch) Close() {
	w.once.Do(func() {
		for _, s := range w.scopes {
			s.unsubscribe(w)
		}
	})
}

// Watch subscribes to changes of r's objects. The caller reads the state
// again (Status) after each value on C; none is sent for the state at the
// time of subscribing.
func (c *Cache) Watch(ctx context.Context, r Release) (*Watch, error) {
	m := c.manifest(r)
	w := &Watch{c: make(chan struct{}, 1)}
	for _, ns := range m.namespaces {
		s, err := c.scope(ctx, r.Access, ns)
		if err != nil {
			w.Close()
			return nil, err
		}
		var keys []objKey
		for _, k := range m.keys {
			if k.ns == ns && watched[k.gk] {
				keys = append(keys, k)
			}
		}
		if !s.subscribe(w, keys) {
			w.markStale()
		}
		w.scopes = append(w.scopes, s)
	}
	return w, nil
}

func (s *scope) subscribe(w *Watch, keys []objKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone != "" {
		return false
	}
	s.watch++
	for _, k := range keys {
		if s.subs[k] == nil {
			s.subs[k] = map[*Watch]struct{}{}
		}
		s.subs[k][w] = struct{}{}
	}
	return true
}

func (s *scope) unsubscribe(w *Watch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	removed := false
	for k, m := range s.subs {
		if _, ok := m[w]; ok {
			removed = true
			delete(m, w)
			if len(m) == 0 {
				delete(s.subs, k)
			}
		}
	}
	if removed {
		s.watch--
	}
}

// handler tells the watches of an object of kind gk, and of the workload
// it belongs to, that it changed.
func (s *scope) handler(gk schema.GroupKind) cache.ResourceEventHandler {
	touched := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		a, err := meta.Accessor(obj)
		if err != nil {
			return
		}
		keys := [2]objKey{{gk: gk, ns: s.key.ns, name: a.GetName()}}
		switch o := obj.(type) {
		case *corev1.Pod:
			if ogk, name, ok := podOwner(o); ok {
				keys[1] = objKey{gk: ogk, ns: s.key.ns, name: name}
			}
		case *batchv1.Job:
			if v, _ := jobOwnerIndex(o); len(v) == 1 {
				keys[1] = objKey{gk: gkCronJob, ns: s.key.ns, name: v[0][len("CronJob/"):]}
			}
		}
		s.mu.Lock()
		var ws []*Watch
		for _, k := range keys {
			for w := range s.subs[k] {
				ws = append(ws, w)
			}
		}
		s.mu.Unlock()
		for _, w := range ws {
			w.notify()
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { touched(obj) },
		UpdateFunc: func(_, obj any) { touched(obj) },
		DeleteFunc: touched,
	}
}
