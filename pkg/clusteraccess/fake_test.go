package clusteraccess

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/slipwayhq/slipway/pkg/identity"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
)

// seen is what the fake saw of one call: the method, the identity its
// token verified as, and the org of the request.
type seen struct {
	method string
	id     identity.Identity
	org    string
}

// fakeAccess is an AccessService answering from maps. It sits behind the
// real identity interceptors, so every call must carry a verified token for
// the request's org, and it refuses non-service identities as the real one
// does.
type fakeAccess struct {
	clustersv1.UnimplementedAccessServiceServer

	mu       sync.Mutex
	clusters map[[2]string]*clustersv1.ClusterAccess           // org, cluster
	regs     map[[2]string]*clustersv1.GetRegistryAuthResponse // org, host
	repos    map[[2]string]*clustersv1.GetRepositoryAuthResponse
	fail     map[string]error // request name -> error for the next call
	calls    []seen
	// template, when set, answers for any cluster not in clusters.
	template *clustersv1.ClusterAccess
	// gate, when set, holds every unary call until it is closed.
	gate chan struct{}

	watches atomic.Int64
	// noReset makes new streams skip their reset message.
	noReset atomic.Bool
	events  chan *clustersv1.WatchCredentialChangesResponse
	breaks  chan struct{}
}

func newFakeAccess() *fakeAccess {
	return &fakeAccess{
		clusters: map[[2]string]*clustersv1.ClusterAccess{},
		regs:     map[[2]string]*clustersv1.GetRegistryAuthResponse{},
		repos:    map[[2]string]*clustersv1.GetRepositoryAuthResponse{},
		fail:     map[string]error{},
		events:   make(chan *clustersv1.WatchCredentialChangesResponse),
		breaks:   make(chan struct{}),
	}
}

func (f *fakeAccess) record(ctx context.Context, method, org, name string) (gate chan struct{}, err error) {
	id, _ := identity.FromContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, seen{method: method, id: id, org: org})
	if id.Service == "" {
		return nil, status.Error(codes.PermissionDenied, "service identity required")
	}
	if err := f.fail[name]; err != nil {
		delete(f.fail, name)
		return nil, err
	}
	return f.gate, nil
}

func wait(ctx context.Context, gate chan struct{}) error {
	if gate == nil {
		return nil
	}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeAccess) GetClusterAccess(ctx context.Context, req *clustersv1.GetClusterAccessRequest) (*clustersv1.GetClusterAccessResponse, error) {
	gate, err := f.record(ctx, "GetClusterAccess", req.GetOrg(), req.GetCluster())
	if err != nil {
		return nil, err
	}
	if err := wait(ctx, gate); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.clusters[[2]string{req.GetOrg(), req.GetCluster()}]
	if !ok && f.template != nil {
		a = proto.CloneOf(f.template)
		a.ClusterId, ok = req.GetCluster(), true
	}
	if !ok {
		return nil, status.Errorf(codes.NotFound, "cluster %q not found", req.GetCluster())
	}
	return &clustersv1.GetClusterAccessResponse{Access: a}, nil
}

func (f *fakeAccess) GetRegistryAuth(ctx context.Context, req *clustersv1.GetRegistryAuthRequest) (*clustersv1.GetRegistryAuthResponse, error) {
	gate, err := f.record(ctx, "GetRegistryAuth", req.GetOrg(), req.GetHost())
	if err != nil {
		return nil, err
	}
	if err := wait(ctx, gate); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.regs[[2]string{req.GetOrg(), req.GetHost()}]; ok {
		return r, nil
	}
	return &clustersv1.GetRegistryAuthResponse{}, nil
}

func (f *fakeAccess) GetRepositoryAuth(ctx context.Context, req *clustersv1.GetRepositoryAuthRequest) (*clustersv1.GetRepositoryAuthResponse, error) {
	gate, err := f.record(ctx, "GetRepositoryAuth", req.GetOrg(), req.GetCredential())
	if err != nil {
		return nil, err
	}
	if err := wait(ctx, gate); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.repos[[2]string{req.GetOrg(), req.GetCredential()}]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "credential %q not found", req.GetCredential())
	}
	return r, nil
}

func (f *fakeAccess) WatchCredentialChanges(req *clustersv1.WatchCredentialChangesRequest, ss grpc.ServerStreamingServer[clustersv1.WatchCredentialChangesResponse]) error {
	ctx := ss.Context()
	f.watches.Add(1)
	if _, err := f.record(ctx, "WatchCredentialChanges", req.GetOrg(), ""); err != nil {
		return err
	}
	if !f.noReset.Load() {
		if err := ss.Send(&clustersv1.WatchCredentialChangesResponse{Reset_: true}); err != nil {
			return err
		}
	}
	for {
		select {
		case ev := <-f.events:
			if err := ss.Send(ev); err != nil {
				return err
			}
		case <-f.breaks:
			return status.Error(codes.Unavailable, "stream broken by the test")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// hold makes unary calls wait until the returned channel is closed.
func (f *fakeAccess) hold() chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate = make(chan struct{})
	return f.gate
}

// send hands ev to the open stream, failing the test if none takes it.
func (f *fakeAccess) send(t *testing.T, ev *clustersv1.WatchCredentialChangesResponse) {
	t.Helper()
	select {
	case f.events <- ev:
	case <-time.After(5 * time.Second):
		t.Fatal("no watch stream took the event")
	}
}

func (f *fakeAccess) breakStream(t *testing.T) {
	t.Helper()
	select {
	case f.breaks <- struct{}{}:
	case <-time.After(5 * time.Second):
		t.Fatal("no watch stream to break")
	}
}

func (f *fakeAccess) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.method == method {
			n++
		}
	}
	return n
}

