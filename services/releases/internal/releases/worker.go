package releases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"

	"github.com/slipwayhq/slipway/pkg/chartarchive"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
	"github.com/slipwayhq/slipway/services/releases/internal/ops"
)

// Charts fetches chart archives from the catalog, on the releases
// service's own behalf.
type Charts interface {
	// Archive resolves ref in org's catalog and returns the version and
	// digest it resolved to, with the archive.
	Archive(ctx context.Context, org string, ref ChartRef) (version, digest string, data []byte, err error)
}

// WorkerOptions tune the worker.
type WorkerOptions struct {
	Workers  int           // operations run at once (16)
	Lease    time.Duration // how long a claim lasts without a heartbeat (1 min)
	Poll     time.Duration // how often queued work is looked for besides wake-ups (1 s)
	MaxStore int           // revisions recorded from Helm's history per operation (10)
	// TracerProvider makes the spans of operations' executions (the
	// global provider when nil); see optrace.go.
	TracerProvider trace.TracerProvider
}

// Worker runs queued operations: it claims them with a lease, keeps the
// lease alive while Helm works, stops when the operation is cancelled or
// the lease is lost, and records the outcome in the ledger.
type Worker struct {
	ops    *ops.Store
	ledger *Ledger
	exec   *helmexec.Executor
	access ClusterAccess
	charts Charts
	caller *identity.ServiceCaller
	opts   WorkerOptions
	log    *slog.Logger
	owner  string
	wake   chan struct{}
}

// NewWorker returns a worker.
func NewWorker(store *ops.Store, ledger *Ledger, exec *helmexec.Executor, access ClusterAccess, charts Charts, caller *identity.ServiceCaller, o WorkerOptions, log *slog.Logger) *Worker {
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.Lease <= 0 {
		o.Lease = time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.MaxStore <= 0 {
		o.MaxStore = 10
	}
	return &Worker{ops: store, ledger: ledger, exec: exec, access: access, charts: charts, caller: caller, opts: o, log: log,
		owner: "releases-" + uuid.NewString(), wake: make(chan struct{}, 1)}
}

// Wake makes Run look for queued operations now.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run runs operations until ctx ends; running ones are stopped then, and
// their leases run out, so another replica (or this one, restarted)
// recovers them.
func (w *Worker) Run(ctx context.Context) error {
	t := time.NewTicker(w.opts.Poll)
	defer t.Stop()
	sweep := time.NewTicker(time.Hour)
	defer sweep.Stop()
	sem := make(chan struct{}, w.opts.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		if free := w.opts.Workers - len(sem); free > 0 {
			leases, err := w.ops.Claim(ctx, w.owner, free, w.opts.Lease)
			if err != nil && ctx.Err() == nil {
				w.log.ErrorContext(ctx, "claim operations", "error", err)
			}
			for _, l := range leases {
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer func() { <-sem; wg.Done(); w.Wake() }()
					w.run(ctx, l)
				}()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-w.wake:
		case <-sweep.C:
			if n, err := w.ops.DeleteExpiredKeys(ctx); err != nil {
				w.log.WarnContext(ctx, "delete expired idempotency keys", "error", err)
			} else if n > 0 {
				w.log.InfoContext(ctx, "expired idempotency keys deleted", "keys", n)
			}
			if n, err := w.ledger.DeleteUploadsBefore(ctx, time.Now().Add(-uploadRetention)); err != nil {
				w.log.WarnContext(ctx, "delete old uploaded charts", "error", err)
			} else if n > 0 {
				w.log.InfoContext(ctx, "old uploaded charts deleted", "charts", n)
			}
		}
	}
}

// run runs one claimed operation to its end.
func (w *Worker) run(parent context.Context, l ops.Lease) {
	log := w.log.With("operation", l.ID, "org", l.Org, "cluster", l.Target.Cluster, "namespace", l.Target.Namespace, "release", l.Target.Release)
	// The attempt joins the trace of the request that enqueued it.
	parent, span := w.startExecution(parent, l)
	outcome, failCode := attemptNotStarted, ""
	defer func() { endExecution(span, outcome, failCode) }()
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	done := make(chan struct{})
	defer close(done)
	go w.heartbeat(ctx, cancel, l, done)

	if err := w.ops.Start(ctx, l.ID, l.Token); err != nil {
		log.WarnContext(ctx, "start operation", "error", err)
		return
	}
	res, err := w.execute(ctx, l, log)
	if err != nil && ctx.Err() == nil {
		// Helm may have changed the release before failing (a failed
		// upgrade, an atomic rollback): the ledger follows it.
		w.resync(ctx, l, log)
	}
	// The outcome is written even if ctx ended, unless the lease was lost.
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(parent), 30*time.Second)
	defer wcancel()
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, ops.ErrLeaseLost):
		outcome = attemptLeaseLost
		log.WarnContext(wctx, "operation lease lost; another worker continues it")
		return
	case errors.Is(cause, errCancelled):
		outcome = attemptCancelled
		err = w.ops.Finish(wctx, l.ID, l.Token, ops.StateCancelled, nil, codeName(codes.Canceled), "cancelled on request")
	case parent.Err() != nil && err != nil:
		// Shutting down: leave it to the lease to expire and be retried.
		outcome = attemptInterrupted
		log.InfoContext(wctx, "operation interrupted by shutdown")
		return
	case err != nil:
		if clusterUnreachable(err) {
			// Helm names the API server's address; users know the cluster.
			err = fmt.Errorf("cluster %s: %w", l.Target.Cluster, err)
		}
		code, msg := failure(err)
		outcome, failCode = attemptFailed, code
		log.InfoContext(wctx, "operation failed", "code", code, "error", err)
		err = w.ops.Finish(wctx, l.ID, l.Token, ops.StateFailed, nil, code, msg)
	default:
		outcome = attemptSucceeded
		err = w.ops.Finish(wctx, l.ID, l.Token, ops.StateSucceeded, res, "", "")
	}
	if err != nil {
		log.ErrorContext(wctx, "finish operation", "error", err)
	}
	if l.Target.Instance != "" {
		w.instanceFinished(wctx, l, log) // instances_worker.go
	}
}

