package helmexec

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
)

// Progress phases, as operations.proto's OperationEvent lists them.
const (
	PhaseRendering   = "rendering"
	PhaseHooks       = "hooks"
	PhaseApplying    = "applying"
	PhaseWaiting     = "waiting"
	PhaseRollingBack = "rolling-back"
	// PhaseUninstalling is not in the proto's list, which lets clients
	// expect others.
	PhaseUninstalling = "uninstalling"
)

// op is one call of an Executor method: the Configuration it runs on (a
// copy of the namespace's, with its own storage and kube client wrappers)
// and what it reports.
type op struct {
	ctx       context.Context
	kind      string // install, upgrade, rollback, uninstall, recover
	namespace string
	name      string
	c         *cluster
	cfg       *action.Configuration
	caps      *chartutil.Capabilities // the cluster's, when the op began
	guard     *recordGuard
	operation string // labels the revisions it records (Request.Operation)
	progress  func(phase, message string)
	logf      func(format string, v ...any)
	// rollingBack is set once Helm starts undoing a failed install or
	// upgrade (Atomic): from then on the caller's cancellation is not
	// honoured, so the undo runs to its end.
	rollingBack atomic.Bool
	// skipValidation: the server validates fields itself (see Build).
	skipValidation bool
	// rendered: the rendering event was reported (an upgrade that turns
	// into an install renders once as far as the user is concerned).
	rendered bool
}

// newOp prepares an action on ns of a's cluster.
func (e *Executor) newOp(ctx context.Context, kind string, a Access, ns, name string, progress func(string, string)) (*op, error) {
	if err := validateNames(ns, name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := e.cluster(a)
	if err != nil {
		return nil, err
	}
	n, err := c.namespace(ns)
	if err != nil {
		return nil, err
	}
	o := &op{
		ctx: ctx, kind: kind, namespace: ns, name: name, c: c,
		progress: progress,
		logf:     helmLog(e.o.Log, "cluster", c.id, "namespace", ns, "release", name),
	}
	caps, err := c.capabilities()
	if err != nil {
		return nil, err
	}
	o.caps = caps
	o.skipValidation = !e.clientValidation && serverValidatesFields(caps.KubeVersion.Major, caps.KubeVersion.Minor)
	o.guard = &recordGuard{Driver: n.secrets, o: o, hold: kind != "uninstall" && kind != "recover"}
	cfg := *n.cfg
	cfg.Log = o.logf
	cfg.Capabilities = caps
	// Upgrade and Rollback set MaxHistory on the storage they are given:
	// a Storage of their own keeps concurrent actions from racing on it.
	cfg.Releases = &storage.Storage{Driver: o.guard, MaxHistory: e.o.MaxHistory, Log: o.logf}
	cfg.KubeClient = &actionKube{Client: n.kube, o: o}
	o.cfg = &cfg
	return o, nil
}

func (o *op) report(phase, msg string) {
	o.logf("%s: %s", phase, msg)
	if o.progress != nil {
		o.progress(phase, msg)
	}
}

// phase is p, or rolling-back once the action undoes itself.
func (o *op) phase(p string) string {
	if o.rollingBack.Load() {
		return PhaseRollingBack
	}
	return p
}

// waitContext bounds the action's waits: the caller's context, until the
// action rolls back.
func (o *op) waitContext() context.Context {
	if o.rollingBack.Load() {
		return context.WithoutCancel(o.ctx)
	}
	return o.ctx
}

// noteRecord watches the records Helm writes, to tell when an install or
// upgrade starts to undo itself (Atomic).
func (o *op) noteRecord(rls *release.Release, created bool) {
	if rls.Info == nil || o.rollingBack.Load() {
		return
	}
	switch {
	case created && rls.Info.Status == release.StatusPendingRollback && (o.kind == "install" || o.kind == "upgrade"):
		o.rollingBack.Store(true)
		o.report(PhaseRollingBack, fmt.Sprintf("rolling back: %s", rls.Info.Description))
	case !created && rls.Info.Status == release.StatusUninstalling && o.kind == "install":
		o.rollingBack.Store(true)
		o.report(PhaseRollingBack, "uninstalling the failed install")
	}
}

// serverValidatesFields tells whether the API server supports server-side
// field validation (Kubernetes 1.27 and later). There kubectl's client-side
// OpenAPI validation, which Helm asks for on every Build, only checks that
// the server supports it, and validates nothing: to check, it parses the
// OpenAPI v3 document of every group version in the manifest on every
// Build. Skipping it changes no outcome and saves that work.
func serverValidatesFields(major, minor string) bool {
	ma, err1 := strconv.Atoi(strings.TrimRight(major, "+"))
	mi, err2 := strconv.Atoi(strings.TrimRight(minor, "+"))
	return err1 == nil && err2 == nil && (ma > 1 || ma == 1 && mi >= 27)
}

// helmLog adapts Helm's printf logging to slog at debug level, formatting
// only when debug is enabled.
func helmLog(l *slog.Logger, attrs ...any) func(format string, v ...any) {
	return func(format string, v ...any) {
		if l.Enabled(context.Background(), slog.LevelDebug) {
			l.Debug("helm", append(attrs, "detail", fmt.Sprintf(format, v...))...)
		}
	}
}