func (f *fakeAccess) seenCalls() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.calls...)
}

// keys signs identities the way Slipway does: the gateway for users, the
// releases service for itself.
type keys struct {
	gateway  *identity.Signer
	releases *identity.Signer
	verifier *identity.Verifier
}

func newKeys(tb testing.TB) keys {
	tb.Helper()
	gk, err := identity.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	rk, err := identity.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	v, err := identity.NewVerifier(gk.Public().(ed25519.PublicKey))
	if err != nil {
		tb.Fatal(err)
	}
	if err := v.TrustService("releases", rk.Public().(ed25519.PublicKey)); err != nil {
		tb.Fatal(err)
	}
	rs, err := identity.NewServiceSigner("releases", rk, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return keys{gateway: identity.NewSigner(gk, 0), releases: rs, verifier: v}
}

// serve runs f behind the identity interceptors on an in-memory listener
// and returns a plain connection to it: no client interceptors, so the
// identity that arrives is the one Client set itself.
func serve(tb testing.TB, f *fakeAccess, v *identity.Verifier) *grpc.ClientConn {
	tb.Helper()
	lis := bufconn.Listen(1 << 20)
	s := grpc.NewServer(
		grpc.ChainUnaryInterceptor(identity.UnaryServerInterceptor(v)),
		grpc.ChainStreamInterceptor(identity.StreamServerInterceptor(v)),
	)
	clustersv1.RegisterAccessServiceServer(s, f)
	done := make(chan error, 1)
	go func() { done <- s.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := conn.Close(); err != nil {
			tb.Errorf("close conn: %v", err)
		}
		s.Stop()
		if err := <-done; err != nil {
			tb.Errorf("serve: %v", err)
		}
	})
	return conn
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a Client wired to a fake through bufconn.
type env struct {
	fake   *fakeAccess
	client *Client
	clock  *fakeClock
	keys   keys
}

func newEnv(tb testing.TB, opts ...Option) *env {
	tb.Helper()
	k := newKeys(tb)
	f := newFakeAccess()
	seed(f)
	conn := serve(tb, f, k.verifier)
	caller, err := identity.NewServiceCaller(k.releases)
	if err != nil {
		tb.Fatal(err)
	}
	clock := newFakeClock()
	base := []Option{
		Clock(clock.Now), WatchOrg("acme"), Backoff(time.Millisecond, 10*time.Millisecond),
		Logger(slog.New(slog.DiscardHandler)),
	}
	return &env{fake: f, client: New(conn, caller, append(base, opts...)...), clock: clock, keys: k}
}

// watch runs e's Watch until the test ends and waits for its stream.
func (e *env) watch(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.client.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	eventually(t, "watch established", func() bool { return e.client.resets.Load() == 1 })
}

// eventually polls cond until it holds, failing the test after 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// seed fills f with two organizations that use the same names.
func seed(f *fakeAccess) {
	for _, org := range []string{"acme", "globex"} {
		f.clusters[[2]string{org, "prod"}] = &clustersv1.ClusterAccess{
			ClusterId: org + "-c1", Server: "https://prod." + org + ".example:6443",
			BearerToken: "token-prod-" + org, CertificateAuthorityPem: []byte("ca-" + org),
			CredentialId: "k1", CredentialVersion: 1,
		}
		f.clusters[[2]string{org, org + "-c1"}] = f.clusters[[2]string{org, "prod"}]
		f.clusters[[2]string{org, "staging"}] = &clustersv1.ClusterAccess{
			ClusterId: org + "-c2", Server: "https://staging." + org + ".example:6443",
			BearerToken: "token-staging-" + org, CredentialId: "k2", CredentialVersion: 3,
		}
		f.regs[[2]string{org, "ghcr.io"}] = &clustersv1.GetRegistryAuthResponse{
			Found: true, Username: "bot", Password: "pw-" + org, CredentialId: "r1", CredentialVersion: 1,
		}
		f.repos[[2]string{org, "charts"}] = &clustersv1.GetRepositoryAuthResponse{
			Username: "u", Password: "repo-pw-" + org, CredentialId: "h1", CredentialVersion: 2,
		}
	}
}

// userContext returns a context carrying a gateway-minted user identity,
// as a request handler's would, with its token already on the outgoing
// metadata as a forwarding interceptor would leave it.
func userContext(tb testing.TB, k keys, org string) context.Context {
	tb.Helper()
	id := identity.Identity{Subject: "user:alice", Org: org, Role: identity.RoleOwner}
	tok, err := k.gateway.Sign(id)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := identity.NewContext(context.Background(), id, tok)
	return metadata.AppendToOutgoingContext(ctx, identity.MetadataKey, tok)
}