var (
	errCancelled = errors.New("operation cancelled")
	errGaveUp    = errors.New("operation abandoned")
)

// heartbeat extends the lease until done, and stops the operation when
// the lease is lost or cancellation is asked for.
func (w *Worker) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, l ops.Lease, done <-chan struct{}) {
	t := time.NewTicker(w.opts.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cancelled, err := w.ops.Heartbeat(ctx, l.ID, l.Token, w.opts.Lease)
		switch {
		case errors.Is(err, ops.ErrLeaseLost):
			cancel(ops.ErrLeaseLost)
			return
		case err != nil:
			w.log.WarnContext(ctx, "operation heartbeat", "operation", l.ID, "error", err)
		case cancelled:
			cancel(errCancelled)
			return
		}
	}
}

// execute does what the operation says and returns its result.
func (w *Worker) execute(ctx context.Context, l ops.Lease, log *slog.Logger) ([]byte, error) {
	var j job
	if err := json.Unmarshal(l.Payload, &j); err != nil {
		return nil, fmt.Errorf("decode operation: %w", err)
	}
	svc, err := w.caller.Context(ctx, l.Org)
	if err != nil {
		return nil, err
	}
	ca, err := w.access.ClusterAccess(svc, l.Org, l.Target.Cluster)
	if err != nil {
		return nil, clusterError(l.Target.Cluster, err)
	}
	access := helmexec.AccessFromProto(ca)
	event := func(phase, msg string) {
		if err := w.ops.Event(ctx, l.ID, l.Token, phase, msg); err != nil && !errors.Is(err, context.Canceled) {
			log.DebugContext(ctx, "operation event", "error", err)
		}
	}
	// earlier is the revision an interrupted attempt had already made.
	var earlier *release.Release
	if l.Attempt > 1 {
		// A worker died during an earlier attempt: settle what Helm was
		// left doing before trying again.
		did, err := w.exec.Recover(ctx, access, l.Target.Namespace, l.Target.Release)
		if err != nil && !errors.Is(err, helmexec.ErrReleaseNotFound) {
			return nil, fmt.Errorf("recover release: %w", err)
		}
		if did.Marked != 0 {
			event("recovering", "release recovered after an interrupted attempt: "+did.String())
			w.auditRecovery(ctx, l, log, fmt.Sprintf("operation %s was interrupted (attempt %d); %s", l.ID, l.Attempt-1, did))
		}
		// The attempt may have died after Helm finished: finish with what
		// it made rather than make a second revision.
		switch l.Kind {
		case ops.KindInstall, ops.KindUpgrade, ops.KindDeployApplication, ops.KindLaunchInstance, ops.KindRollback, ops.KindRollbackApplication:
			earlier, err = w.earlierAttempt(ctx, l, access)
		case ops.KindUninstall:
			earlier, err = w.uninstalledEarlier(ctx, l, access)
		}
		if err != nil {
			return nil, err
		}
		if earlier != nil {
			event("recording", fmt.Sprintf("revision %d was made by an interrupted attempt of this operation", earlier.Version))
		}
		if l.LastAttempt && earlier == nil {
			// Were this attempt interrupted too, nobody would settle the
			// release: stop here with it settled.
			settled := did.String()
			if settled == "" {
				settled = "it was not pending"
			}
			return nil, fmt.Errorf("%w: interrupted %d times; gave up with the release settled (%s)", errGaveUp, l.Attempt-1, settled)
		}
	}
	// Helm refuses to act on a release it left pending. Under this
	// operation's lease no other Slipway writer runs, so the pending
	// revision was abandoned: settle it and act, rather than answer
	// Helm's "another operation is in progress".
	settle := func(act func() (*release.Release, error)) (*release.Release, error) {
		rel, err := act()
		if !errors.Is(err, helmexec.ErrPending) {
			return rel, err
		}
		did, rerr := w.exec.Recover(ctx, access, l.Target.Namespace, l.Target.Release)
		if rerr != nil {
			return nil, fmt.Errorf("%w (and recovering it failed: %v)", err, rerr)
		}
		event("recovering", "the release was left pending by a writer that is gone: "+did.String())
		w.auditRecovery(ctx, l, log, fmt.Sprintf("found pending before operation %s could run; %s", l.ID, did))
		return act()
	}
	req := helmexec.Request{
		Access: access, Namespace: l.Target.Namespace, Release: l.Target.Release, Values: j.Values,
		Wait: j.Options.Wait, Timeout: j.Options.Timeout, Atomic: j.Options.Atomic, CreateNamespace: j.Options.CreateNamespace,
		DryRun: j.Options.DryRun, ReuseValues: j.Options.ReuseValues, ResetValues: j.Options.ResetValues, Description: j.Options.Description,
		Operation: l.ID, Progress: event,
	}
	var (
		rel         *release.Release
		source      string
		chartDigest string
	)
	switch l.Kind {
	case ops.KindInstall, ops.KindUpgrade, ops.KindDeployApplication, ops.KindLaunchInstance:
		if j.Chart == nil {
			return nil, fmt.Errorf("%w: operation names no chart", helmexec.ErrInvalidRequest)
		}
		if l.Kind == ops.KindLaunchInstance {
			// Its own namespace, labelled as the instance's (instances_worker.go).
			if err := w.prepareInstance(ctx, l, access, event); err != nil {
				return nil, err
			}
		}
		event("resolving", "chart "+j.Chart.String())
		ch, src, digest, err := w.chart(svc, l.Org, *j.Chart)
		if err != nil {
			return nil, err
		}
		req.Chart, source, chartDigest = ch, src, digest
		if earlier != nil {
			rel = earlier
			break
		}
		if err := w.checkPlanned(ctx, access, l, j, digest); err != nil {
			return nil, err
		}
		// An application deploy is `helm upgrade --install`; so is a retry
		// of an install an interrupted attempt may have started.
		if l.Kind == ops.KindInstall && l.Attempt == 1 {
			rel, err = settle(func() (*release.Release, error) { return w.exec.Install(ctx, req) })
			if errors.Is(err, helmexec.ErrReleaseExists) {
				// A name uninstalled with its history kept: Helm's install
				// refuses it, an upgrade installs it anew.
				if cur, gerr := w.exec.Get(ctx, access, l.Target.Namespace, l.Target.Release, 0); gerr == nil && cur.Info != nil && cur.Info.Status == release.StatusUninstalled {
					rel, err = w.exec.Upgrade(ctx, req)
				}
			}
		} else {
			rel, err = settle(func() (*release.Release, error) { return w.exec.Upgrade(ctx, req) })
		}
		if err != nil {
			return nil, err
		}
	case ops.KindRollback, ops.KindRollbackApplication:
		if rel = earlier; rel == nil {
			if rel, err = settle(func() (*release.Release, error) { return w.exec.Rollback(ctx, req, j.Revision) }); err != nil {
				return nil, err
			}
		}
		// The new revision runs what the one rolled back to ran.
		from := j.Revision
		if from == 0 {
			from = rel.Version - 2
		}
		if old, err := w.ledger.Get(ctx, ReleaseKey{l.Org, l.Target.Cluster, l.Target.Namespace, l.Target.Release}, from); err == nil {
			j.Images, source, chartDigest = old.Images, old.ChartSource, old.ChartDigest
		}
	case ops.KindUninstall:
		if rel = earlier; rel == nil {
			if rel, err = w.exec.Uninstall(ctx, req, j.KeepHistory); err != nil {
				return nil, err
			}
		}
	case ops.KindDeleteInstance:
		// Uninstall, recorded, and the namespace deleted (instances_worker.go).
		return w.deleteInstance(ctx, l, j, req, access, event)
	case kindCorrectDrift:
		// No Helm action and no new revision (drift_correct.go).
		return w.correctDrift(ctx, l, access, j, event, log)
	case kindRecover:
		did, err := w.exec.Recover(ctx, access, l.Target.Namespace, l.Target.Release)
		if err != nil {
			return nil, fmt.Errorf("recover release: %w", err)
		}
		if did.Marked == 0 {
			// Nothing changed: the latest revision stays as it was
			// recorded, not claimed by this operation.
			event("recovering", "not pending: nothing to do")
			cur, err := w.ledger.Get(ctx, ReleaseKey{l.Org, l.Target.Cluster, l.Target.Namespace, l.Target.Release}, 0)
			if err != nil {
				return nil, notFound(err, l.Target.Namespace, l.Target.Release)
			}
			return encodeResult(cur)
		}
		event("recovering", did.String())
		if j.Found != "" {
			w.auditRecovery(ctx, l, log, fmt.Sprintf("found %s with no writer; %s (operation %s)", j.Found, did, l.ID))
		}
		if rel, err = w.exec.Get(ctx, access, l.Target.Namespace, l.Target.Release, 0); err != nil {
			return nil, err
		}
		if did.RolledBackTo != 0 {
			// The new revision runs what the one rolled back to ran.
			if old, err := w.ledger.Get(ctx, ReleaseKey{l.Org, l.Target.Cluster, l.Target.Namespace, l.Target.Release}, did.RolledBackTo); err == nil {
				j.Images, source, chartDigest = old.Images, old.ChartSource, old.ChartDigest
			}
		}
	default:
		return nil, fmt.Errorf("%w: operation kind %s", ErrUnsupported, l.Kind)
	}
	if j.Options.DryRun {
		return encodeResult(toRevision(l.Org, l.Target.Cluster, rel))
	}
	event("recording", "recording the revision")
	top, err := w.record(ctx, l, access, rel, source, chartDigest, j)
	if err != nil {
		return nil, err
	}
	return encodeResult(top)
}

