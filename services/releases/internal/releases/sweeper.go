package releases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
	"github.com/slipwayhq/slipway/services/releases/internal/ops"
)

// SweeperOptions tune the sweep for abandoned releases.
type SweeperOptions struct {
	// Every is how often the clusters are looked at (1 min).
	Every time.Duration
	// StuckAfter is how long a revision must have been pending before it
	// counts as abandoned when no Slipway operation is queued or running on
	// its release (5 min: Helm's own default timeout, so a `helm` CLI run
	// beside Slipway is not cut short).
	StuckAfter time.Duration
}

// Sweeper finds releases Helm left pending-install, pending-upgrade or
// pending-rollback with no live writer (one killed mid-way, in Slipway or
// outside it) and queues a recover operation for each, so that it runs
// under the release's lease like any change: an upgrade or rollback is
// rolled back to the last deployed revision, an install marked failed
// (never uninstalled). The worker records what it did in the ledger and
// the audit log. Every replica may sweep: the recover operation's
// idempotency key makes their findings one operation.
type Sweeper struct {
	ops    *ops.Store
	ledger *Ledger
	exec   *helmexec.Executor
	access ClusterAccess
	caller *identity.ServiceCaller
	opts   SweeperOptions
	log    *slog.Logger
	wake   func()
	now    func() time.Time
}

// NewSweeper returns a sweeper; wake tells the worker it queued work.
func NewSweeper(store *ops.Store, ledger *Ledger, exec *helmexec.Executor, access ClusterAccess, caller *identity.ServiceCaller, o SweeperOptions, wake func(), log *slog.Logger) *Sweeper {
	if o.Every <= 0 {
		o.Every = time.Minute
	}
	if o.StuckAfter <= 0 {
		o.StuckAfter = 5 * time.Minute
	}
	if wake == nil {
		wake = func() {}
	}
	return &Sweeper{ops: store, ledger: ledger, exec: exec, access: access, caller: caller, opts: o, log: log, wake: wake, now: time.Now}
}

// Run sweeps every Every until ctx ends, the first time at once.
func (s *Sweeper) Run(ctx context.Context) error {
	return every(ctx, s.opts.Every, true, func(ctx context.Context) {
		if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "sweep for abandoned releases", "error", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "abandoned releases found; recover operations queued", "releases", n)
		}
	})
}

// Sweep looks once at every namespace the ledger knows releases in, and
// returns how many recover operations it queued. A cluster that cannot be
// reached is skipped (and named in the error); the others are swept.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	scopes, err := s.ledger.namespaces(ctx)
	if err != nil {
		return 0, err
	}
	var errs []error
	queued := 0
	for _, sc := range scopes {
		n, err := s.sweepCluster(ctx, sc)
		queued += n
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster %s of %s: %w", sc.cluster, sc.org, err))
		}
	}
	return queued, errors.Join(errs...)
}

func (s *Sweeper) sweepCluster(ctx context.Context, sc clusterNamespaces) (int, error) {
	svc, err := s.caller.Context(ctx, sc.org)
	if err != nil {
		return 0, err
	}
	ca, err := s.access.ClusterAccess(svc, sc.org, sc.cluster)
	if err != nil {
		if errors.Is(clusterError(sc.cluster, err), ErrClusterNotFound) {
			return 0, nil // deleted: its releases went with it
		}
		return 0, err
	}
	pending, err := s.exec.ListPending(ctx, helmexec.AccessFromProto(ca), sc.namespaces)
	if err != nil {
		return 0, err
	}
	queued := 0
	for _, p := range pending {
		if s.now().Sub(p.Since) < s.opts.StuckAfter {
			continue
		}
		ok, err := s.queueRecover(ctx, sc, p)
		if err != nil {
			return queued, err
		}
		if ok {
			queued++
		}
	}
	return queued, nil
}

// queueRecover queues the recover operation of an abandoned release,
// unless an operation is queued or running on it (that one's worker
// settles it first). The key is the pending revision: every replica's
// sweep of it, and every later sweep, finds the same operation.
func (s *Sweeper) queueRecover(ctx context.Context, sc clusterNamespaces, p helmexec.Pending) (bool, error) {
	payload, err := json.Marshal(job{Options: Options{Timeout: DefaultTimeout}, Found: p.String()})
	if err != nil {
		return false, err
	}
	req := ops.EnqueueRequest{
		Org: sc.org, Kind: kindRecover, Target: ops.Target{Cluster: sc.cluster, Namespace: p.Namespace, Release: p.Name},
		Payload: payload, Creator: identity.ServiceSubject(s.caller.Service()), NoQueue: true,
		IdempotencyKey: "slipway-recover:" + sc.cluster + "/" + p.Namespace + "/" + p.Name + "@" + strconv.Itoa(p.Revision) + ":" + strconv.FormatInt(p.Since.Unix(), 10),
	}
	op, replayed, err := s.ops.Enqueue(ctx, req)
	switch {
	case errors.Is(err, ops.ErrBusy):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("queue recovery of %s: %w", p, err)
	case replayed:
		return false, nil
	}
	s.log.InfoContext(ctx, "abandoned release found; recover operation queued", "org", sc.org, "cluster", sc.cluster,
		"namespace", p.Namespace, "release", p.Name, "revision", p.Revision, "status", p.Status, "since", p.Since, "operation", op.ID)
	s.wake()
	return true, nil
}

// clusterNamespaces is one org's cluster and the namespaces the ledger
// knows releases in there.
type clusterNamespaces struct {
	org, cluster string
	namespaces   []string
}

// namespaces lists, per org and cluster, the namespaces of releases the
// ledger does not hold as uninstalled.
func (l *Ledger) namespaces(ctx context.Context) ([]clusterNamespaces, error) {
	rows, err := l.db.QueryContext(ctx, l.db.Rebind(`SELECT DISTINCT org, cluster, namespace FROM heads WHERE status <> ? ORDER BY org, cluster, namespace`), int(StatusUninstalled))
	if err != nil {
		return nil, fmt.Errorf("list release namespaces: %w", err)
	}
	defer rows.Close()
	var out []clusterNamespaces
	for rows.Next() {
		var org, cluster, ns string
		if err := rows.Scan(&org, &cluster, &ns); err != nil {
			return nil, fmt.Errorf("list release namespaces: %w", err)
		}
		if n := len(out); n > 0 && out[n-1].org == org && out[n-1].cluster == cluster {
			out[n-1].namespaces = append(out[n-1].namespaces, ns)
			continue
		}
		out = append(out, clusterNamespaces{org: org, cluster: cluster, namespaces: []string{ns}})
	}
	return out, rows.Err()
}
