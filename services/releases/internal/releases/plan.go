package releases

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"

	"github.com/slipwayhq/slipway/pkg/chartarchive"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/sqldb"
	"github.com/slipwayhq/slipway/pkg/validate"
	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
	"github.com/slipwayhq/slipway/services/releases/internal/ops"
)

// Errors of plans; errors.go maps them.
var (
	// ErrPlanNotFound: no such plan of the org (or it expired, or it is of
	// another release).
	ErrPlanNotFound = errors.New("plan not found")
	// ErrPlanStale: the release, or the chart's digest, is no longer what
	// the plan was made against.
	ErrPlanStale = errors.New("the release changed since it was planned")
	// ErrPlanInvalid: the change does not render or does not pass the
	// chart's schema or the cluster's checks.
	ErrPlanInvalid = errors.New("the change cannot be deployed")
)

// Bounds of plans.
const (
	planTTL = time.Hour
	// maxPlanDiff caps a plan's diffs in all, far below the 4 MiB a
	// message may have.
	maxPlanDiff = 2 << 20
)

// Plan is a planned upgrade as kept for ApplyPlan: what to deploy, fully
// resolved, and the revision it was planned against.
type Plan struct {
	ID, Org                  string
	Cluster                  string // the cluster's id
	Namespace, Name          string
	Base                     int      // the release's latest revision when planned
	Chart                    ChartRef // pinned: a catalog chart's exact version
	ChartDigest, ChartSource string
	Values                   map[string]any // user-supplied, final
	Options                  Options
	Manifest                 string
	Creator                  string
	Created, Expires         time.Time
}

// ChangeAction is what an upgrade would do to an object: the values of
// ChangeAction in slipway.releases.v1.
type ChangeAction int

// The actions a plan shows.
const (
	ActionCreate ChangeAction = 1
	ActionUpdate ChangeAction = 2
	ActionDelete ChangeAction = 3
)

// ObjectChange is how an upgrade would change one object.
type ObjectChange struct {
	Object ObjectKey
	Action ChangeAction
	Diff   string // unified diff of the YAML, Secret values redacted
}

// ObjectKey names an object of a manifest.
type ObjectKey struct{ APIVersion, Kind, Namespace, Name string }

// PlanResult is a plan as PlanDeployment answers it.
type PlanResult struct {
	Plan                                     Plan
	CurrentChartVersion, PlannedChartVersion string
	ValuesDiff                               string
	Changes                                  []ObjectChange
	Unchanged                                int
	Truncated                                bool
}

// PlanService plans upgrades and applies plans.
type PlanService interface {
	Plan(ctx context.Context, c Change) (PlanResult, error)
	ApplyPlan(ctx context.Context, cluster, namespace, name, planID, idempotencyKey string) (ops.Operation, error)
}

// Planner is PlanService: it renders through the worker's executor and
// charts, and queues on its operation store.
type Planner struct {
	w   *Worker
	now func() time.Time
}

// NewPlanner plans with w's executor, charts and ledger.
func NewPlanner(w *Worker) *Planner { return &Planner{w: w, now: time.Now} }

var _ PlanService = (*Planner)(nil)

