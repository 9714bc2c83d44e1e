package helmexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Install installs r's chart as a new release. It fails with
// ErrReleaseExists when the name is in use (ErrPending when its last
// revision is stuck pending). On a failure after the release was recorded
// (a wait that timed out, say) it returns Helm's failed release too.
func (e *Executor) Install(ctx context.Context, r Request) (*release.Release, error) {
	rel, err := e.install(ctx, r)
	return rel, wrapErr("install", r.namespace(), r.Release, err)
}

func (e *Executor) install(ctx context.Context, r Request) (*release.Release, error) {
	if r.Chart == nil {
		return nil, errInvalid("no chart")
	}
	o, err := e.newOp(ctx, "install", r.Access, r.namespace(), r.Release, r.Progress)
	if err != nil {
		return nil, err
	}
	o.operation = r.Operation
	return o.install(&r, false)
}

// Upgrade upgrades r's release, or installs it when it does not exist or
// was uninstalled with its history kept (helm upgrade --install). Values
// start from the chart's defaults unless r.ReuseValues.
func (e *Executor) Upgrade(ctx context.Context, r Request) (*release.Release, error) {
	rel, err := e.upgrade(ctx, r)
	return rel, wrapErr("upgrade", r.namespace(), r.Release, err)
}

func (e *Executor) upgrade(ctx context.Context, r Request) (*release.Release, error) {
	if r.Chart == nil {
		return nil, errInvalid("no chart")
	}
	if r.ReuseValues && r.ResetValues {
		return nil, errInvalid("reuse values and reset values exclude each other")
	}
	o, err := e.newOp(ctx, "upgrade", r.Access, r.namespace(), r.Release, r.Progress)
	if err != nil {
		return nil, err
	}
	o.operation = r.Operation
	u := action.NewUpgrade(o.cfg)
	u.Namespace = o.namespace
	u.Wait = r.Wait || r.Atomic
	u.WaitForJobs = u.Wait
	u.Atomic = r.Atomic
	u.Timeout = r.timeout()
	u.DryRun = r.DryRun
	if r.DryRun {
		u.DryRunOption = "server"
	}
	u.ReuseValues = r.ReuseValues
	// Helm would reuse the current values when none are given; Slipway
	// starts from the chart's defaults unless asked to reuse.
	u.ResetValues = !r.ReuseValues
	u.Description = r.Description
	u.MaxHistory = o.cfg.Releases.MaxHistory
	o.reportRendering(&r)
	rel, err := u.Run(o.name, cloneChart(r.Chart), r.values())
	if errors.Is(err, driver.ErrNoDeployedReleases) {
		// Nothing was done: install instead, as helm upgrade --install.
		h, herr := o.cfg.Releases.History(o.name)
		switch {
		case errors.Is(herr, driver.ErrReleaseNotFound):
			o.kind = "install"
			return o.install(&r, false)
		case herr == nil && len(h) > 0 && newest(h).Info.Status == release.StatusUninstalled:
			o.kind = "install"
			return o.install(&r, true)
		}
	}
	if err != nil {
		return rel, err
	}
	if r.DryRun {
		if err := checkRecord(rel); err != nil {
			return nil, err
		}
	}
	return rel, nil
}

