package releases

import (
	"context"
	"errors"
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
	// LastCheck is the release's last background check (or correction),
	// nil when none ran.
	LastCheck *DriftCheck
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
	ledger  *Ledger
	access  ClusterAccess
	clients Clients
	now     func() time.Time
}

// NewDriftService reads releases through svc (which checks the caller and
// scopes the release to its org), their live objects through clients, and
// their last background check from ledger.
func NewDriftService(svc Service, ledger *Ledger, access ClusterAccess, clients Clients) DriftService {
	return &driftService{svc: svc, ledger: ledger, access: access, clients: clients, now: time.Now}
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
	kc, err := kubeClientsOf(s.clients, helmexec.AccessFromProto(ca))
	if err != nil {
		return DriftReport{}, err
	}
	found, err := releaseDrift(ctx, kc, r.Namespace, r.Manifest)
	if err != nil {
		return DriftReport{}, err
	}
	rep := DriftReport{Revision: r.Revision, Drifted: len(found), Checked: s.now().UTC()}
	for _, d := range found[min(from, len(found)):] {
		if len(rep.Objects) == size {
			break
		}
		rep.Objects = append(rep.Objects, d.DriftedObject)
	}
	if last, err := s.ledger.DriftCheck(ctx, r.Key()); err == nil {
		rep.LastCheck = &last
	} else if !errors.Is(err, errNoDriftCheck) {
		return DriftReport{}, err
	}
	if end := from + len(rep.Objects); end < rep.Drifted {
		rep.NextPageToken = paging.Encode(strconv.Itoa(end), fp)
	}
	return rep, nil
}

// kubeClients are one cluster's clients for reading and correcting drift.
type kubeClients struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
	cs     kubernetes.Interface
}

func kubeClientsOf(c Clients, a helmexec.Access) (kubeClients, error) {
	dyn, mapper, err := c.Dynamic(a)
	if err != nil {
		return kubeClients{}, err
	}
	cs, err := c.Clientset(a)
	if err != nil {
		return kubeClients{}, err
	}
	return kubeClients{dyn: dyn, mapper: mapper, cs: cs}, nil
}

// objectDrift is a drifted object with what correcting it takes.
type objectDrift struct {
	DriftedObject
	manifest map[string]any
	live     map[string]any // nil when missing
	resource dynamic.NamespaceableResourceInterface
	ignore   []drift.Path
}

// client is the object's resource client, in its namespace if it has one.
func (d objectDrift) client() dynamic.ResourceInterface {
	if d.Namespace != "" {
		return d.resource.Namespace(d.Namespace)
	}
	return d.resource
}

// releaseDrift compares every object of a release's manifest (its
// namespace ns) with the cluster, and returns those that differ, in
// manifest order: only the fields the manifest sets, and not spec.replicas
// of a workload a HorizontalPodAutoscaler of ns scales.
func releaseDrift(ctx context.Context, kc kubeClients, ns, manifest string) ([]objectDrift, error) {
	scaled, err := autoscaled(ctx, kc.cs, ns)
	if err != nil {
		return nil, err
	}
	var out []objectDrift
	for _, text := range manifestTexts(manifest) {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(text), &obj); err != nil || len(obj) == 0 {
			continue
		}
		d, err := compareObject(ctx, kc, ns, obj, scaled)
		if err != nil {
			return nil, err
		}
		if d != nil {
			out = append(out, *d)
		}
	}
	return out, nil
}

// compareObject reads obj's live counterpart; nil when in sync.
func compareObject(ctx context.Context, kc kubeClients, ns string, obj map[string]any, scaled map[string]bool) (*objectDrift, error) {
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
	m, err := kc.mapper.RESTMapping(gv.WithKind(kind).GroupKind(), gv.Version)
	if err != nil {
		return nil, fmt.Errorf("%w: find the resource of %s %s: %v", slipstatus.ErrUnknown, apiVersion, kind, err)
	}
	d := &objectDrift{DriftedObject: DriftedObject{APIVersion: apiVersion, Kind: kind, Name: name}, manifest: obj, resource: kc.dyn.Resource(m.Resource)}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		d.Namespace = ns
	}
	live, err := d.client().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		d.State = DriftMissing
		return d, nil
	case err != nil:
		return nil, fmt.Errorf("%w: read %s %s/%s: %v", slipstatus.ErrUnknown, kind, ns, name, err)
	}
	if scaled[kind+"/"+name] {
		d.ignore = append(d.ignore, drift.Path{"spec", "replicas"})
	}
	res, err := drift.Compare(obj, live.UnstructuredContent(), d.ignore)
	if err != nil {
		return nil, fmt.Errorf("compare %s %s/%s: %w", kind, ns, name, err)
	}
	if !res.Drifted {
		return nil, nil
	}
	d.State, d.Diff, d.live = DriftModified, res.Diff, live.UnstructuredContent()
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