// Plan renders c's upgrade as a server-side dry run, keeps it, and
// compares it with the release's latest revision.
func (p *Planner) Plan(ctx context.Context, c Change) (PlanResult, error) {
	caller, err := callerWith(ctx, identity.RoleDeployer)
	if err != nil {
		return PlanResult{}, err
	}
	if c.Namespace == "" {
		c.Namespace = defaultNamespace
	}
	if err := validateChange(ops.KindUpgrade, c); err != nil {
		return PlanResult{}, err
	}
	o := c.Options
	o.DryRun = false
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	vals := map[string]any{}
	if c.ValuesYAML != "" {
		v, err := chartutil.ReadValues([]byte(c.ValuesYAML))
		if err != nil {
			return PlanResult{}, validate.Field("values_yaml", "is not a YAML mapping: %v", err)
		}
		vals = v.AsMap()
	}
	ca, err := p.w.access.ClusterAccess(ctx, caller.Org, c.Cluster)
	if err != nil {
		return PlanResult{}, clusterError(c.Cluster, err)
	}
	key := ReleaseKey{caller.Org, ca.GetClusterId(), c.Namespace, c.Name}
	head, base, err := p.base(ctx, key)
	if err != nil {
		return PlanResult{}, err
	}
	if base == 0 {
		// A plan is of an upgrade, which needs the release.
		return PlanResult{}, fmt.Errorf("%w: %s/%s on cluster %s", ErrReleaseNotFound, c.Namespace, c.Name, c.Cluster)
	}

	var (
		ch             *chart.Chart
		ref            ChartRef
		source, digest string
	)
	if c.Archive != nil {
		if ch, err = chartarchive.Load(c.Archive, uploadLimits); err != nil {
			return PlanResult{}, validate.Field("chart.archive", "%v", err)
		}
		digest = chartarchive.Digest(c.Archive)
		ref, source = ChartRef{Upload: digest}, "upload:"+ch.Name()+"@"+ch.Metadata.Version
	} else {
		svc, err := p.w.caller.Context(ctx, caller.Org)
		if err != nil {
			return PlanResult{}, err
		}
		if ch, source, digest, err = p.w.chart(svc, caller.Org, *c.Chart); err != nil {
			return PlanResult{}, planError(err)
		}
		ref = pinned(*c.Chart, source)
	}
	// Reused values are merged here, and the plan deploys them over the
	// new chart's defaults: the apply then renders exactly what was planned
	// (Helm's own reuse would take the old chart's defaults instead).
	if o.ReuseValues {
		vals = chartutil.CoalesceTables(vals, head.Values)
	}
	o.ReuseValues, o.ResetValues = false, true
	rel, err := p.w.exec.Upgrade(ctx, helmexec.Request{
		Access: helmexec.AccessFromProto(ca), Namespace: c.Namespace, Release: c.Name, Chart: ch, Values: vals,
		Timeout: o.Timeout, CreateNamespace: o.CreateNamespace, DryRun: true, ResetValues: true,
	})
	if err != nil {
		return PlanResult{}, planError(err)
	}

	now := p.now().UTC()
	plan := Plan{
		ID: uuid.NewString(), Org: caller.Org, Cluster: key.Cluster, Namespace: key.Namespace, Name: key.Name, Base: base,
		Chart: ref, ChartDigest: digest, ChartSource: source, Values: rel.Config, Options: o, Manifest: rel.Manifest,
		Creator: caller.Subject, Created: now, Expires: now.Add(planTTL),
	}
	res := PlanResult{Plan: plan}
	if rel.Chart != nil && rel.Chart.Metadata != nil {
		res.PlannedChartVersion = rel.Chart.Metadata.Version
	}
	res.CurrentChartVersion = head.ChartVersion
	if res.ValuesDiff, err = valuesDiff(head.Values, rel.Config); err != nil {
		return PlanResult{}, fmt.Errorf("diff values: %w", err)
	}
	res.Changes, res.Unchanged, res.Truncated = diffManifests(head.Manifest, rel.Manifest, maxPlanDiff-len(res.ValuesDiff))

	if c.Archive != nil {
		if err := p.w.ledger.PutUpload(ctx, caller.Org, digest, c.Archive, now); err != nil {
			return PlanResult{}, err
		}
	}
	if err := p.w.ledger.PutPlan(ctx, plan); err != nil {
		return PlanResult{}, err
	}
	return res, nil
}

