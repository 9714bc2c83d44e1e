package clusteraccess

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/slipwayhq/slipway/pkg/identity"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
)

// lookup is one way to ask the Client, with what the fake should answer.
type lookup struct {
	name   string
	method string
	key    func(org string) key
	call   func(ctx context.Context, c *Client, org string) (proto.Message, error)
	want   func(f *fakeAccess, org string) proto.Message
}

const repoURL = "https://charts.example/stable/index.yaml"

var (
	clusterProd = lookup{
		name: "cluster", method: "GetClusterAccess",
		key: func(org string) key { return key{kind: kindCluster, org: org, name: "prod"} },
		call: func(ctx context.Context, c *Client, org string) (proto.Message, error) {
			return c.ClusterAccess(ctx, org, "prod")
		},
		want: func(f *fakeAccess, org string) proto.Message { return f.clusters[[2]string{org, "prod"}] },
	}
	clusterProdByID = lookup{
		name: "cluster by id", method: "GetClusterAccess",
		key: func(org string) key { return key{kind: kindCluster, org: org, name: org + "-c1"} },
		call: func(ctx context.Context, c *Client, org string) (proto.Message, error) {
			return c.ClusterAccess(ctx, org, org+"-c1")
		},
		want: func(f *fakeAccess, org string) proto.Message { return f.clusters[[2]string{org, org + "-c1"}] },
	}
	clusterStaging = lookup{
		name: "other cluster", method: "GetClusterAccess",
		key: func(org string) key { return key{kind: kindCluster, org: org, name: "staging"} },
		call: func(ctx context.Context, c *Client, org string) (proto.Message, error) {
			return c.ClusterAccess(ctx, org, "staging")
		},
		want: func(f *fakeAccess, org string) proto.Message { return f.clusters[[2]string{org, "staging"}] },
	}
	registryFound = lookup{
		name: "registry", method: "GetRegistryAuth",
		key: func(org string) key { return key{kind: kindRegistry, org: org, name: "ghcr.io"} },
		call: func(ctx context.Context, c *Client, org string) (proto.Message, error) {
			return c.RegistryAuth(ctx, org, "ghcr.io")
		},
		want: func(f *fakeAccess, org string) proto.Message { return f.regs[[2]string{org, "ghcr.io"}] },
	}
	registryMissing = lookup{
		name: "registry without login", method: "GetRegistryAuth",
		key: func(org string) key { return key{kind: kindRegistry, org: org, name: "quay.io"} },
		call: func(ctx context.Context, c *Client, org string) (proto.Message, error) {
			return c.RegistryAuth(ctx, org, "quay.io")
		},
		want: func(*fakeAccess, string) proto.Message { return &clustersv1.GetRegistryAuthResponse{} },
	}
	repository = lookup{
		name: "repository", method: "GetRepositoryAuth",
		key: func(org string) key { return key{kind: kindRepository, org: org, name: "charts", url: repoURL} },
		call: func(ctx context.Context, c *Client, org string) (proto.Message, error) {
			return c.RepositoryAuth(ctx, org, "charts", repoURL)
		},
		want: func(f *fakeAccess, org string) proto.Message { return f.repos[[2]string{org, "charts"}] },
	}
	lookups = []lookup{clusterProd, clusterProdByID, clusterStaging, registryFound, registryMissing, repository}
)

func mustCall(t *testing.T, e *env, l lookup, org string) proto.Message {
	t.Helper()
	got, err := l.call(context.Background(), e.client, org)
	if err != nil {
		t.Fatalf("%s in %s: %v", l.name, org, err)
	}
	return got
}

