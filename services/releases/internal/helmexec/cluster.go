package helmexec

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/flowcontrol"
)

const (
	// capabilitiesMaxAge bounds how stale the API versions templates see
	// may get when CRDs appear behind the executor's back. Helm's CLI
	// rediscovers on every run; a service cannot afford that per request.
	capabilitiesMaxAge = 10 * time.Minute
	// mapperRefreshEvery bounds how often a kind the cached discovery does
	// not know makes it rediscover.
	mapperRefreshEvery = 5 * time.Second
)

// cluster is everything cached for one cluster and one Access: a transport
// (so every client shares one connection pool and one rate limiter), the
// rest.Config, discovery and REST mapper, the Capabilities templates see,
// and an action.Configuration per namespace.
type cluster struct {
	id          string
	fingerprint [sha256.Size]byte
	log         func(format string, v ...any)

	transport *http.Transport
	config    *rest.Config
	clientset kubernetes.Interface // protobuf, for release Secrets and waits
	discovery discovery.CachedDiscoveryInterface
	mapper    *refreshingMapper
	getter    *getter
	factory   kube.Factory
	lastUsed  atomic.Int64 // unix nanoseconds

	capsMu    sync.Mutex
	caps      *chartutil.Capabilities
	capsAt    time.Time
	capsStale bool

	mu         sync.Mutex
	namespaces map[string]*nsConfig
	built      *atomic.Int64 // the Executor's count of Configurations built
}

// nsConfig is one namespace's action.Configuration, built once. done is
// closed when cfg or err is set.
type nsConfig struct {
	done    chan struct{}
	cfg     *action.Configuration
	kube    *kube.Client
	secrets *driver.Secrets
	err     error
}

func newCluster(a Access, o *Options, wrap func(http.RoundTripper) http.RoundTripper, built *atomic.Int64) (*cluster, error) {
	u, err := url.Parse(a.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%w: the server of cluster %s must be an https URL", ErrInvalidAccess, a.ClusterID)
	}
	tlsConfig, err := tlsConfigFor(a)
	if err != nil {
		return nil, err
	}
	t := &http.Transport{
		// Never the environment's proxy: it would connect to the tenant's
		// address past the outbound policy's checks.
		Proxy:                 nil,
		DialContext:           o.Dial,
		TLSClientConfig:       tlsConfig,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute, // the API server's own limit is 1 min; watches answer at once
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   25,
		HTTP2:                 &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
	}
	cfg := &rest.Config{
		Host:        a.Server,
		BearerToken: a.BearerToken,
		// Our own transport, rather than client-go's TLS cache: that cache
		// never forgets a credential, cannot cache at all once Proxy is
		// set, and would give each client built from this config its own
		// connections.
		Transport: t,
		QPS:       o.QPS,
		Burst:     o.Burst,
		// One limiter for every client of this cluster.
		RateLimiter:    flowcontrol.NewTokenBucketRateLimiter(o.QPS, o.Burst),
		UserAgent:      "slipway-releases",
		WarningHandler: warningLogger{o.Log},
	}
	if wrap != nil {
		cfg.WrapTransport = wrap
	}
	pb := rest.CopyConfig(cfg)
	pb.ContentType = "application/vnd.kubernetes.protobuf"
	pb.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cs, err := kubernetes.NewForConfig(pb)
	if err != nil {
		return nil, fmt.Errorf("%w: cluster %s: %v", ErrInvalidAccess, a.ClusterID, err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(rest.CopyConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("%w: cluster %s: %v", ErrInvalidAccess, a.ClusterID, err)
	}
	c := &cluster{
		id:          a.ClusterID,
		fingerprint: a.fingerprint(),
		transport:   t,
		config:      cfg,
		clientset:   cs,
		discovery:   memory.NewMemCacheClient(dc),
		namespaces:  map[string]*nsConfig{},
		built:       built,
		log:         helmLog(o.Log, "cluster", a.ClusterID),
	}
	c.mapper = &refreshingMapper{
		next:    restmapper.NewDeferredDiscoveryRESTMapper(c.discovery),
		onReset: c.staleCapabilities,
	}
	c.getter = &getter{c: c}
	// kube.New builds kubectl's factory; one per cluster, shared by every
	// namespace's client.
	c.factory = kube.New(c.getter).Factory
	return c, nil
}

func tlsConfigFor(a Access) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: a.TLSServerName}
	if len(a.CAPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(a.CAPEM) {
			return nil, fmt.Errorf("%w: the CA bundle of cluster %s holds no PEM certificate", ErrInvalidAccess, a.ClusterID)
		}
		c.RootCAs = pool
	}
	switch {
	case len(a.ClientCertPEM) > 0 && len(a.ClientKeyPEM) > 0:
		cert, err := tls.X509KeyPair(a.ClientCertPEM, a.ClientKeyPEM)
		if err != nil {
			// crypto/tls's messages name no key material.
			return nil, fmt.Errorf("%w: the client certificate of cluster %s: %v", ErrInvalidAccess, a.ClusterID, err)
		}
		c.Certificates = []tls.Certificate{cert}
	case len(a.ClientCertPEM) > 0 || len(a.ClientKeyPEM) > 0:
		return nil, fmt.Errorf("%w: cluster %s has a client certificate without its key, or a key without its certificate", ErrInvalidAccess, a.ClusterID)
	}
	return c, nil
}