// ApplyPlan queues an upgrade deploying exactly what plan planID planned,
// refusing when the release or the chart changed since.
func (p *Planner) ApplyPlan(ctx context.Context, cluster, namespace, name, planID, idempotencyKey string) (ops.Operation, error) {
	caller, err := callerWith(ctx, identity.RoleDeployer)
	if err != nil {
		return ops.Operation{}, err
	}
	if namespace == "" {
		namespace = defaultNamespace
	}
	if err := validate.First(validate.DNSLabel("name", name), validate.DNSLabel("namespace", namespace), validate.MaxLen("cluster", cluster, 128),
		validate.MaxLen("plan_id", planID, 64), validate.MaxLen("idempotency_key", idempotencyKey, 255)); err != nil {
		return ops.Operation{}, err
	}
	if planID == "" {
		return ops.Operation{}, validate.Field("plan_id", "required: the plan_id PlanDeployment answered")
	}
	ca, err := p.w.access.ClusterAccess(ctx, caller.Org, cluster)
	if err != nil {
		return ops.Operation{}, clusterError(cluster, err)
	}
	key := ReleaseKey{caller.Org, ca.GetClusterId(), namespace, name}
	plan, err := p.w.ledger.Plan(ctx, caller.Org, planID, p.now())
	if err != nil {
		return ops.Operation{}, err
	}
	if plan.Cluster != key.Cluster || plan.Namespace != key.Namespace || plan.Name != key.Name {
		// Another release's plan answers as a missing one: a plan id is
		// good for the release it was made for only.
		return ops.Operation{}, fmt.Errorf("%w: %s for %s/%s", ErrPlanNotFound, planID, namespace, name)
	}
	chartRef := plan.Chart
	j := job{Chart: &chartRef, Values: plan.Values, Options: plan.Options, Plan: plan.ID, PlanBase: plan.Base, PlanDigest: plan.ChartDigest}
	payload, err := json.Marshal(j)
	if err != nil {
		return ops.Operation{}, fmt.Errorf("encode operation: %w", err)
	}
	// Applying never queues behind another writer: what that one does
	// would make the plan stale.
	req := ops.EnqueueRequest{
		Org: caller.Org, Kind: ops.KindUpgrade, Target: ops.Target{Cluster: key.Cluster, Namespace: key.Namespace, Release: key.Name},
		Payload: payload, Creator: caller.Subject, IdempotencyKey: idempotencyKey, NoQueue: true,
	}
	if op, found, err := p.w.ops.Replay(ctx, req); err != nil || found {
		return op, err
	}
	if _, base, err := p.base(ctx, key); err != nil {
		return ops.Operation{}, err
	} else if base != plan.Base {
		return ops.Operation{}, fmt.Errorf("%w: %s/%s is at revision %d, the plan was made against revision %d; plan again", ErrPlanStale, namespace, name, base, plan.Base)
	}
	if plan.Chart.Upload == "" {
		// The catalog resolves again when the operation runs (and it checks
		// again); asking now answers a moved chart at once.
		svc, err := p.w.caller.Context(ctx, caller.Org)
		if err != nil {
			return ops.Operation{}, err
		}
		_, digest, _, err := p.w.charts.Archive(svc, caller.Org, plan.Chart)
		if err != nil {
			return ops.Operation{}, planError(err)
		}
		if digest != plan.ChartDigest {
			return ops.Operation{}, fmt.Errorf("%w: chart %s now resolves to digest %s, the plan was made with %s; plan again", ErrPlanStale, plan.Chart, digest, plan.ChartDigest)
		}
	}
	op, _, err := p.w.ops.Enqueue(ctx, req)
	if err != nil {
		return ops.Operation{}, err
	}
	p.w.Wake()
	return op, nil
}

// base returns the release's latest revision in the ledger and its
// number, 0 when there is none (or it was uninstalled).
func (p *Planner) base(ctx context.Context, k ReleaseKey) (Revision, int, error) {
	head, err := p.w.ledger.Get(ctx, k, 0)
	switch {
	case errors.Is(err, ErrReleaseNotFound):
		return Revision{}, 0, nil
	case err != nil:
		return Revision{}, 0, fmt.Errorf("read ledger: %w", err)
	case head.Status == StatusUninstalled:
		return head, 0, nil
	}
	return head, head.Revision, nil
}

// checkPlanned stops an applied plan's operation when, by the time it
// runs, the release or the chart's digest is not what was planned.
func (w *Worker) checkPlanned(ctx context.Context, a helmexec.Access, l ops.Lease, j job, digest string) error {
	if j.Plan == "" {
		return nil
	}
	if digest != j.PlanDigest {
		return fmt.Errorf("%w: chart %s now resolves to digest %s, plan %s was made with %s", ErrPlanStale, j.Chart, digest, j.Plan, j.PlanDigest)
	}
	cur := 0
	rel, err := w.exec.Get(ctx, a, l.Target.Namespace, l.Target.Release, 0)
	switch {
	case errors.Is(err, helmexec.ErrReleaseNotFound):
	case err != nil:
		return fmt.Errorf("read release: %w", err)
	case rel.Info == nil || rel.Info.Status != release.StatusUninstalled:
		cur = rel.Version
	}
	if cur != j.PlanBase {
		return fmt.Errorf("%w: the release is at revision %d, plan %s was made against revision %d", ErrPlanStale, cur, j.Plan, j.PlanBase)
	}
	return nil
}