// auditRecovery records a recovery nobody asked for in the org's audit
// log (the releases service's part of it, which the gateway merges in).
func (w *Worker) auditRecovery(ctx context.Context, l ops.Lease, log *slog.Logger, detail string) {
	e := AuditEvent{
		Org: l.Org, Actor: identity.ServiceSubject(w.caller.Service()), Action: actionRecover,
		Target: releasePath(l.Org, l.Target.Cluster, l.Target.Namespace, l.Target.Release), Result: 200, Detail: detail,
	}
	if err := w.ledger.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		log.ErrorContext(ctx, "audit a recovery", "error", err, "detail", detail)
	}
}

// resync records the release's revisions as Helm has them, after a failed
// action, so lists and history show what the cluster runs.
func (w *Worker) resync(ctx context.Context, l ops.Lease, log *slog.Logger) {
	svc, err := w.caller.Context(ctx, l.Org)
	if err != nil {
		return
	}
	ca, err := w.access.ClusterAccess(svc, l.Org, l.Target.Cluster)
	if err != nil {
		return
	}
	hist, err := w.exec.History(ctx, helmexec.AccessFromProto(ca), l.Target.Namespace, l.Target.Release, w.opts.MaxStore)
	if err != nil || len(hist) == 0 {
		return
	}
	var revs []Revision
	for _, h := range hist {
		revs = append(revs, toRevision(l.Org, l.Target.Cluster, h))
	}
	if err := w.ledger.Record(ctx, revs); err != nil {
		log.WarnContext(ctx, "record release after a failed operation", "error", err)
	}
}

