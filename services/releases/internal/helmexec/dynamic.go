package helmexec

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Dynamic returns a client for any kind on a's cluster, on the cluster's
// one transport and rate limiter, with the cached REST mapper to find a
// kind's resource: for reading a release's objects as they run (drift).
func (e *Executor) Dynamic(a Access) (dynamic.Interface, meta.RESTMapper, error) {
	c, err := e.cluster(a)
	if err != nil {
		return nil, nil, err
	}
	d, err := dynamic.NewForConfig(rest.CopyConfig(c.config))
	if err != nil {
		return nil, nil, err
	}
	return d, c.mapper, nil
}
