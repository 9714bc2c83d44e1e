package releases

import (
	"context"
	"fmt"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/paging"
	"github.com/slipwayhq/slipway/services/releases/internal/drift"
	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
	slipstatus "github.com/slipwayhq/slipway/services/releases/internal/status"
)

// DriftState is how a live object differs from its manifest.
type DriftState int

// The DriftState values, as drift.proto's DriftState.
const (
	DriftModified DriftState = 1
	DriftMissing  DriftState = 2
)

// DriftedObject is one object of a release that differs from its manifest.
type DriftedObject struct {
	APIVersion, Kind, Namespace, Name string
	State                             DriftState
	Diff                              string // manifest against live; Secret values redacted
}

// DriftReport is a page of a release's drifted objects.
type DriftReport struct {
	Revision      int
	Drifted       int // in all
	Objects       []DriftedObject
	Checked       time.Time
	NextPageToken string
}

// DriftService compares releases' live objects with their manifests.
type DriftService interface {
	Drift(ctx context.Context, cluster, namespace, name string, p PageRequest) (DriftReport, error)
}

// Clients gives a cluster's clients (helmexec.Executor's).
type Clients interface {
	Dynamic(a helmexec.Access) (dynamic.Interface, meta.RESTMapper, error)
	Clientset(a helmexec.Access) (kubernetes.Interface, error)
}

type driftService struct {
	svc     Service
	access  ClusterAccess
	clients Clients
	now     func() time.Time
}

// NewDriftService reads releases through svc (which checks the caller and
// scopes the release to its org) and their live objects through clients.
func NewDriftService(svc Service, access ClusterAccess, clients Clients) DriftService {
	return &driftService{svc: svc, access: access, clients: clients, now: time.Now}
}

// Drift compares every object of the release's latest revision's manifest
// with the cluster, on demand: only the fields the manifest sets, and not
// spec.replicas of a workload a HorizontalPodAutoscaler of its namespace
// scales.
func (s *driftService) Drift(ctx context.Context, cluster, namespace, name string, p PageRequest) (DriftReport, error) {
	r, _, err := s.svc.GetRelease(ctx, cluster, namespace, name, 0)
	if err != nil {
		return DriftReport{}, err
	}
	if r.Status == StatusUninstalled {
		return DriftReport{}, fmt.Errorf("%w: %s/%s is uninstalled: nothing runs to compare", ErrReleaseNotFound, r.Namespace, r.Name)
	}
	caller, _ := identity.FromContext(ctx) // GetRelease checked it
	fp := paging.Fingerprint(caller.Org, "drift", r.Cluster, r.Namespace, r.Name, strconv.Itoa(r.Revision))
	size, from, err := offsetPage(p, fp)
	if err != nil {
		return DriftReport{}, err
	}
	ca, err := s.access.ClusterAccess(ctx, caller.Org, r.Cluster)
	if err != nil {
		return DriftReport{}, clusterError(cluster, err)
	}
	a := helmexec.AccessFromProto(ca)
	dyn, mapper, err := s.clients.Dynamic(a)
	if err != nil {
		return DriftReport{}, err
	}
	cs, err := s.clients.Clientset(a)
	if err != nil {
		return DriftReport{}, err
	}
	scaled, err := autoscaled(ctx, cs, r.Namespace)
	if err != nil {
		return DriftReport{}, err
	}
	rep := DriftReport{Revision: r.Revision, Checked: s.now().UTC()}
	for _, text := range manifestTexts(r.Manifest) {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(text), &obj); err != nil || len(obj) == 0 {
			continue
		}
		d, err := s.compare(ctx, dyn, mapper, r.Namespace, obj, scaled)
		if err != nil {
			return DriftReport{}, err
		}
		if d == nil {
			continue
		}
		if rep.Drifted >= from && len(rep.Objects) < size {
			rep.Objects = append(rep.Objects, *d)
		}
		rep.Drifted++
	}
	if end := from + len(rep.Objects); end < rep.Drifted {
		rep.NextPageToken = paging.Encode(strconv.Itoa(end), fp)
	}
	return rep, nil
}

// compare reads obj's live counterpart; nil when in sync.
func (s *driftService) compare(ctx context.Context, dyn dynamic.Interface, mapper meta.RESTMapper, ns string, obj map[string]any, scaled map[string]bool) (*DriftedObject, error) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	md, _ := obj["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	if objNS, _ := md["namespace"].(string); objNS != "" {
		ns = objNS
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil || kind == "" || name == "" {
		return nil, nil // not an object Helm could have applied
	}
	m, err := mapper.RESTMapping(gv.WithKind(kind).GroupKind(), gv.Version)
	if err != nil {
		return nil, fmt.Errorf("%w: find the resource of %s %s: %v", slipstatus.ErrUnknown, apiVersion, kind, err)
	}
	d := &DriftedObject{APIVersion: apiVersion, Kind: kind, Name: name}
	ri := dyn.Resource(m.Resource)
	var live interface {
		UnstructuredContent() map[string]any
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		d.Namespace = ns
		live, err = ri.Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	} else {
		live, err = ri.Get(ctx, name, metav1.GetOptions{})
	}
	switch {
	case apierrors.IsNotFound(err):
		d.State = DriftMissing
		return d, nil
	case err != nil:
		return nil, fmt.Errorf("%w: read %s %s/%s: %v", slipstatus.ErrUnknown, kind, ns, name, err)
	}
	var ignore []drift.Path
	if scaled[kind+"/"+name] {
		ignore = append(ignore, drift.Path{"spec", "replicas"})
	}
	res, err := drift.Compare(obj, live.UnstructuredContent(), ignore)
	if err != nil {
		return nil, fmt.Errorf("compare %s %s/%s: %w", kind, ns, name, err)
	}
	if !res.Drifted {
		return nil, nil
	}
	d.State, d.Diff = DriftModified, res.Diff
	return d, nil
}

// autoscaled names the workloads ("Deployment/web") the namespace's
// HorizontalPodAutoscalers scale: their replicas are the autoscaler's.
func autoscaled(ctx context.Context, cs kubernetes.Interface, ns string) (map[string]bool, error) {
	l, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
			return nil, nil // no autoscalers to know of
		}
		return nil, fmt.Errorf("%w: list autoscalers of %s: %v", slipstatus.ErrUnknown, ns, err)
	}
	out := map[string]bool{}
	for _, h := range l.Items {
		out[h.Spec.ScaleTargetRef.Kind+"/"+h.Spec.ScaleTargetRef.Name] = true
	}
	return out, nil
}