func TestCachesAnswers(t *testing.T) {
	for _, l := range lookups {
		t.Run(l.name, func(t *testing.T) {
			e := newEnv(t)
			for i := range 3 {
				got := mustCall(t, e, l, "acme")
				if diff := cmp.Diff(l.want(e.fake, "acme"), got, protocmp.Transform()); diff != "" {
					t.Errorf("call %d (-want +got):\n%s", i, diff)
				}
			}
			if n := e.fake.count(l.method); n != 1 {
				t.Errorf("%s RPCs = %d, want 1 for three calls", l.method, n)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		l       lookup
		advance time.Duration
		rpcs    int
	}{
		{name: "within TTL", l: clusterProd, advance: DefaultTTL - time.Second, rpcs: 1},
		{name: "at TTL", l: clusterProd, advance: DefaultTTL, rpcs: 2},
		{name: "custom TTL", opts: []Option{TTL(time.Minute)}, l: repository, advance: 59 * time.Second, rpcs: 1},
		{name: "past custom TTL", opts: []Option{TTL(time.Minute)}, l: repository, advance: time.Minute, rpcs: 2},
		{name: "login found lives the TTL", l: registryFound, advance: DefaultNegativeTTL, rpcs: 1},
		{name: "no login within negative TTL", l: registryMissing, advance: DefaultNegativeTTL - time.Second, rpcs: 1},
		{name: "no login past negative TTL", l: registryMissing, advance: DefaultNegativeTTL, rpcs: 2},
		{name: "negative TTL capped by TTL", opts: []Option{TTL(time.Second), NegativeTTL(time.Hour)}, l: registryMissing, advance: time.Second, rpcs: 2},
		{name: "cache disabled", opts: []Option{TTL(0)}, l: clusterProd, rpcs: 2},
		{name: "no entries allowed", opts: []Option{MaxEntries(0)}, l: registryFound, rpcs: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts...)
			mustCall(t, e, tc.l, "acme")
			e.clock.Advance(tc.advance)
			mustCall(t, e, tc.l, "acme")
			if n := e.fake.count(tc.l.method); n != tc.rpcs {
				t.Errorf("RPCs = %d, want %d", n, tc.rpcs)
			}
		})
	}
}

func TestOrganizationsNeverShare(t *testing.T) {
	for _, l := range lookups {
		t.Run(l.name, func(t *testing.T) {
			e := newEnv(t)
			acme := mustCall(t, e, l, "acme")
			globex := mustCall(t, e, l, "globex")
			if n := e.fake.count(l.method); n != 2 {
				t.Errorf("RPCs = %d, want one per organization", n)
			}
			if diff := cmp.Diff(l.want(e.fake, "acme"), acme, protocmp.Transform()); diff != "" {
				t.Errorf("acme (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(l.want(e.fake, "globex"), globex, protocmp.Transform()); diff != "" {
				t.Errorf("globex (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("another organization's cluster id is not found", func(t *testing.T) {
		e := newEnv(t)
		mustCall(t, e, clusterProdByID, "acme")
		_, err := e.client.ClusterAccess(context.Background(), "globex", "acme-c1")
		if status.Code(err) != codes.NotFound {
			t.Fatalf("err = %v, want NotFound", err)
		}
	})
}

func TestErrorsAreNotCached(t *testing.T) {
	tests := []struct {
		name string
		fail error
		l    lookup
		org  string
		code codes.Code
	}{
		{name: "unavailable", fail: status.Error(codes.Unavailable, "vault sealed"), l: clusterProd, org: "acme", code: codes.Unavailable},
		{name: "permission denied", fail: status.Error(codes.PermissionDenied, "url outside endpoint"), l: repository, org: "acme", code: codes.PermissionDenied},
		{name: "missing org", l: registryFound, org: "", code: codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.fail != nil {
				e.fake.mu.Lock()
				e.fake.fail[tc.l.key(tc.org).name] = tc.fail
				e.fake.mu.Unlock()
			}
			_, err := tc.l.call(context.Background(), e.client, tc.org)
			if status.Code(err) != tc.code {
				t.Fatalf("err = %v, want %v", err, tc.code)
			}
			if e.client.cache.len() != 0 {
				t.Fatal("an error was cached")
			}
			if tc.org == "" {
				return
			}
			mustCall(t, e, tc.l, tc.org)
			if n := e.fake.count(tc.l.method); n != 2 {
				t.Errorf("RPCs = %d, want 2 (the failure, then a fresh call)", n)
			}
		})
	}
	t.Run("not found, twice", func(t *testing.T) {
		e := newEnv(t)
		for range 2 {
			if _, err := e.client.ClusterAccess(context.Background(), "acme", "nope"); status.Code(err) != codes.NotFound {
				t.Fatalf("err = %v, want NotFound", err)
			}
		}
		if n := e.fake.count("GetClusterAccess"); n != 2 {
			t.Errorf("RPCs = %d, want 2", n)
		}
	})
}

func TestIdentityOfEachCall(t *testing.T) {
	for _, l := range lookups {
		for _, org := range []string{"acme", "globex"} {
			t.Run(l.name+" in "+org, func(t *testing.T) {
				e := newEnv(t)
				// The request handler's own caller, a user of another org,
				// must not be what AccessService sees.
				ctx := userContext(t, e.keys, "initech")
				if _, err := l.call(ctx, e.client, org); err != nil {
					t.Fatal(err)
				}
				want := []seen{{
					method: l.method, org: org,
					id: identity.Identity{Subject: "service:releases", Org: org, Role: identity.RoleViewer, Service: "releases"},
				}}
				if diff := cmp.Diff(want, e.fake.seenCalls(), cmp.AllowUnexported(seen{})); diff != "" {
					t.Errorf("calls (-want +got):\n%s", diff)
				}
			})
		}
	}
	t.Run("watch", func(t *testing.T) {
		e := newEnv(t, WatchOrg("globex"))
		e.watch(t)
		want := []seen{{
			method: "WatchCredentialChanges", org: "globex",
			id: identity.Identity{Subject: "service:releases", Org: "globex", Role: identity.RoleViewer, Service: "releases"},
		}}
		if diff := cmp.Diff(want, e.fake.seenCalls(), cmp.AllowUnexported(seen{})); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	})
}

func TestConcurrentMissesShareOneRPC(t *testing.T) {
	e := newEnv(t)
	gate := e.fake.hold()
	const n = 20
	results := make([]proto.Message, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], errs[i] = clusterProd.call(context.Background(), e.client, "acme") })
	}
	eventually(t, "every caller waiting on one call", func() bool {
		e.client.cache.mu.RLock()
		defer e.client.cache.mu.RUnlock()
		cl := e.client.cache.inflight[clusterProd.key("acme")]
		return cl != nil && cl.waiters == n
	})
	close(gate)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if diff := cmp.Diff(clusterProd.want(e.fake, "acme"), results[i], protocmp.Transform()); diff != "" {
			t.Errorf("caller %d (-want +got):\n%s", i, diff)
		}
	}
	if got := e.fake.count("GetClusterAccess"); got != 1 {
		t.Errorf("RPCs = %d, want 1", got)
	}
	if results[0] == results[1] {
		t.Error("two callers got the same message")
	}
}

