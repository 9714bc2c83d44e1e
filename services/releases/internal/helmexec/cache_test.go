package helmexec

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCache: one Configuration per cluster and namespace, built once even
// when first used concurrently, and built again for a new credential
// version or after Invalidate.
func TestCache(t *testing.T) {
	c := cluster1(t)
	ctx := t.Context()
	e := New(Options{})
	ch := loadChart(t, "configmap-only")
	ns1, ns2 := namespace(t, c, "cache"), namespace(t, c, "cache")
	counts := func() (int64, int64) { return e.clustersBuilt.Load(), e.configsBuilt.Load() }
	want := func(what string, clusters, configs int64) {
		t.Helper()
		if gc, gf := counts(); gc != clusters || gf != configs {
			t.Errorf("%s: built %d clusters and %d Configurations; want %d and %d", what, gc, gf, clusters, configs)
		}
	}

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := e.History(ctx, c.access, ns1, "none", 0); !errors.Is(err, ErrReleaseNotFound) {
				t.Errorf("history: %v", err)
			}
		})
	}
	wg.Wait()
	want("8 concurrent first reads", 1, 1)
	for _, name := range []string{"a", "b"} {
		if _, err := e.Install(ctx, Request{Access: c.access, Namespace: ns1, Release: name, Chart: ch}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Upgrade(ctx, Request{Access: c.access, Namespace: ns1, Release: "a", Chart: ch}); err != nil {
		t.Fatal(err)
	}
	want("actions in one namespace", 1, 1)
	if _, err := e.Install(ctx, Request{Access: c.access, Namespace: ns2, Release: "a", Chart: ch}); err != nil {
		t.Fatal(err)
	}
	want("another namespace", 1, 2)

	rotated := c.access
	rotated.CredentialVersion++
	if _, err := e.Get(ctx, rotated, ns1, "a", 0); err != nil {
		t.Fatal(err)
	}
	want("a new credential version", 2, 3)
	if _, err := e.Get(ctx, rotated, ns1, "b", 0); err != nil {
		t.Fatal(err)
	}
	want("the new version again", 2, 3)

	e.Invalidate(c.access.ClusterID)
	if _, err := e.Get(ctx, rotated, ns1, "a", 0); err != nil {
		t.Fatal(err)
	}
	want("after Invalidate", 3, 4)
}

// TestMaxClusters: beyond MaxClusters the least recently used cluster is
// dropped.
func TestMaxClusters(t *testing.T) {
	c := cluster1(t)
	e := New(Options{MaxClusters: 2})
	use := func(id string) {
		t.Helper()
		a := c.access
		a.ClusterID = id
		if _, err := e.cluster(a); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // distinct lastUsed
	}
	use("x")
	use("y")
	use("x")
	use("z")
	e.mu.Lock()
	_, hasX := e.clusters["x"]
	_, hasY := e.clusters["y"]
	n := len(e.clusters)
	e.mu.Unlock()
	if n != 2 || !hasX || hasY {
		t.Errorf("cached %d clusters, x %v, y %v; want x and z", n, hasX, hasY)
	}
}

// TestDialNoProxy: every connection goes through Options.Dial, and the
// environment's proxy is never used.
func TestDialNoProxy(t *testing.T) {
	c := cluster1(t)
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:9")
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:9")
	t.Setenv("NO_PROXY", "")
	var dials atomic.Int64
	e := New(Options{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}})
	ns := namespace(t, c, "dial")
	if _, err := e.Install(t.Context(), Request{Access: c.access, Namespace: ns, Release: "cm", Chart: loadChart(t, "configmap-only")}); err != nil {
		t.Fatalf("install with a proxy in the environment: %v", err)
	}
	if dials.Load() == 0 {
		t.Error("Options.Dial was never called")
	}
	t.Logf("%d connections for an install", dials.Load())

	denied := errors.New("outbound policy: denied")
	e = New(Options{Dial: func(context.Context, string, string) (net.Conn, error) { return nil, denied }})
	_, err := e.Install(t.Context(), Request{Access: c.access, Namespace: ns, Release: "cm2", Chart: loadChart(t, "configmap-only")})
	if err == nil || !errors.Is(err, denied) {
		t.Errorf("install through a refusing dialer: %v; want the dialer's error", err)
	}
}

// countRequests makes e count the requests it sends.
func countRequests(e *Executor, n *atomic.Int64) {
	e.wrap = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			n.Add(1)
			return rt.RoundTrip(r)
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
