package status

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Pod is one pod of a release, as log readers need it.
type Pod struct {
	Namespace, Name string
	// Containers are the names of its containers, in spec order; Init
	// those of its init containers.
	Containers, Init []string
	Created          time.Time
	// Object is the cached pod, for readers that need more of it (health,
	// metrics): shared with the cache, never to be changed.
	Object *corev1.Pod
}

// Pods returns the pods of r: those of its workloads and those its
// manifest names, newest first (then by namespace and name). A kind whose
// informer has not listed yet fails ErrUnknown.
func (c *Cache) Pods(ctx context.Context, r Release) ([]Pod, error) {
	m := c.manifest(r)
	scopes, err := c.scopesOf(ctx, r, m)
	if err != nil {
		return nil, err
	}
	seen := map[objKey]bool{}
	var out []Pod
	add := func(p *corev1.Pod) {
		k := objKey{gk: gkPod, ns: p.Namespace, name: p.Name}
		if seen[k] {
			return
		}
		seen[k] = true
		pod := Pod{Namespace: p.Namespace, Name: p.Name, Created: p.CreationTimestamp.Time, Object: p}
		for _, ct := range p.Spec.Containers {
			pod.Containers = append(pod.Containers, ct.Name)
		}
		for _, ct := range p.Spec.InitContainers {
			pod.Init = append(pod.Init, ct.Name)
		}
		out = append(out, pod)
	}
	for _, k := range m.keys {
		if k.gk != gkPod && !workloadKinds[k.gk] {
			continue
		}
		s := scopes[k.ns]
		if err := s.synced(gkPod); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnknown, err)
		}
		if k.gk == gkPod {
			obj, err := s.get(gkPod, k.name)
			if apierrors.IsNotFound(err) {
				continue
			}
			if p, ok := obj.(*corev1.Pod); ok && err == nil {
				add(p)
			}
			continue
		}
		if k.gk == gkCronJob {
			if err := s.synced(gkJob); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrUnknown, err)
			}
		}
		for _, p := range s.podsOf(k.gk, k.name) {
			add(p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Created.Equal(b.Created) {
			return a.Created.After(b.Created)
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out, nil
}