// install runs Helm's install; replace reuses the name of a release
// uninstalled with its history kept.
func (o *op) install(r *Request, replace bool) (*release.Release, error) {
	newInstall := func(cfg *action.Configuration, dryRun bool) *action.Install {
		i := action.NewInstall(cfg)
		i.Namespace = o.namespace
		i.ReleaseName = o.name
		i.Wait = r.Wait || r.Atomic
		i.WaitForJobs = i.Wait
		i.Atomic = r.Atomic
		i.Timeout = r.timeout()
		i.Replace = replace
		i.Description = r.Description
		i.DryRun = dryRun
		if dryRun {
			i.DryRunOption = "server"
		}
		// The namespace is created by the storage guard, once the record
		// is known to fit (see recordGuard).
		i.CreateNamespace = false
		return i
	}
	o.reportRendering(r)
	ch := cloneChart(r.Chart)
	if !r.DryRun && len(ch.CRDObjects()) > 0 {
		// Helm creates a chart's CRDs before it records the release. A
		// render that contacts nothing (Helm's printing kube client, memory
		// storage) tells first whether the record fits.
		scratch := *o.cfg
		scratch.KubeClient = &kubefake.PrintingKubeClient{Out: io.Discard}
		scratch.Releases = storage.Init(driver.NewMemory())
		i := newInstall(&scratch, true)
		i.DryRunOption = "client"
		i.Wait, i.WaitForJobs, i.Atomic = false, false, false
		dry, err := i.Run(cloneChart(r.Chart), r.values())
		if err != nil {
			return nil, err
		}
		if err := checkRecord(dry); err != nil {
			return nil, err
		}
		// Helm rediscovers once it has created the CRDs.
		o.cfg.Capabilities = nil
	}
	if r.CreateNamespace && !r.DryRun {
		o.guard.before = o.ensureNamespace
	}
	rel, err := newInstall(o.cfg, r.DryRun).Run(ch, r.values())
	if o.cfg.Capabilities != nil && o.cfg.Capabilities != o.caps {
		o.c.setCapabilities(o.cfg.Capabilities)
	}
	if err != nil {
		if kindOf(err) == ErrReleaseExists {
			if last, lerr := o.cfg.Releases.Last(o.name); lerr == nil && last.Info.Status.IsPending() {
				return nil, fmt.Errorf("%w: revision %d is %s", ErrPending, last.Version, last.Info.Status)
			}
		}
		return rel, err
	}
	if r.DryRun {
		if err := checkRecord(rel); err != nil {
			return nil, err
		}
	}
	return rel, nil
}

func (o *op) reportRendering(r *Request) {
	if md := r.Chart.Metadata; md != nil && !o.rendered {
		o.rendered = true
		o.report(PhaseRendering, fmt.Sprintf("rendering chart %s %s", md.Name, md.Version))
	}
}

// ensureNamespace creates the release's namespace unless it exists.
func (o *op) ensureNamespace() error {
	nss := o.c.clientset.CoreV1().Namespaces()
	_, err := nss.Create(o.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   o.namespace,
		Labels: map[string]string{"name": o.namespace}, // as Helm labels it
	}}, metav1.CreateOptions{})
	switch {
	case err == nil:
		o.report(PhaseApplying, fmt.Sprintf("created namespace %s", o.namespace))
		return nil
	case apierrors.IsAlreadyExists(err):
		return nil
	case apierrors.IsForbidden(err):
		// Allowed to use the namespace but not to create namespaces.
		if _, gerr := nss.Get(o.ctx, o.namespace, metav1.GetOptions{}); gerr == nil {
			return nil
		}
	}
	return fmt.Errorf("create namespace %s: %w", o.namespace, err)
}

// Rollback rolls r's release back to revision (0: the one before the
// current). It uses r's Access, Namespace, Release, Wait, Timeout, DryRun
// and Description; it fails with ErrPending on a release stuck pending
// (see Recover). A dry run returns the revision it would make.
func (e *Executor) Rollback(ctx context.Context, r Request, revision int) (*release.Release, error) {
	rel, err := e.rollback(ctx, r, revision)
	return rel, wrapErr("rollback", r.namespace(), r.Release, err)
}

func (e *Executor) rollback(ctx context.Context, r Request, revision int) (*release.Release, error) {
	if revision < 0 {
		return nil, errInvalid("revision %d", revision)
	}
	o, err := e.newOp(ctx, "rollback", r.Access, r.namespace(), r.Release, r.Progress)
	if err != nil {
		return nil, err
	}
	o.operation = r.Operation
	last, err := o.cfg.Releases.Last(o.name)
	if err != nil {
		return nil, err
	}
	// Helm would roll back over a pending revision and leave it pending.
	if last.Info.Status.IsPending() {
		return nil, fmt.Errorf("%w: revision %d is %s", ErrPending, last.Version, last.Info.Status)
	}
	target := revision
	if target == 0 {
		target = last.Version - 1
	}
	return o.rollback(last, target, r.Wait, r.timeout(), r.DryRun, r.Description)
}

