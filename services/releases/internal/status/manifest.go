package status

import (
	"sort"
	"strconv"
	"strings"
	"sync"

	"helm.sh/helm/v3/pkg/releaseutil"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// clusterScoped are the built-in kinds without a namespace. A manifest's
// object of any other kind that names no namespace is in the release's
// (as Helm applies it).
var clusterScoped = map[schema.GroupKind]bool{
	{Kind: "Namespace"}: true, {Kind: "Node"}: true, {Kind: "PersistentVolume"}: true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:                         true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}:                  true,
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}:                 true,
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                                   true,
	{Group: "storage.k8s.io", Kind: "CSIDriver"}:                                      true,
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"}:                               true,
	{Group: "networking.k8s.io", Kind: "IngressClass"}:                                true,
	{Group: "node.k8s.io", Kind: "RuntimeClass"}:                                      true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"}:   true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}:     true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicy"}:        true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicyBinding"}: true,
	{Group: "apiregistration.k8s.io", Kind: "APIService"}:                             true,
}

// objKey names an object to the cache: its group, kind, namespace, name.
type objKey struct {
	gk       schema.GroupKind
	ns, name string
}

func keyOf(o Object) objKey {
	gv, _ := schema.ParseGroupVersion(o.APIVersion)
	return objKey{gk: schema.GroupKind{Group: gv.Group, Kind: o.Kind}, ns: o.Namespace, name: o.Name}
}

// Manifest is a release's objects, parsed once per revision.
type Manifest struct {
	Objects []Object
	keys    []objKey
	// namespaces holds the namespaces of the objects of watched kinds.
	namespaces []string
}

// ParseManifest reads the objects of a rendered manifest, in order;
// namespace is the release's.
func ParseManifest(manifest, namespace string) *Manifest {
	parts := releaseutil.SplitManifests(manifest)
	names := make([]string, 0, len(parts))
	for k := range parts {
		names = append(names, k)
	}
	// Keys are "manifest-<n>": order by n.
	n := func(k string) int { i, _ := strconv.Atoi(strings.TrimPrefix(k, "manifest-")); return i }
	sort.Slice(names, func(i, j int) bool { return n(names[i]) < n(names[j]) })
	m := &Manifest{}
	seen := map[objKey]bool{}
	nsSeen := map[string]bool{}
	for _, k := range names {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(parts[k]), &head); err != nil || head.Kind == "" || head.Metadata.Name == "" {
			continue
		}
		o := Object{APIVersion: head.APIVersion, Kind: head.Kind, Namespace: head.Metadata.Namespace, Name: head.Metadata.Name}
		key := keyOf(o)
		if clusterScoped[key.gk] {
			o.Namespace, key.ns = "", ""
		} else if o.Namespace == "" {
			o.Namespace, key.ns = namespace, namespace
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		m.Objects = append(m.Objects, o)
		m.keys = append(m.keys, key)
		if watched[key.gk] && !nsSeen[key.ns] {
			nsSeen[key.ns] = true
			m.namespaces = append(m.namespaces, key.ns)
		}
	}
	return m
}

// manifests caches parsed manifests by a caller's key (a revision).
type manifests struct {
	mu    sync.Mutex
	max   int
	byKey map[string]*Manifest
	order []string
}

func (c *manifests) get(key, manifest, namespace string) *Manifest {
	c.mu.Lock()
	m, ok := c.byKey[key]
	c.mu.Unlock()
	if ok {
		return m
	}
	m = ParseManifest(manifest, namespace)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[key]; !ok {
		c.byKey[key] = m
		c.order = append(c.order, key)
		for len(c.order) > c.max {
			delete(c.byKey, c.order[0])
			c.order = c.order[1:]
		}
	}
	return m
}
