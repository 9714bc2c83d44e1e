package releases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
	"github.com/slipwayhq/slipway/services/releases/internal/ops"
)

// DriftCheckOptions tune the periodic drift check.
type DriftCheckOptions struct {
	// Every is how often every deployed release is compared (10 min).
	Every time.Duration
	// Correct queues a correct-drift operation for each release found
	// drifted (off by default: the check only reports).
	Correct bool
	// Concurrency is how many releases are compared at once (4).
	Concurrency int
}

// DriftChecker compares, every interval, each release the ledger holds
// as deployed with its cluster, records the outcome as the release's last
// check, audits a drift newly found, and, with Correct, queues its
// correction. Every replica may check: a check only reads the cluster,
// one replica's record finds a drift newly (so it is audited once), and
// a correction's idempotency key names the release, the revision and the
// drift's start, so every replica's and every later check's request of it
// is one operation, run under the release's lease.
type DriftChecker struct {
	ops     *ops.Store
	ledger  *Ledger
	clients Clients
	access  ClusterAccess
	caller  *identity.ServiceCaller
	opts    DriftCheckOptions
	log     *slog.Logger
	wake    func()
	now     func() time.Time
}

// NewDriftChecker returns a drift checker; wake tells the worker it
// queued work.
func NewDriftChecker(store *ops.Store, ledger *Ledger, clients Clients, access ClusterAccess, caller *identity.ServiceCaller, o DriftCheckOptions, wake func(), log *slog.Logger) *DriftChecker {
	if o.Every <= 0 {
		o.Every = 10 * time.Minute
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if wake == nil {
		wake = func() {}
	}
	return &DriftChecker{ops: store, ledger: ledger, clients: clients, access: access, caller: caller, opts: o, log: log, wake: wake, now: time.Now}
}

// Run checks every Every until ctx ends, the first time one interval
// after the start (when the clusters service has had time to answer).
func (c *DriftChecker) Run(ctx context.Context) error {
	return every(ctx, c.opts.Every, false, func(ctx context.Context) {
		n, err := c.Check(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			c.log.WarnContext(ctx, "drift check", "error", err, "drifted", n)
		case n > 0:
			c.log.InfoContext(ctx, "drift check found drifted releases", "releases", n)
		}
	})
}

// Check compares every deployed release once and returns how many were
// drifted. A cluster that cannot be reached is recorded as each of its
// releases' check error (and named in the error); the others are checked.
func (c *DriftChecker) Check(ctx context.Context) (int, error) {
	heads, err := c.ledger.deployedHeads(ctx)
	if err != nil {
		return 0, err
	}
	var (
		mu      sync.Mutex
		drifted int
		errs    []error
		wg      sync.WaitGroup
	)
	sem := make(chan struct{}, c.opts.Concurrency)
	for i := 0; i < len(heads); {
		// One cluster's releases, on one set of clients.
		j := i
		for j < len(heads) && heads[j].Org == heads[i].Org && heads[j].Cluster == heads[i].Cluster {
			j++
		}
		group := heads[i:j]
		i = j
		kc, err := c.clusterClients(ctx, group[0].Org, group[0].Cluster)
		if errors.Is(err, ErrClusterNotFound) {
			continue // deleted: its releases went with it
		}
		if err != nil {
			for _, h := range group {
				if rerr := c.ledger.RecordDriftError(ctx, h.ReleaseKey, h.Revision, c.now(), err.Error()); rerr != nil {
					errs = append(errs, rerr)
				}
			}
			errs = append(errs, fmt.Errorf("cluster %s of %s: %w", group[0].Cluster, group[0].Org, err))
			continue
		}
		for _, h := range group {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				wg.Wait()
				return drifted, ctx.Err()
			}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				found, err := c.checkRelease(ctx, kc, h)
				mu.Lock()
				defer mu.Unlock()
				if found {
					drifted++
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("%s/%s on %s of %s: %w", h.Namespace, h.Name, h.Cluster, h.Org, err))
				}
			}()
		}
	}
	wg.Wait()
	return drifted, errors.Join(errs...)
}

