package helmexec

import (
	"context"
	"fmt"

	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
)

// Recover fixes a release whose last revision is stuck pending-install,
// pending-upgrade or pending-rollback because the writer died. Its caller
// has established that no Slipway lease on the release is live, so no
// writer is running.
//
// A stuck install is marked failed (never uninstalled: the caller decides).
// A stuck upgrade or rollback is marked failed and rolled back, without
// waiting, to the newest earlier revision that is deployed (else
// superseded); with none, it is only marked failed. Recover returns what it
// did ("rolled back to 3", "marked 1 failed"), or "" when the release was
// not stuck.
func (e *Executor) Recover(ctx context.Context, a Access, ns, name string) (string, error) {
	if ns == "" {
		ns = "default"
	}
	did, err := e.recover(ctx, a, ns, name)
	return did, wrapErr("recover", ns, name, err)
}

func (e *Executor) recover(ctx context.Context, a Access, ns, name string) (string, error) {
	o, err := e.newOp(ctx, "recover", a, ns, name, nil)
	if err != nil {
		return "", err
	}
	h, err := o.cfg.Releases.History(name)
	if err != nil {
		return "", err
	}
	releaseutil.SortByRevision(h)
	last := h[len(h)-1]
	var what string
	switch last.Info.Status {
	case release.StatusPendingInstall:
		what = "Install"
	case release.StatusPendingUpgrade:
		what = "Upgrade"
	case release.StatusPendingRollback:
		what = "Rollback"
	default:
		return "", nil
	}
	last.SetStatus(release.StatusFailed, what+" interrupted: marked failed by Slipway's recovery")
	if err := o.cfg.Releases.Update(last); err != nil {
		return "", fmt.Errorf("mark revision %d failed: %w", last.Version, err)
	}
	marked := fmt.Sprintf("marked %d failed", last.Version)
	if what == "Install" {
		return marked, nil
	}
	target := restorable(h[:len(h)-1])
	if target == nil {
		return marked, nil
	}
	if _, err := o.rollback(last, target.Version, false, DefaultTimeout, false, ""); err != nil {
		return marked, fmt.Errorf("roll back to %d: %w", target.Version, err)
	}
	return fmt.Sprintf("rolled back to %d", target.Version), nil
}

// restorable is the newest deployed revision of h (sorted oldest first),
// else the newest superseded one: what an interrupted upgrade or rollback
// started from.
func restorable(h []*release.Release) *release.Release {
	for _, want := range []release.Status{release.StatusDeployed, release.StatusSuperseded} {
		for i := len(h) - 1; i >= 0; i-- {
			if h[i].Info.Status == want {
				return h[i]
			}
		}
	}
	return nil
}
