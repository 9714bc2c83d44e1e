// Package clusteraccess is how the registry, catalog and releases services
// get secrets from the clusters service's internal AccessService: cluster
// connections, registry logins and chart repository logins.
//
// Answers are cached briefly per organization, and Watch drops them as soon
// as the clusters service reports that a credential they came from was
// rotated, re-pointed or deleted. Every RPC carries the calling service's
// own identity for the organization of the request, never a forwarded
// user's: AccessService answers only services.
package clusteraccess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/slipwayhq/slipway/pkg/identity"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
)

// Defaults of the options.
const (
	DefaultTTL         = 30 * time.Second
	DefaultNegativeTTL = 5 * time.Second
	DefaultMaxEntries  = 10_000
	// DefaultCallTimeout bounds one RPC: the clusters service answers
	// UNAVAILABLE within 2 s when Vault is down, so this only catches a
	// hung connection.
	DefaultCallTimeout = 10 * time.Second
	DefaultMinBackoff  = 250 * time.Millisecond
	DefaultMaxBackoff  = 30 * time.Second
)

type options struct {
	ttl         time.Duration
	negativeTTL time.Duration
	maxEntries  int
	callTimeout time.Duration
	now         func() time.Time
	log         *slog.Logger
	watchOrg    string
	minBackoff  time.Duration
	maxBackoff  time.Duration
}

// Option configures a Client.
type Option func(*options)

// TTL is how long an answer is reused (DefaultTTL). Zero or less disables
// the cache; concurrent identical calls still share one RPC.
func TTL(d time.Duration) Option { return func(o *options) { o.ttl = d } }

// NegativeTTL is how long a "no registry login for this host" answer is
// reused (DefaultNegativeTTL, never longer than TTL). It is short because no
// credential id names it, so Watch can only drop it on a change somewhere
// in its organization.
func NegativeTTL(d time.Duration) Option { return func(o *options) { o.negativeTTL = d } }

// MaxEntries bounds the cache (DefaultMaxEntries); when full, the oldest
// answer goes first. Zero or less disables the cache.
func MaxEntries(n int) Option { return func(o *options) { o.maxEntries = n } }

// CallTimeout bounds each RPC (DefaultCallTimeout). The RPC is shared by
// every caller waiting for the same answer, so it does not end with the
// context of the one that started it; each caller still stops waiting when
// its own context ends.
func CallTimeout(d time.Duration) Option { return func(o *options) { o.callTimeout = d } }

// Clock replaces time.Now for expiry, in tests.
func Clock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Logger sets the logger of Watch (slog.Default()).
func Logger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WatchOrg is the organization whose service identity Watch opens the
// change stream with. The stream reports changes of every organization;
// the org is needed only because AccessService checks that a request's org
// is its identity's, as on every call. Watch fails without it.
func WatchOrg(org string) Option { return func(o *options) { o.watchOrg = org } }

// Backoff sets the bounds of Watch's exponential reconnection delay
// (DefaultMinBackoff, DefaultMaxBackoff).
func Backoff(min, max time.Duration) Option {
	return func(o *options) { o.minBackoff, o.maxBackoff = min, max }
}

// Client gets secrets from AccessService through a short-lived cache. It is
// safe for concurrent use. Every message it returns is the caller's own
// copy, free to change.
type Client struct {
	rpc    clustersv1.AccessServiceClient
	caller *identity.ServiceCaller
	opts   options
	cache  *cache
	// resets counts change streams established (their reset received).
	resets atomic.Int64
}

// New returns a Client calling AccessService over conn with caller's
// identity. Run Watch alongside it, or answers live out their TTL after a
// credential changes.
// waitForReady makes a call wait, within its timeout, for a connection to
// the clusters service instead of failing at once while the connection is
// (re)established: services start in any order, and restart.
var waitForReady = grpc.WaitForReady(true)

func New(conn grpc.ClientConnInterface, caller *identity.ServiceCaller, opts ...Option) *Client {
	o := options{
		ttl:         DefaultTTL,
		negativeTTL: DefaultNegativeTTL,
		maxEntries:  DefaultMaxEntries,
		callTimeout: DefaultCallTimeout,
		now:         time.Now,
		log:         slog.Default(),
		minBackoff:  DefaultMinBackoff,
		maxBackoff:  DefaultMaxBackoff,
	}
	for _, opt := range opts {
		opt(&o)
	}
	o.negativeTTL = min(o.negativeTTL, o.ttl)
	if o.ttl <= 0 || o.maxEntries <= 0 {
		o.ttl, o.maxEntries = 0, 0
	}
	if o.callTimeout <= 0 {
		o.callTimeout = DefaultCallTimeout
	}
	if o.minBackoff <= 0 {
		o.minBackoff = DefaultMinBackoff
	}
	o.maxBackoff = max(o.maxBackoff, o.minBackoff)
	return &Client{
		rpc:    clustersv1.NewAccessServiceClient(conn),
		caller: caller,
		opts:   o,
		cache:  newCache(o.maxEntries),
	}
}

