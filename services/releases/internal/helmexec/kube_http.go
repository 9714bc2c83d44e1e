package helmexec

import (
	"fmt"
	"net/http"
	"net/url"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
)

// Metrics returns a client of a's cluster's resource metrics API
// (metrics.k8s.io), on the cluster's one transport and rate limiter.
func (e *Executor) Metrics(a Access) (metricsclient.Interface, error) {
	c, err := e.cluster(a)
	if err != nil {
		return nil, err
	}
	m, err := metricsclient.NewForConfig(rest.CopyConfig(c.config))
	if err != nil {
		return nil, fmt.Errorf("%w: cluster %s: %v", ErrInvalidAccess, a.ClusterID, err)
	}
	return m, nil
}

// HTTP returns an HTTP client that sends a's credential to the cluster's
// API server, on the cluster's one transport and rate limiter, with the
// server's URL: for the pod proxy, whose answers are the pods' own and
// must be read bounded, which client-go's clients do not do.
func (e *Executor) HTTP(a Access) (*http.Client, *url.URL, error) {
	c, err := e.cluster(a)
	if err != nil {
		return nil, nil, err
	}
	hc, err := rest.HTTPClientFor(rest.CopyConfig(c.config))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: cluster %s: %v", ErrInvalidAccess, a.ClusterID, err)
	}
	base, err := url.Parse(c.config.Host)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: cluster %s: %v", ErrInvalidAccess, a.ClusterID, err)
	}
	hc.Transport = limited{next: hc.Transport, limiter: c.config.RateLimiter}
	return hc, base, nil
}

// limited waits for the cluster's rate limiter before each request, as
// client-go's REST clients do.
type limited struct {
	next    http.RoundTripper
	limiter flowcontrol.RateLimiter
}

func (l limited) RoundTrip(r *http.Request) (*http.Response, error) {
	if l.limiter != nil {
		if err := l.limiter.Wait(r.Context()); err != nil {
			return nil, err
		}
	}
	return l.next.RoundTrip(r)
}
