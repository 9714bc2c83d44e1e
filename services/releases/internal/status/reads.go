package status

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
)

// Release is what the cache needs to know of a release.
type Release struct {
	Access    helmexec.Access
	Namespace string
	// Revision identifies Manifest for the parsed-manifest cache: the same
	// Revision must always come with the same Manifest ("org/cluster/ns/
	// name/revision").
	Revision string
	Manifest string
	// Changed is when the revision last changed; see Context.Changed.
	Changed time.Time
}

// MaxEvents bounds Events' answer.
const MaxEvents = 1000

func (c *Cache) manifest(r Release) *Manifest {
	return c.manifests.get(r.Revision, r.Manifest, r.Namespace)
}

// scopesOf returns the scope of each namespace holding r's watched objects.
func (c *Cache) scopesOf(ctx context.Context, r Release, m *Manifest) (map[string]*scope, error) {
	out := make(map[string]*scope, len(m.namespaces))
	for _, ns := range m.namespaces {
		s, err := c.scope(ctx, r.Access, ns)
		if err != nil {
			return nil, err
		}
		out[ns] = s
	}
	return out, nil
}

// get returns the object of a watched kind from the scope's cache.
func (s *scope) get(gk schema.GroupKind, name string) (any, error) {
	ns := s.key.ns
	switch gk {
	case gkDeployment:
		return s.deployments.Deployments(ns).Get(name)
	case gkStatefulSet:
		return s.statefuls.StatefulSets(ns).Get(name)
	case gkDaemonSet:
		return s.daemons.DaemonSets(ns).Get(name)
	case gkJob:
		return s.jobs.Jobs(ns).Get(name)
	case gkCronJob:
		return s.cronjobs.CronJobs(ns).Get(name)
	case gkPod:
		return s.pods.Pods(ns).Get(name)
	case gkService:
		return s.services.Services(ns).Get(name)
	}
	return nil, fmt.Errorf("%s is not watched", gk)
}