// close lets go of the connections; actions still running on this cluster
// keep theirs until they finish (idle connections then time out).
func (c *cluster) close() { c.transport.CloseIdleConnections() }

func (c *cluster) staleCapabilities() {
	c.capsMu.Lock()
	c.capsStale = true
	c.capsMu.Unlock()
}

// capabilities returns what templates see as .Capabilities, discovered once
// per cluster rather than once per action as Helm would.
func (c *cluster) capabilities() (*chartutil.Capabilities, error) {
	c.capsMu.Lock()
	defer c.capsMu.Unlock()
	if c.caps != nil && !c.capsStale && time.Since(c.capsAt) < capabilitiesMaxAge {
		return c.caps, nil
	}
	if c.caps != nil {
		c.discovery.Invalidate()
	}
	v, err := c.discovery.ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("could not get server version from Kubernetes: %w", err)
	}
	versions, err := action.GetVersionSet(c.discovery)
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, fmt.Errorf("could not get apiVersions from Kubernetes: %w", err)
	}
	c.caps = &chartutil.Capabilities{
		APIVersions: versions,
		KubeVersion: chartutil.KubeVersion{Version: v.GitVersion, Major: v.Major, Minor: v.Minor},
		HelmVersion: chartutil.DefaultCapabilities.HelmVersion,
	}
	c.capsAt, c.capsStale = time.Now(), false
	return c.caps, nil
}

// setCapabilities keeps what an action discovered afresh (after installing
// a chart's CRDs).
func (c *cluster) setCapabilities(caps *chartutil.Capabilities) {
	c.capsMu.Lock()
	c.caps, c.capsAt, c.capsStale = caps, time.Now(), false
	c.capsMu.Unlock()
}

// namespace returns the namespace's Configuration, building it on first use.
// A failed build is not kept: the next call tries again.
func (c *cluster) namespace(ns string) (*nsConfig, error) {
	c.mu.Lock()
	n, ok := c.namespaces[ns]
	if !ok {
		n = &nsConfig{done: make(chan struct{})}
		c.namespaces[ns] = n
	}
	c.mu.Unlock()
	if ok {
		<-n.done
		return n, n.err
	}
	n.err = c.build(n, ns)
	if n.err != nil {
		c.mu.Lock()
		delete(c.namespaces, ns)
		c.mu.Unlock()
	}
	close(n.done)
	return n, n.err
}

func (c *cluster) build(n *nsConfig, ns string) error {
	kc := &kube.Client{Factory: c.factory, Namespace: ns, Log: c.log}
	// kube.Client makes its clientset lazily, unguarded; doing it here,
	// before the client is shared, keeps concurrent actions from racing.
	if err := kc.IsReachable(); err != nil {
		return err
	}
	n.kube = kc
	n.secrets = driver.NewSecrets(c.clientset.CoreV1().Secrets(ns))
	n.secrets.Log = c.log
	n.cfg = &action.Configuration{
		RESTClientGetter: c.getter,
		KubeClient:       kc,
		Releases:         storage.Init(n.secrets),
		Log:              c.log,
		HookOutputFunc:   func(_, _, _ string) io.Writer { return io.Discard },
	}
	c.built.Add(1)
	return nil
}