func (c *DriftChecker) clusterClients(ctx context.Context, org, cluster string) (kubeClients, error) {
	svc, err := c.caller.Context(ctx, org)
	if err != nil {
		return kubeClients{}, err
	}
	ca, err := c.access.ClusterAccess(svc, org, cluster)
	if err != nil {
		return kubeClients{}, clusterError(cluster, err)
	}
	return kubeClientsOf(c.clients, helmexec.AccessFromProto(ca))
}

// checkRelease compares one release and records the outcome; found says
// it was drifted. A release an operation is queued or running on is left
// for the next check: its objects are changing.
func (c *DriftChecker) checkRelease(ctx context.Context, kc kubeClients, h deployedHead) (bool, error) {
	for _, st := range []ops.State{ops.StateRunning, ops.StateQueued} {
		busy, _, err := c.ops.List(ctx, h.Org, ops.ListFilter{Cluster: h.Cluster, Namespace: h.Namespace, Release: h.Name, State: st}, ops.Page{Size: 1})
		if err != nil {
			return false, err
		}
		if len(busy) > 0 {
			return false, nil
		}
	}
	r, err := c.ledger.Get(ctx, h.ReleaseKey, 0)
	if err != nil {
		return false, err
	}
	if r.Revision != h.Revision || r.Status != StatusDeployed {
		return false, nil // changed since the list: the next check sees it
	}
	found, err := releaseDrift(ctx, kc, r.Namespace, r.Manifest)
	if err != nil {
		return false, errors.Join(err, c.ledger.RecordDriftError(ctx, h.ReleaseKey, r.Revision, c.now(), err.Error()))
	}
	since, newly, err := c.ledger.RecordDriftCheck(ctx, h.ReleaseKey, r.Revision, len(found), c.now())
	if err != nil {
		return false, err
	}
	if len(found) == 0 {
		return false, nil
	}
	if newly {
		c.log.InfoContext(ctx, "release drifted", "org", h.Org, "cluster", h.Cluster, "namespace", h.Namespace, "release", h.Name,
			"revision", r.Revision, "drifted", len(found))
		e := AuditEvent{Org: h.Org, Actor: identity.ServiceSubject(c.caller.Service()), Action: actionDriftFound,
			Target: releasePath(h.Org, h.Cluster, h.Namespace, h.Name), Result: 200,
			Detail: fmt.Sprintf("revision %d drifted: %s", r.Revision, driftSummary(found))}
		if err := c.ledger.AppendAudit(ctx, e); err != nil {
			return true, err
		}
	}
	if c.opts.Correct {
		return true, c.queueCorrection(ctx, h, r.Revision, since)
	}
	return true, nil
}

// queueCorrection queues the correction of one drift, unless an operation
// is queued or running on the release. The key is the drift's: release,
// revision and start.
func (c *DriftChecker) queueCorrection(ctx context.Context, h deployedHead, revision int, since time.Time) error {
	found := fmt.Sprintf("found revision %d drifted at %s", revision, since.UTC().Format(time.RFC3339))
	payload, err := json.Marshal(job{Options: Options{Timeout: DefaultTimeout}, Found: found})
	if err != nil {
		return err
	}
	req := ops.EnqueueRequest{
		Org: h.Org, Kind: kindCorrectDrift, Target: ops.Target{Cluster: h.Cluster, Namespace: h.Namespace, Release: h.Name},
		Payload: payload, Creator: identity.ServiceSubject(c.caller.Service()), NoQueue: true,
		IdempotencyKey: "slipway-drift:" + h.Cluster + "/" + h.Namespace + "/" + h.Name + "@" + strconv.Itoa(revision) + ":" + strconv.FormatInt(since.UnixMicro(), 10),
	}
	op, replayed, err := c.ops.Enqueue(ctx, req)
	switch {
	case errors.Is(err, ops.ErrBusy):
		return nil
	case err != nil:
		return fmt.Errorf("queue drift correction: %w", err)
	case replayed:
		return nil
	}
	c.log.InfoContext(ctx, "drift correction queued", "org", h.Org, "cluster", h.Cluster, "namespace", h.Namespace, "release", h.Name,
		"revision", revision, "operation", op.ID)
	c.wake()
	return nil
}