// podsOf returns the pods of a workload, by name; a CronJob's are those of
// its Jobs.
func (s *scope) podsOf(gk schema.GroupKind, name string) []*corev1.Pod {
	owners := []string{ownerKey(gk, name)}
	if gk == gkCronJob {
		owners = owners[:0]
		for _, j := range s.jobsOf(name) {
			owners = append(owners, ownerKey(gkJob, j.Name))
		}
	}
	var out []*corev1.Pod
	for _, o := range owners {
		objs, _ := s.infs[gkPod].GetIndexer().ByIndex(byOwner, o)
		for _, obj := range objs {
			if p, ok := obj.(*corev1.Pod); ok {
				out = append(out, p)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// jobsOf returns a CronJob's Jobs, newest first.
func (s *scope) jobsOf(cronjob string) []*batchv1.Job {
	objs, _ := s.infs[gkJob].GetIndexer().ByIndex(byOwner, ownerKey(gkCronJob, cronjob))
	var out []*batchv1.Job
	for _, obj := range objs {
		if j, ok := obj.(*batchv1.Job); ok {
			out = append(out, j)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[j].CreationTimestamp.Before(&out[i].CreationTimestamp) })
	return out
}

func (c *Cache) context(r Release) Context {
	return Context{Now: c.o.Now(), Changed: r.Changed, Grace: c.o.Grace}
}

// workload assesses one workload object of the manifest.
func (s *scope) workload(k objKey, o Object, vc Context) Workload {
	if err := s.synced(k.gk); err != nil {
		return Workload{Object: o, Message: err.Error()}
	}
	obj, err := s.get(k.gk, k.name)
	if apierrors.IsNotFound(err) {
		return Workload{Object: o, Verdict: Failed, Message: "not found in the cluster"}
	}
	if err != nil {
		return Workload{Object: o, Message: err.Error()}
	}
	if k.gk == gkCronJob {
		if jobs := s.jobsOf(k.name); len(jobs) > 0 {
			vc.LatestJob = jobs[0]
		}
	}
	w := Assess(obj, vc)
	w.Object = o
	if w.Verdict != Ready && w.Verdict != Unassessed && k.gk != gkCronJob {
		if name, msg := s.podHint(k); name != "" {
			w.Message += " (pod " + name + ": " + msg + ")"
		}
	}
	return w
}

// podHint names the most telling unready pod of a workload: a failed one
// before one still starting.
func (s *scope) podHint(k objKey) (string, string) {
	var name, msg string
	for _, p := range s.podsOf(k.gk, k.name) {
		v, m := AssessPod(p)
		if v == Failed {
			return p.Name, m
		}
		if v != Ready && name == "" {
			name, msg = p.Name, m
		}
	}
	return name, msg
}

// Severity orders verdicts: Failed, Degraded, Progressing, then
// Unassessed (below any trouble, above ready), then Ready.
func (v Verdict) Severity() int {
	switch v {
	case Failed:
		return 5
	case Degraded:
		return 4
	case Progressing:
		return 3
	case Unassessed:
		return 2
	}
	return 1
}

// Status returns the state of r's workloads from the cache.
func (c *Cache) Status(ctx context.Context, r Release) (Snapshot, error) {
	m := c.manifest(r)
	scopes, err := c.scopesOf(ctx, r, m)
	if err != nil {
		return Snapshot{}, err
	}
	vc := c.context(r)
	snap := Snapshot{Verdict: Ready, Observed: vc.Now}
	for i, k := range m.keys {
		if workloadKinds[k.gk] {
			snap.Workloads = append(snap.Workloads, scopes[k.ns].workload(k, m.Objects[i], vc))
		}
	}
	sort.SliceStable(snap.Workloads, func(i, j int) bool {
		return snap.Workloads[i].Verdict.Severity() > snap.Workloads[j].Verdict.Severity()
	})
	snap.WorkloadCount = len(snap.Workloads)
	unready := 0
	for _, w := range snap.Workloads {
		if w.Verdict == Ready {
			continue
		}
		if unready == 0 {
			snap.Message = strings.ToLower(w.Object.Kind) + "/" + w.Object.Name + ": " + w.Message
			if w.Verdict != Unassessed {
				snap.Verdict = w.Verdict
			}
		}
		unready++
		if w.Verdict == Unassessed && snap.Verdict == Ready {
			snap.Verdict = Unassessed
		}
	}
	if unready > 1 {
		snap.Message += fmt.Sprintf(" (and %d more not ready)", unready-1)
	}
	if len(snap.Workloads) > MaxWorkloads {
		snap.Workloads = snap.Workloads[:MaxWorkloads]
	}
	return snap, nil
}

// Resources returns every object of r's manifest in order with its live
// state, each workload followed by its pods when pods is set. Objects of
// kinds the cache does not watch are listed unassessed.
func (c *Cache) Resources(ctx context.Context, r Release, pods bool) ([]Resource, error) {
	m := c.manifest(r)
	scopes, err := c.scopesOf(ctx, r, m)
	if err != nil {
		return nil, err
	}
	vc := c.context(r)
	out := make([]Resource, 0, len(m.Objects))
	for i, k := range m.keys {
		o := m.Objects[i]
		if !watched[k.gk] {
			out = append(out, Resource{Object: o})
			continue
		}
		s := scopes[k.ns]
		res := Resource{Object: o}
		if err := s.synced(k.gk); err != nil {
			res.Message = err.Error()
			out = append(out, res)
			continue
		}
		obj, err := s.get(k.gk, k.name)
		switch {
		case apierrors.IsNotFound(err):
			res.Missing, res.Verdict, res.Message = true, Failed, "not found in the cluster"
		case err != nil:
			res.Message = err.Error()
		default:
			if a, ok := obj.(metav1.Object); ok {
				res.Created = a.GetCreationTimestamp().Time
			}
			switch t := obj.(type) {
			case *corev1.Pod:
				res.Verdict, res.Message = AssessPod(t)
			case *corev1.Service:
				res.Verdict, res.Message = AssessService(t)
			default:
				w := s.workload(k, o, vc)
				res.Verdict, res.Message = w.Verdict, w.Message
			}
		}
		out = append(out, res)
		if pods && workloadKinds[k.gk] && !res.Missing {
			owner := o
			for _, p := range s.podsOf(k.gk, k.name) {
				v, msg := AssessPod(p)
				out = append(out, Resource{Object: Object{APIVersion: "v1", Kind: "Pod", Namespace: p.Namespace, Name: p.Name},
					Owner: &owner, Verdict: v, Message: msg, Created: p.CreationTimestamp.Time})
			}
		}
	}
	return out, nil
}

// EventFilter narrows Events.
type EventFilter struct {
	// Type is "Normal" or "Warning"; any when empty.
	Type string
	// Since keeps the events that last happened after it, when set.
	Since time.Time
}

// Events returns the Kubernetes events about r's objects, their pods,
// ReplicaSets and Jobs, newest first, at most MaxEvents.
func (c *Cache) Events(ctx context.Context, r Release, f EventFilter) ([]Event, error) {
	m := c.manifest(r)
	scopes, err := c.scopesOf(ctx, r, m)
	if err != nil {
		return nil, err
	}
	var out []Event
	seen := map[string]bool{}
	for ns, s := range scopes {
		if err := s.synced(gkEvent); err != nil {
			return nil, fmt.Errorf("%w: events of namespace %s: %v", ErrUnknown, ns, err)
		}
		involved := map[string]bool{}
		for _, k := range m.keys {
			if k.ns != ns {
				continue
			}
			involved[k.gk.Kind+"/"+k.name] = true
			if !workloadKinds[k.gk] {
				continue
			}
			if k.gk == gkCronJob {
				for _, j := range s.jobsOf(k.name) {
					involved["Job/"+j.Name] = true
				}
			}
			for _, p := range s.podsOf(k.gk, k.name) {
				involved["Pod/"+p.Name] = true
				for _, o := range p.OwnerReferences {
					if o.Kind == "ReplicaSet" {
						involved["ReplicaSet/"+o.Name] = true
					}
				}
			}
		}
		idx := s.events.GetIndexer()
		for key := range involved {
			objs, _ := idx.ByIndex(byInvolved, key)
			for _, obj := range objs {
				e, ok := obj.(*corev1.Event)
				if !ok || seen[string(e.UID)] || f.Type != "" && e.Type != f.Type {
					continue
				}
				ev := eventOf(e)
				if !f.Since.IsZero() && ev.Last.Before(f.Since) {
					continue
				}
				seen[string(e.UID)] = true
				out = append(out, ev)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Last.Equal(out[j].Last) {
			return out[i].Last.After(out[j].Last)
		}
		return out[i].UID < out[j].UID
	})
	if len(out) > MaxEvents {
		out = out[:MaxEvents]
	}
	return out, nil
}

func eventOf(e *corev1.Event) Event {
	ev := Event{
		UID: string(e.UID), Type: e.Type, Reason: e.Reason, Message: e.Message, Count: e.Count,
		First: e.FirstTimestamp.Time, Last: e.LastTimestamp.Time, Source: e.Source.Component,
		Involved: Object{APIVersion: e.InvolvedObject.APIVersion, Kind: e.InvolvedObject.Kind, Namespace: e.InvolvedObject.Namespace, Name: e.InvolvedObject.Name},
	}
	if e.Series != nil {
		ev.Count, ev.Last = e.Series.Count, e.Series.LastObservedTime.Time
	}
	if ev.First.IsZero() {
		ev.First = e.EventTime.Time
	}
	if ev.Last.IsZero() {
		ev.Last = e.EventTime.Time
	}
	if ev.Last.IsZero() {
		ev.Last = e.CreationTimestamp.Time
	}
	if ev.First.IsZero() {
		ev.First = ev.Last
	}
	if ev.Count == 0 {
		ev.Count = 1
	}
	if ev.Source == "" {
		ev.Source = e.ReportingController
	}
	return ev
}