// chart fetches and loads the chart the operation deploys, and says
// where it came from (the ledger's chart source) and its digest.
func (w *Worker) chart(ctx context.Context, org string, ref ChartRef) (*chart.Chart, string, string, error) {
	var (
		data           []byte
		digest, source string
		err            error
	)
	if ref.Upload != "" {
		digest = ref.Upload
		if data, err = w.ledger.Upload(ctx, org, digest); errors.Is(err, errUploadGone) {
			err = fmt.Errorf("%w: %v", helmexec.ErrInvalidRequest, err)
		}
	} else {
		var version string
		version, digest, data, err = w.charts.Archive(ctx, org, ref)
		source = "catalog:" + ref.Repository + "/" + ref.Chart + "@" + version
		if ref.OCI != "" {
			source = "oci:" + ref.OCI
		}
	}
	if err != nil {
		return nil, "", "", err
	}
	ch, err := chartarchive.Load(data, chartarchive.Limits{})
	if err != nil {
		return nil, "", "", fmt.Errorf("%w: load %s: %v", helmexec.ErrInvalidRequest, ref, err)
	}
	if ref.Upload != "" {
		source = "upload:" + ch.Name() + "@" + ch.Metadata.Version
	}
	return ch, source, digest, nil
}

// record writes the release's revisions as Helm now has them to the
// ledger (the new one carrying the operation), and returns the newest.
func (w *Worker) record(ctx context.Context, l ops.Lease, a helmexec.Access, rel *release.Release, source, digest string, j job) (Revision, error) {
	var revs []Revision
	hist, err := w.exec.History(ctx, a, l.Target.Namespace, l.Target.Release, w.opts.MaxStore)
	switch {
	case errors.Is(err, helmexec.ErrReleaseNotFound):
		// Uninstalled without history: the ledger keeps the record.
	case err != nil:
		return Revision{}, fmt.Errorf("read release history: %w", err)
	}
	for _, h := range hist {
		revs = append(revs, toRevision(l.Org, l.Target.Cluster, h))
	}
	made := toRevision(l.Org, l.Target.Cluster, rel)
	made.Operation, made.Creator, made.ChartSource, made.ChartDigest = l.ID, l.Creator, source, digest
	made.Application, made.Target, made.Images = j.Application, j.Target, j.Images
	if made.Application == "" {
		// A change through the deployments routes (rollback, upgrade,
		// uninstall) of an application's release stays the application's.
		if prev, err := w.ledger.Get(ctx, ReleaseKey{l.Org, l.Target.Cluster, l.Target.Namespace, l.Target.Release}, 0); err == nil {
			made.Application, made.Target = prev.Application, prev.Target
		}
	}
	if len(hist) == 0 {
		made.Status = StatusUninstalled
	}
	revs = append(revs, made)
	if err := w.ledger.Record(ctx, revs); err != nil {
		return Revision{}, err
	}
	return made, nil
}

