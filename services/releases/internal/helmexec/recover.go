package helmexec

import (
	"context"
	"fmt"
	"strings"

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
// did, the zero Recovery when the release was not stuck.
func (e *Executor) Recover(ctx context.Context, a Access, ns, name string) (Recovery, error) {
	if ns == "" {
		ns = "default"
	}
	did, err := e.recover(ctx, a, ns, name)
	return did, wrapErr("recover", ns, name, err)
}

// Recovery is what Recover did.
type Recovery struct {
	Marked       int // the revision marked failed; 0: the release was not stuck
	Status       string
	RolledBackTo int // the revision rolled back to; 0: none
}

// String says it for people: "marked 4 failed (was pending-upgrade),
// rolled back to 3"; "" for nothing done.
func (r Recovery) String() string {
	switch {
	case r.Marked == 0:
		return ""
	case r.RolledBackTo == 0:
		return fmt.Sprintf("marked %d failed (was %s)", r.Marked, r.Status)
	}
	return fmt.Sprintf("marked %d failed (was %s), rolled back to %d", r.Marked, r.Status, r.RolledBackTo)
}

func (e *Executor) recover(ctx context.Context, a Access, ns, name string) (Recovery, error) {
	var did Recovery
	o, err := e.newOp(ctx, "recover", a, ns, name, nil)
	if err != nil {
		return did, err
	}
	h, err := o.cfg.Releases.History(name)
	if err != nil {
		return did, err
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
		return did, nil
	}
	status := last.Info.Status.String()
	last.SetStatus(release.StatusFailed, what+interruptedNote)
	if err := o.cfg.Releases.Update(last); err != nil {
		return did, fmt.Errorf("mark revision %d failed: %w", last.Version, err)
	}
	did = Recovery{Marked: last.Version, Status: status}
	if what == "Install" {
		return did, nil
	}
	target := restorable(h[:len(h)-1])
	if target == nil {
		return did, nil
	}
	if _, err := o.rollback(last, target.Version, false, DefaultTimeout, false, ""); err != nil {
		return did, fmt.Errorf("roll back to %d: %w", target.Version, err)
	}
	did.RolledBackTo = target.Version
	return did, nil
}

// interruptedNote ends the description of a revision Recover marked failed.
const interruptedNote = " interrupted: marked failed by Slipway's recovery"

// Interrupted reports whether r is a revision Recover marked failed: its
// action was cut short, not refused.
func Interrupted(r *release.Release) bool {
	return r.Info != nil && r.Info.Status == release.StatusFailed && strings.HasSuffix(r.Info.Description, interruptedNote)
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
