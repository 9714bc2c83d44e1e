package releases

import (
	"context"
	"errors"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/release"
	helmtime "helm.sh/helm/v3/pkg/time"

	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
	"github.com/slipwayhq/slipway/services/releases/internal/ops"
)

// errEarlierFailed ends a retried operation whose interrupted attempt had
// already failed in Helm: acting again would make a second revision for
// one operation.
var errEarlierFailed = errors.New("an interrupted attempt of this operation had already failed")

// earlierAttempt is what an interrupted attempt of l left done: the newest
// revision Helm recorded under l's label, when its action had run to its
// end (the worker died after Helm's last write, before the operation was
// marked ended); nil when the action must run (again). A revision the
// recovery marked failed was cut short, not refused, and does not count.
func (w *Worker) earlierAttempt(ctx context.Context, l ops.Lease, a helmexec.Access) (*release.Release, error) {
	hist, err := w.exec.History(ctx, a, l.Target.Namespace, l.Target.Release, 0)
	if errors.Is(err, helmexec.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read release history: %w", err)
	}
	return madeEarlier(hist, l.ID)
}

// madeEarlier is the newest revision of hist that operation op made with
// its action run to its end; an error when that action had failed.
func madeEarlier(hist []*release.Release, op string) (*release.Release, error) {
	var done *release.Release
	for _, r := range helmexec.MadeBy(hist, op) {
		switch {
		case helmexec.Interrupted(r):
		case r.Info != nil && r.Info.Status == release.StatusFailed:
			// An atomic action's undo may follow it: the operation failed.
			return nil, fmt.Errorf("%w: revision %d: %s", errEarlierFailed, r.Version, r.Info.Description)
		default:
			done = r
		}
	}
	return done, nil
}

// uninstalledEarlier is the release as an interrupted uninstall left it,
// when it had finished: uninstalled with its history kept, or gone with
// the ledger still holding it. nil: the uninstall must run.
func (w *Worker) uninstalledEarlier(ctx context.Context, l ops.Lease, a helmexec.Access) (*release.Release, error) {
	cur, err := w.exec.Get(ctx, a, l.Target.Namespace, l.Target.Release, 0)
	switch {
	case err == nil && cur.Info != nil && cur.Info.Status == release.StatusUninstalled:
		return cur, nil
	case err == nil:
		return nil, nil
	case !errors.Is(err, helmexec.ErrReleaseNotFound):
		return nil, err
	}
	head, err := w.ledger.Get(ctx, ReleaseKey{l.Org, l.Target.Cluster, l.Target.Namespace, l.Target.Release}, 0)
	if err != nil || head.Status == StatusUninstalled {
		// Slipway knows no installed release: let Helm say so.
		return nil, nil
	}
	now := helmtime.Time{Time: time.Now()}
	return &release.Release{Name: l.Target.Release, Namespace: l.Target.Namespace, Version: head.Revision,
		Info: &release.Info{Status: release.StatusUninstalled, Description: "Uninstallation complete", Deleted: now, LastDeployed: now}}, nil
}