func (o *op) rollback(last *release.Release, target int, wait bool, timeout time.Duration, dryRun bool, description string) (*release.Release, error) {
	rb := action.NewRollback(o.cfg)
	rb.Version = target
	rb.Wait = wait
	rb.WaitForJobs = wait
	rb.Timeout = timeout
	rb.DryRun = dryRun
	rb.MaxHistory = o.cfg.Releases.MaxHistory
	o.report(PhaseApplying, fmt.Sprintf("rolling back from revision %d to %d", last.Version, target))
	if err := rb.Run(o.name); err != nil {
		return o.guard.created, err
	}
	if dryRun {
		// Helm returns nothing: the revision it would have made.
		prev, err := o.cfg.Releases.Get(o.name, target)
		if err != nil {
			return nil, err
		}
		rel := *prev
		info := *prev.Info
		info.Status = release.StatusPendingRollback
		info.Description = "Dry run complete"
		info.FirstDeployed = last.Info.FirstDeployed
		rel.Info, rel.Version = &info, last.Version+1
		return &rel, nil
	}
	rel := o.guard.created
	if rel == nil {
		return nil, errors.New("helm recorded no revision")
	}
	if description != "" {
		rel.Info.Description = description
		if err := o.cfg.Releases.Update(rel); err != nil {
			return rel, fmt.Errorf("record the description: %w", err)
		}
	}
	return rel, nil
}

// Uninstall uninstalls r's release, keeping its history when keepHistory.
// It uses r's Access, Namespace, Release, Wait (for the resources to be
// gone), Timeout, DryRun and Description.
func (e *Executor) Uninstall(ctx context.Context, r Request, keepHistory bool) (*release.Release, error) {
	rel, err := e.uninstall(ctx, r, keepHistory)
	return rel, wrapErr("uninstall", r.namespace(), r.Release, err)
}

func (e *Executor) uninstall(ctx context.Context, r Request, keepHistory bool) (*release.Release, error) {
	o, err := e.newOp(ctx, "uninstall", r.Access, r.namespace(), r.Release, r.Progress)
	if err != nil {
		return nil, err
	}
	u := action.NewUninstall(o.cfg)
	u.KeepHistory = keepHistory
	u.Wait = r.Wait
	u.Timeout = r.timeout()
	u.DryRun = r.DryRun
	u.Description = r.Description
	u.DeletionPropagation = "background" // Helm's default
	res, err := u.Run(o.name)
	if res == nil {
		return nil, err
	}
	return res.Release, err
}

// Get returns a revision of a release (0: the latest), read from its
// Secret.
func (e *Executor) Get(ctx context.Context, a Access, ns, name string, revision int) (*release.Release, error) {
	rel, err := e.get(ctx, a, ns, name, revision)
	return rel, wrapErr("get", ns, name, err)
}

func (e *Executor) get(ctx context.Context, a Access, ns, name string, revision int) (*release.Release, error) {
	if revision < 0 {
		return nil, errInvalid("revision %d", revision)
	}
	n, err := e.reader(ctx, a, ns, name)
	if err != nil {
		return nil, err
	}
	if revision == 0 {
		return n.cfg.Releases.Last(name)
	}
	return n.cfg.Releases.Get(name, revision)
}

// History returns a release's revisions, oldest first: the newest max of
// them when max > 0, as helm history --max.
func (e *Executor) History(ctx context.Context, a Access, ns, name string, max int) ([]*release.Release, error) {
	h, err := e.history(ctx, a, ns, name, max)
	return h, wrapErr("history", ns, name, err)
}

func (e *Executor) history(ctx context.Context, a Access, ns, name string, max int) ([]*release.Release, error) {
	n, err := e.reader(ctx, a, ns, name)
	if err != nil {
		return nil, err
	}
	h, err := n.cfg.Releases.History(name)
	if err != nil {
		return nil, err
	}
	releaseutil.SortByRevision(h)
	if max > 0 && len(h) > max {
		h = h[len(h)-max:]
	}
	return h, nil
}

// reader returns the namespace's Configuration for reads, which go to
// storage only (Helm's Get action would first check the server is up).
func (e *Executor) reader(ctx context.Context, a Access, ns, name string) (*nsConfig, error) {
	if ns == "" {
		ns = "default"
	}
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
	return c.namespace(ns)
}

func validateNames(ns, name string) error {
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return errInvalid("namespace %q: %s", ns, errs[0])
	}
	if err := chartutil.ValidateReleaseName(name); err != nil {
		return errInvalid("release name %q: %v", name, err)
	}
	return nil
}

func newest(h []*release.Release) *release.Release {
	n := h[0]
	for _, r := range h[1:] {
		if r.Version > n.Version {
			n = r
		}
	}
	return n
}