// pinned is ref with a catalog chart's version constraint replaced by
// the version it resolved to (source is "catalog:repo/chart@version").
func pinned(ref ChartRef, source string) ChartRef {
	if ref.OCI == "" && ref.Upload == "" {
		if i := strings.LastIndex(source, "@"); i >= 0 {
			ref.Version = source[i+1:]
		}
	}
	return ref
}

// planError is err of a chart fetch or a dry run as a plan answers it.
func planError(err error) error {
	switch {
	case errors.Is(err, helmexec.ErrPending):
		return fmt.Errorf("%w: %v", ErrPlanStale, err)
	case errors.Is(err, helmexec.ErrInvalidAccess), errors.Is(err, helmexec.ErrTimeout), errors.Is(err, ErrDependencyUnavailable),
		errors.Is(err, ErrClusterNotFound), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	// A chart that does not render, values the chart's schema refuses, an
	// object the cluster's dry run refuses: the request's doing.
	return fmt.Errorf("%w: %v", ErrPlanInvalid, err)
}

// PutPlan keeps a plan, and forgets the expired ones.
func (l *Ledger) PutPlan(ctx context.Context, p Plan) error {
	chartJSON, err := json.Marshal(p.Chart)
	if err != nil {
		return fmt.Errorf("encode plan: %w", err)
	}
	vals, err := jsonText(p.Values)
	if err != nil {
		return fmt.Errorf("encode plan: %w", err)
	}
	opts, err := json.Marshal(p.Options)
	if err != nil {
		return fmt.Errorf("encode plan: %w", err)
	}
	return l.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, l.db.Rebind(`DELETE FROM plans WHERE expire_at < ?`), sqldb.Micros(p.Created)); err != nil {
			return fmt.Errorf("delete expired plans: %w", err)
		}
		_, err := tx.ExecContext(ctx, l.db.Rebind(`INSERT INTO plans (org, id, cluster, namespace, name, base_revision, chart_json, chart_digest,
			chart_source, values_json, options_json, manifest, creator, created_at, expire_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			p.Org, p.ID, p.Cluster, p.Namespace, p.Name, p.Base, string(chartJSON), p.ChartDigest, p.ChartSource, vals, string(opts), p.Manifest,
			p.Creator, sqldb.Micros(p.Created), sqldb.Micros(p.Expires))
		if err != nil {
			return fmt.Errorf("store plan: %w", err)
		}
		return nil
	})
}

// Plan returns org's plan id, unless it expired by now.
func (l *Ledger) Plan(ctx context.Context, org, id string, now time.Time) (Plan, error) {
	var (
		p                     = Plan{ID: id, Org: org}
		chartJSON, vals, opts string
		created, expires      int64
	)
	err := l.db.QueryRowContext(ctx, l.db.Rebind(`SELECT cluster, namespace, name, base_revision, chart_json, chart_digest, chart_source, values_json,
		options_json, manifest, creator, created_at, expire_at FROM plans WHERE org = ? AND id = ? AND expire_at > ?`), org, id, sqldb.Micros(now)).
		Scan(&p.Cluster, &p.Namespace, &p.Name, &p.Base, &chartJSON, &p.ChartDigest, &p.ChartSource, &vals, &opts, &p.Manifest, &p.Creator, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Plan{}, fmt.Errorf("%w: %s (plans are kept for %s)", ErrPlanNotFound, id, planTTL)
	}
	if err != nil {
		return Plan{}, fmt.Errorf("read plan: %w", err)
	}
	if err := json.Unmarshal([]byte(chartJSON), &p.Chart); err != nil {
		return Plan{}, fmt.Errorf("decode plan: %w", err)
	}
	if err := json.Unmarshal([]byte(vals), &p.Values); err != nil {
		return Plan{}, fmt.Errorf("decode plan: %w", err)
	}
	if err := json.Unmarshal([]byte(opts), &p.Options); err != nil {
		return Plan{}, fmt.Errorf("decode plan: %w", err)
	}
	p.Created, p.Expires = sqldb.FromMicros(created), sqldb.FromMicros(expires)
	return p, nil
}