func TestCallerLeavingDoesNotFailOthers(t *testing.T) {
	e := newEnv(t)
	gate := e.fake.hold()
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := e.client.ClusterAccess(ctx, "acme", "prod"); first <- err }()
	eventually(t, "the first call to reach the server", func() bool { return e.fake.count("GetClusterAccess") == 1 })
	second := make(chan error, 1)
	go func() { _, err := e.client.ClusterAccess(context.Background(), "acme", "prod"); second <- err }()
	eventually(t, "the second caller waiting", func() bool {
		e.client.cache.mu.RLock()
		defer e.client.cache.mu.RUnlock()
		cl := e.client.cache.inflight[clusterProd.key("acme")]
		return cl != nil && cl.waiters == 2
	})
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v, want context.Canceled", err)
	}
	close(gate)
	if err := <-second; err != nil {
		t.Fatalf("second caller: %v", err)
	}
	if e.fake.count("GetClusterAccess") != 1 || e.client.cache.len() != 1 {
		t.Errorf("RPCs = %d, entries = %d; want one answer, cached", e.fake.count("GetClusterAccess"), e.client.cache.len())
	}
}

func TestReturnsCopies(t *testing.T) {
	e := newEnv(t)
	a, err := e.client.ClusterAccess(context.Background(), "acme", "prod")
	if err != nil {
		t.Fatal(err)
	}
	a.BearerToken = "changed"
	a.CertificateAuthorityPem[0] = 'X'
	again, err := e.client.ClusterAccess(context.Background(), "acme", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(clusterProd.want(e.fake, "acme"), again, protocmp.Transform()); diff != "" {
		t.Errorf("cached answer changed by a caller (-want +got):\n%s", diff)
	}
}

func TestMaxEntries(t *testing.T) {
	e := newEnv(t, MaxEntries(2))
	for _, l := range []lookup{clusterProd, clusterStaging, registryFound} {
		mustCall(t, e, l, "acme")
		e.clock.Advance(time.Second)
	}
	c := e.client.cache
	now := e.clock.Now()
	for _, tc := range []struct {
		l    lookup
		want bool
	}{{clusterProd, false}, {clusterStaging, true}, {registryFound, true}} {
		if _, ok := c.get(tc.l.key("acme"), now); ok != tc.want {
			t.Errorf("%s cached = %v, want %v", tc.l.name, ok, tc.want)
		}
	}
	checkIndex(t, c)
}

// checkIndex verifies that the order list and the ref index describe
// exactly the entries.
func checkIndex(t *testing.T, c *cache) {
	t.Helper()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.order.Len() != len(c.entries) {
		t.Errorf("order has %d entries, map %d", c.order.Len(), len(c.entries))
	}
	indexed := map[*entry]bool{}
	for r, set := range c.byRef {
		for e := range set {
			if c.entries[e.key] != e || !slices.Contains(e.refs, r) {
				t.Errorf("index holds a stale entry under %+v", r)
			}
			indexed[e] = true
		}
	}
	for _, e := range c.entries {
		if len(e.refs) > 0 && !indexed[e] {
			t.Errorf("entry %+v missing from the index", e.key)
		}
	}
}

func TestWatchNeedsAnOrganization(t *testing.T) {
	e := newEnv(t, WatchOrg(""))
	if err := e.client.Watch(context.Background()); err == nil || !strings.Contains(err.Error(), "WatchOrg") {
		t.Fatalf("Watch = %v, want an error naming WatchOrg", err)
	}
}