// getter gives Helm and kubectl's factory the cluster's cached clients.
type getter struct{ c *cluster }

// ToRESTConfig returns a copy: kubectl's factory changes what it gets.
func (g *getter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.c.config), nil }
func (g *getter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.c.discovery, nil
}
func (g *getter) ToRESTMapper() (meta.RESTMapper, error) { return g.c.mapper, nil }
func (g *getter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return rawConfig{g}
}

// rawConfig stands in for a kubeconfig; Helm asks it only for a namespace,
// and every client is given its namespace explicitly.
type rawConfig struct{ g *getter }

func (r rawConfig) RawConfig() (clientcmdapi.Config, error) { return clientcmdapi.Config{}, nil }
func (r rawConfig) ClientConfig() (*rest.Config, error)     { return r.g.ToRESTConfig() }
func (r rawConfig) Namespace() (string, bool, error)        { return "default", false, nil }
func (r rawConfig) ConfigAccess() clientcmd.ConfigAccess    { return nil }

// refreshingMapper is the deferred discovery mapper, which on a kind it
// does not know rediscovers (at most every mapperRefreshEvery): the memory
// cache under it counts as fresh forever once filled, so CRDs created after
// it was would otherwise stay unknown.
type refreshingMapper struct {
	next    *restmapper.DeferredDiscoveryRESTMapper
	onReset func()
	mu      sync.Mutex
	last    time.Time
}

var _ meta.ResettableRESTMapper = (*refreshingMapper)(nil)

func (m *refreshingMapper) retry(err error) bool {
	if !meta.IsNoMatchError(err) {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if time.Since(m.last) < mapperRefreshEvery {
		return false
	}
	m.last = time.Now()
	m.Reset()
	return true
}

func (m *refreshingMapper) Reset() {
	m.next.Reset()
	m.onReset()
}

func (m *refreshingMapper) KindFor(r schema.GroupVersionResource) (schema.GroupVersionKind, error) {
	k, err := m.next.KindFor(r)
	if m.retry(err) {
		k, err = m.next.KindFor(r)
	}
	return k, err
}

func (m *refreshingMapper) KindsFor(r schema.GroupVersionResource) ([]schema.GroupVersionKind, error) {
	k, err := m.next.KindsFor(r)
	if m.retry(err) {
		k, err = m.next.KindsFor(r)
	}
	return k, err
}

func (m *refreshingMapper) ResourceFor(r schema.GroupVersionResource) (schema.GroupVersionResource, error) {
	v, err := m.next.ResourceFor(r)
	if m.retry(err) {
		v, err = m.next.ResourceFor(r)
	}
	return v, err
}

func (m *refreshingMapper) ResourcesFor(r schema.GroupVersionResource) ([]schema.GroupVersionResource, error) {
	v, err := m.next.ResourcesFor(r)
	if m.retry(err) {
		v, err = m.next.ResourcesFor(r)
	}
	return v, err
}

func (m *refreshingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	v, err := m.next.RESTMapping(gk, versions...)
	if m.retry(err) {
		v, err = m.next.RESTMapping(gk, versions...)
	}
	return v, err
}

func (m *refreshingMapper) RESTMappings(gk schema.GroupKind, versions ...string) ([]*meta.RESTMapping, error) {
	v, err := m.next.RESTMappings(gk, versions...)
	if m.retry(err) {
		v, err = m.next.RESTMappings(gk, versions...)
	}
	return v, err
}

func (m *refreshingMapper) ResourceSingularizer(resource string) (string, error) {
	return m.next.ResourceSingularizer(resource)
}

// warningLogger sends the API server's warnings (deprecated APIs and the
// like) to the debug log rather than to klog's stderr.
type warningLogger struct {
	log interface{ Debug(string, ...any) }
}

func (w warningLogger) HandleWarningHeader(code int, _ string, text string) {
	if code == 299 && text != "" {
		w.log.Debug("kubernetes api warning", "warning", text)
	}
}
