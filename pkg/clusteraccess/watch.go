package clusteraccess

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
)

// Watch follows AccessService's credential changes and drops the cached
// answers each one makes stale, until ctx ends (then it returns nil), so it
// fits an oklog/run group. It opens the stream with the service identity of
// the WatchOrg organization, and fails at once without one.
//
// Whenever the stream breaks, changes may be missed until it is back, so
// Watch drops the whole cache and reconnects with exponential backoff and
// jitter; answers cached while it is away still expire by TTL.
func (c *Client) Watch(ctx context.Context) error {
	if c.opts.watchOrg == "" {
		return errors.New("watch credential changes: no organization to watch as (WatchOrg)")
	}
	backoff := c.opts.minBackoff
	for {
		established, err := c.watchOnce(ctx)
		dropped := c.cache.reset()
		if ctx.Err() != nil {
			return nil
		}
		if established {
			backoff = c.opts.minBackoff
		}
		// Equal jitter: never less than half the delay, so a fleet of
		// replicas spreads out without any of them hammering the server.
		wait := backoff/2 + rand.N(backoff/2+1)
		c.opts.log.WarnContext(ctx, "credential watch broken",
			"error", err, "dropped", dropped, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, c.opts.maxBackoff)
	}
}

// watchOnce follows one stream until it fails, and reports whether it was
// established (its reset received).
func (c *Client) watchOnce(ctx context.Context) (established bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	org := c.opts.watchOrg
	sctx, err := c.serviceContext(ctx, org)
	if err != nil {
		return false, err
	}
	stream, err := c.rpc.WatchCredentialChanges(sctx, &clustersv1.WatchCredentialChangesRequest{Org: org}, waitForReady)
	if err != nil {
		return false, err
	}
	for {
		ch, err := stream.Recv()
		if err != nil {
			return established, err
		}
		if ch.GetReset_() {
			dropped := c.cache.reset()
			established = true
			c.resets.Add(1)
			c.opts.log.InfoContext(ctx, "credential watch established", "dropped", dropped)
			continue
		}
		c.apply(ctx, ch)
	}
}

func (c *Client) apply(ctx context.Context, ch *clustersv1.WatchCredentialChangesResponse) {
	org := ch.GetOrg()
	rs := append(refs(org, ch.GetCredentialId(), ch.GetClusterId()), ref{org: org, kind: refMissing})
	dropped := c.cache.invalidate(rs...)
	c.opts.log.DebugContext(ctx, "credential changed",
		"org", org, "credential", ch.GetCredentialId(), "cluster", ch.GetClusterId(),
		"version", ch.GetVersion(), "dropped", dropped)
}