// ClusterAccess returns how to reach cluster (id or name) of org.
func (c *Client) ClusterAccess(ctx context.Context, org, cluster string) (*clustersv1.ClusterAccess, error) {
	k := key{kind: kindCluster, org: org, name: cluster}
	v, err := c.lookup(ctx, k, func(ctx context.Context) (fetched, error) {
		resp, err := c.rpc.GetClusterAccess(ctx, &clustersv1.GetClusterAccessRequest{Org: org, Cluster: cluster}, waitForReady)
		if err != nil {
			return fetched{}, err
		}
		a := resp.GetAccess()
		if a == nil {
			return fetched{}, status.Error(codes.Internal, "clusters service answered without access")
		}
		return fetched{val: a, ttl: c.opts.ttl, refs: refs(org, a.GetCredentialId(), a.GetClusterId())}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("get access to cluster %q: %w", cluster, err)
	}
	return v.(*clustersv1.ClusterAccess), nil
}

// RegistryAuth returns org's login for a container registry host; Found is
// false when org has none and the registry is to be reached anonymously.
func (c *Client) RegistryAuth(ctx context.Context, org, host string) (*clustersv1.GetRegistryAuthResponse, error) {
	k := key{kind: kindRegistry, org: org, name: host}
	v, err := c.lookup(ctx, k, func(ctx context.Context) (fetched, error) {
		resp, err := c.rpc.GetRegistryAuth(ctx, &clustersv1.GetRegistryAuthRequest{Org: org, Host: host}, waitForReady)
		if err != nil {
			return fetched{}, err
		}
		if !resp.GetFound() {
			return fetched{val: resp, ttl: c.opts.negativeTTL, refs: []ref{{org: org, kind: refMissing}}}, nil
		}
		return fetched{val: resp, ttl: c.opts.ttl, refs: refs(org, resp.GetCredentialId(), "")}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("get login for registry %q: %w", host, err)
	}
	return v.(*clustersv1.GetRegistryAuthResponse), nil
}

// RepositoryAuth returns the login of helm-repository credential (id or
// name) of org for fetching url.
func (c *Client) RepositoryAuth(ctx context.Context, org, credential, url string) (*clustersv1.GetRepositoryAuthResponse, error) {
	k := key{kind: kindRepository, org: org, name: credential, url: url}
	v, err := c.lookup(ctx, k, func(ctx context.Context) (fetched, error) {
		resp, err := c.rpc.GetRepositoryAuth(ctx, &clustersv1.GetRepositoryAuthRequest{Org: org, Credential: credential, Url: url}, waitForReady)
		if err != nil {
			return fetched{}, err
		}
		return fetched{val: resp, ttl: c.opts.ttl, refs: refs(org, resp.GetCredentialId(), "")}, nil
	})
	if err != nil {
		// Not the URL: it may carry userinfo.
		return nil, fmt.Errorf("get login of repository credential %q: %w", credential, err)
	}
	return v.(*clustersv1.GetRepositoryAuthResponse), nil
}

func refs(org, credentialID, clusterID string) []ref {
	var rs []ref
	if credentialID != "" {
		rs = append(rs, ref{org: org, kind: refCredential, id: credentialID})
	}
	if clusterID != "" {
		rs = append(rs, ref{org: org, kind: refCluster, id: clusterID})
	}
	return rs
}

// fetched is one RPC's answer and how to cache it.
type fetched struct {
	val  proto.Message
	ttl  time.Duration
	refs []ref
}

func (c *Client) lookup(ctx context.Context, k key, fetch func(context.Context) (fetched, error)) (proto.Message, error) {
	if k.org == "" {
		return nil, status.Error(codes.InvalidArgument, "org: required")
	}
	now := c.opts.now()
	if v, ok := c.cache.get(k, now); ok {
		return proto.Clone(v), nil
	}
	v, cl, leader := c.cache.begin(k, now)
	if cl == nil {
		return proto.Clone(v), nil
	}
	if leader {
		go c.run(context.WithoutCancel(ctx), k, cl, fetch)
	}
	select {
	case <-cl.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if cl.err != nil {
		return nil, cl.err
	}
	return proto.Clone(cl.val), nil
}

// run makes cl's RPC. ctx keeps the starting caller's values (trace, request
// id) but not its cancellation, since others may be waiting on the answer.
func (c *Client) run(ctx context.Context, k key, cl *call, fetch func(context.Context) (fetched, error)) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.callTimeout)
	defer cancel()
	var f fetched
	ctx, err := c.serviceContext(ctx, k.org)
	if err == nil {
		f, err = fetch(ctx)
	}
	cl.val, cl.err = f.val, err
	c.cache.finish(k, cl, f.refs, c.opts.now().Add(f.ttl), f.ttl > 0)
}

// serviceContext returns ctx carrying the service's identity in org, set on
// the outgoing metadata itself: the identity client interceptor keeps
// metadata already set, so a token forwarded from an incoming request could
// otherwise go out instead, and a connection without that interceptor would
// send none.
func (c *Client) serviceContext(ctx context.Context, org string) (context.Context, error) {
	ctx, err := c.caller.Context(ctx, org)
	if err != nil {
		return nil, fmt.Errorf("service identity: %w", err)
	}
	tok, ok := identity.TokenFromContext(ctx)
	if !ok {
		return nil, errors.New("service identity: no token")
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy()
	md.Set(identity.MetadataKey, tok)
	return metadata.NewOutgoingContext(ctx, md), nil
}