// toRevision is Helm's release as a ledger revision.
func toRevision(org, cluster string, r *release.Release) Revision {
	// Not the operation label: the helm CLI copies the last revision's
	// labels onto the revisions it makes. Only record names the operation.
	rev := Revision{Org: org, Cluster: cluster, Namespace: r.Namespace, Name: r.Name, Revision: r.Version, Values: r.Config, Manifest: r.Manifest}
	if r.Info != nil {
		rev.Status, rev.Description, rev.Notes = statusOf(r.Info.Status.String()), r.Info.Description, r.Info.Notes
		rev.Created, rev.Updated = r.Info.FirstDeployed.Time.UTC(), r.Info.LastDeployed.Time.UTC()
		if !r.Info.Deleted.IsZero() {
			rev.Updated = r.Info.Deleted.Time.UTC()
		}
	}
	if r.Chart != nil && r.Chart.Metadata != nil {
		rev.Chart, rev.ChartVersion, rev.AppVersion = r.Chart.Metadata.Name, r.Chart.Metadata.Version, r.Chart.Metadata.AppVersion
	}
	if r.Chart != nil {
		// What `helm get values --all` shows: chart defaults under the
		// supplied values, computed once here rather than on every read.
		if all, err := chartutil.CoalesceValues(r.Chart, r.Config); err == nil {
			rev.Computed = all.AsMap()
		}
	}
	return rev
}

// encodeResult is an operation's result: the revision as the API shows it.
func encodeResult(r Revision) ([]byte, error) {
	return protojson.Marshal(releaseProto(r))
}
