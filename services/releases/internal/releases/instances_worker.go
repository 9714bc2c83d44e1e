package releases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
	"github.com/slipwayhq/slipway/services/releases/internal/ops"
)

// namespaceGoneWithin bounds how long a delete waits for the instance's
// namespace to be gone; past it the namespace is left terminating.
const namespaceGoneWithin = 2 * time.Minute

// enqueueInstance queues an operation of kind on an instance's release.
func (w *Worker) enqueueInstance(ctx context.Context, kind ops.Kind, i Instance, creator string, j job, key string) (ops.Operation, error) {
	payload, err := json.Marshal(j)
	if err != nil {
		return ops.Operation{}, fmt.Errorf("encode operation: %w", err)
	}
	op, _, err := w.ops.Enqueue(ctx, ops.EnqueueRequest{Org: i.Org, Kind: kind,
		Target:  ops.Target{Cluster: i.Cluster, Namespace: i.Namespace, Release: i.Release, Application: i.Application, ApplicationTarget: i.Target, Instance: i.ID},
		Payload: payload, Creator: creator, IdempotencyKey: key})
	return op, err
}

// deleteInstanceOp queues the deletion of an instance (behind its launch,
// should that still run) and marks it deleting; one deleting or deleted
// answers with its delete operation. The idempotency key names the
// instance and its last failed delete, if any: every replica's culler and
// every caller asking at once get the same operation.
func (w *Worker) deleteInstanceOp(ctx context.Context, i Instance, creator string) (Instance, ops.Operation, error) {
	for range 2 {
		if i.State == InstanceDeleting || i.State == InstanceDeleted {
			op, err := w.ops.Get(ctx, i.Org, i.DeleteOp)
			return i, op, err
		}
		j := job{Application: i.Application, Options: Options{Wait: true, Timeout: DefaultTimeout, Description: "Instance " + i.ID + " deleted"}}
		op, err := w.enqueueInstance(ctx, ops.KindDeleteInstance, i, creator, j, "slipway-instance-delete:"+i.ID+":"+i.DeleteOp)
		if err != nil {
			return Instance{}, ops.Operation{}, err
		}
		now := storedNow()
		live, err := w.ledger.InstanceDeleting(ctx, i.Org, i.ID, op.ID, now)
		if err != nil {
			return Instance{}, ops.Operation{}, err
		}
		if live {
			i.State, i.DeleteOp = InstanceDeleting, op.ID
			if i.Expires.After(now) {
				i.Expires = now
			}
			w.Wake()
			return i, op, nil
		}
		// Settled meanwhile (by another replica, or the delete just
		// failed): look again.
		if i, err = w.ledger.GetInstance(ctx, i.Org, i.ID); err != nil {
			return Instance{}, ops.Operation{}, err
		}
	}
	return Instance{}, ops.Operation{}, fmt.Errorf("delete instance %s: its state keeps changing", i.ID)
}

// prepareInstance creates a launch's namespace, labelled with the
// instance's id; a namespace of that name that is not the instance's
// fails the launch (it is never used, nor deleted).
func (w *Worker) prepareInstance(ctx context.Context, l ops.Lease, access helmexec.Access, event func(phase, msg string)) error {
	if err := w.ledger.SetInstanceLaunchOp(ctx, l.Org, l.Target.Instance, l.ID); err != nil {
		return err
	}
	// One deleted (or culled) before its launch ran is not installed: its
	// delete, queued behind, finds nothing to remove.
	if i, err := w.ledger.GetInstance(ctx, l.Org, l.Target.Instance); err != nil {
		return err
	} else if i.State != InstanceLaunching {
		return fmt.Errorf("%w: instance %s is %s: not launched", helmexec.ErrInvalidRequest, i.ID, i.State)
	}
	cs, err := w.exec.Clientset(access)
	if err != nil {
		return err
	}
	nss := cs.CoreV1().Namespaces()
	_, err = nss.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: l.Target.Namespace,
		Labels: map[string]string{"name": l.Target.Namespace, instanceLabel: l.Target.Instance}}}, metav1.CreateOptions{})
	switch {
	case err == nil:
		event(helmexec.PhaseApplying, "created namespace "+l.Target.Namespace)
		return nil
	case !apierrors.IsAlreadyExists(err):
		return fmt.Errorf("create namespace %s: %w", l.Target.Namespace, err)
	}
	ns, err := nss.Get(ctx, l.Target.Namespace, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read namespace %s: %w", l.Target.Namespace, err)
	}
	if ns.Labels[instanceLabel] != l.Target.Instance {
		return fmt.Errorf("%w: namespace %s exists and is not instance %s's", helmexec.ErrInvalidRequest, l.Target.Namespace, l.Target.Instance)
	}
	return nil
}

// deleteInstance runs a delete-instance operation: it uninstalls the
// release (recorded in the ledger) and deletes the namespace the launch
// created, waiting a while for it to be gone.
func (w *Worker) deleteInstance(ctx context.Context, l ops.Lease, j job, req helmexec.Request, access helmexec.Access, event func(phase, msg string)) ([]byte, error) {
	var result []byte
	rel, err := w.exec.Uninstall(ctx, req, false)
	switch {
	case errors.Is(err, helmexec.ErrReleaseNotFound):
		event("uninstalling", "no release to uninstall")
	case err != nil:
		return nil, err
	default:
		event("recording", "recording the uninstall")
		made, err := w.record(ctx, l, access, rel, "", "", j)
		if err != nil {
			return nil, err
		}
		if result, err = encodeResult(made); err != nil {
			return nil, err
		}
	}
	cs, err := w.exec.Clientset(access)
	if err != nil {
		return nil, err
	}
	nss := cs.CoreV1().Namespaces()
	ns, err := nss.Get(ctx, l.Target.Namespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return result, nil
	case err != nil:
		return nil, fmt.Errorf("read namespace %s: %w", l.Target.Namespace, err)
	case ns.Labels[instanceLabel] != l.Target.Instance:
		event("deleting", "namespace "+l.Target.Namespace+" is not the instance's: left alone")
		return result, nil
	}
	if ns.DeletionTimestamp == nil {
		uid := ns.UID
		err := nss.Delete(ctx, ns.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("delete namespace %s: %w", ns.Name, err)
		}
		event("deleting", "namespace "+ns.Name+" deleted; waiting for it to be gone")
	}
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, namespaceGoneWithin, true, func(ctx context.Context) (bool, error) {
		_, err := nss.Get(ctx, ns.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, nil
	})
	switch {
	case err == nil:
		event("deleting", "namespace "+ns.Name+" is gone")
	case ctx.Err() != nil:
		return nil, ctx.Err()
	default:
		event("deleting", fmt.Sprintf("namespace %s still terminating after %s: Kubernetes finishes it", ns.Name, namespaceGoneWithin))
	}
	return result, nil
}

// instanceFinished settles the instance of an operation that just ended.
func (w *Worker) instanceFinished(ctx context.Context, l ops.Lease, log *slog.Logger) {
	op, err := w.ops.Get(ctx, l.Org, l.ID)
	if err != nil {
		log.WarnContext(ctx, "read the operation of an instance", "instance", l.Target.Instance, "error", err)
		return
	}
	i, err := w.ledger.GetInstance(ctx, l.Org, l.Target.Instance)
	if err != nil {
		log.WarnContext(ctx, "read an instance", "instance", l.Target.Instance, "error", err)
		return
	}
	w.settleWith(ctx, i, op)
}

// settleInstance brings a launching or deleting instance up to date with
// its operation, and looks for the location of one launched without it
// yet. It answers i as it then is; failures are logged, i is answered as
// it was.
func (w *Worker) settleInstance(ctx context.Context, i Instance) Instance {
	var id string
	switch {
	case i.State == InstanceLaunching && i.Launched.IsZero():
		id = i.LaunchOp
	case i.State == InstanceLaunching:
		return w.locateLaunched(ctx, i)
	case i.State == InstanceDeleting:
		id = i.DeleteOp
	}
	if id == "" {
		return i
	}
	op, err := w.ops.Get(ctx, i.Org, id)
	if err != nil {
		w.log.WarnContext(ctx, "read the operation of an instance", "org", i.Org, "instance", i.ID, "operation", id, "error", err)
		return i
	}
	return w.settleWith(ctx, i, op)
}

// settleWith records what op, an operation of i that may have ended,
// means for i.
func (w *Worker) settleWith(ctx context.Context, i Instance, op ops.Operation) Instance {
	if !op.State.Terminal() {
		return i
	}
	log := w.log.With("org", i.Org, "instance", i.ID, "operation", op.ID)
	var err error
	switch {
	case op.Kind == ops.KindLaunchInstance && i.State == InstanceLaunching && op.State == ops.StateSucceeded:
		if err = w.ledger.InstanceLaunched(ctx, i.Org, i.ID, "", false, storedNow()); err == nil {
			i.Launched = storedNow()
			return w.locateLaunched(ctx, i)
		}
	case op.Kind == ops.KindLaunchInstance && i.State == InstanceLaunching:
		if err = w.ledger.InstanceLaunchFailed(ctx, i.Org, i.ID); err == nil {
			i.State = InstanceFailed
		}
	case op.Kind == ops.KindDeleteInstance && i.State == InstanceDeleting && op.ID == i.DeleteOp && op.State == ops.StateSucceeded:
		now := storedNow()
		if err = w.ledger.InstanceDeleted(ctx, i.Org, i.ID, op.ID, now); err == nil {
			i.State, i.Deleted, i.Location = InstanceDeleted, now, ""
		}
	case op.Kind == ops.KindDeleteInstance && i.State == InstanceDeleting && op.ID == i.DeleteOp:
		if w.clusterGone(ctx, i) {
			// Its cluster is gone, and the instance with it.
			now := storedNow()
			if err = w.ledger.InstanceDeleted(ctx, i.Org, i.ID, op.ID, now); err == nil {
				i.State, i.Deleted, i.Location = InstanceDeleted, now, ""
			}
			break
		}
		retry := storedNow().Add(instanceDeleteRetry)
		if err = w.ledger.InstanceDeleteFailed(ctx, i.Org, i.ID, op.ID, retry); err == nil {
			i.State, i.Expires = InstanceFailed, retry
			log.InfoContext(ctx, "instance delete failed; culled again later", "retry", retry, "code", op.ErrorCode)
		}
	}
	if err != nil {
		log.WarnContext(ctx, "settle an instance", "error", err)
	}
	return i
}

// clusterGone reports whether i's cluster no longer exists.
func (w *Worker) clusterGone(ctx context.Context, i Instance) bool {
	svc, err := w.caller.Context(ctx, i.Org)
	if err != nil {
		return false
	}
	_, err = w.access.ClusterAccess(svc, i.Org, i.Cluster)
	return err != nil && errors.Is(clusterError(i.Cluster, err), ErrClusterNotFound)
}

// locateLaunched looks for the location of a launched instance in its
// namespace, and records it once found.
func (w *Worker) locateLaunched(ctx context.Context, i Instance) Instance {
	loc, found, err := w.locate(ctx, i)
	if err != nil {
		w.log.DebugContext(ctx, "locate an instance", "org", i.Org, "instance", i.ID, "error", err)
		return i
	}
	if !found {
		return i
	}
	if err := w.ledger.InstanceLaunched(ctx, i.Org, i.ID, loc, true, storedNow()); err != nil {
		w.log.WarnContext(ctx, "record the location of an instance", "org", i.Org, "instance", i.ID, "error", err)
		return i
	}
	i.State, i.Location = InstanceRunning, loc
	return i
}

// locate reads the instance's Ingresses and Services (its namespace holds
// nothing else of anyone's) and finds its location (locationOf).
func (w *Worker) locate(ctx context.Context, i Instance) (string, bool, error) {
	svc, err := w.caller.Context(ctx, i.Org)
	if err != nil {
		return "", false, err
	}
	ca, err := w.access.ClusterAccess(svc, i.Org, i.Cluster)
	if err != nil {
		return "", false, clusterError(i.Cluster, err)
	}
	cs, err := w.exec.Clientset(helmexec.AccessFromProto(ca))
	if err != nil {
		return "", false, err
	}
	ctx, cancel := context.WithTimeout(ctx, depTimeout)
	defer cancel()
	ings, err := cs.NetworkingV1().Ingresses(i.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", false, fmt.Errorf("list ingresses: %w", err)
	}
	svcs, err := cs.CoreV1().Services(i.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", false, fmt.Errorf("list services: %w", err)
	}
	loc, found := locationOf(ings.Items, svcs.Items)
	return loc, found, nil
}

// serviceSubject is who the culler acts as.
func (w *Worker) serviceSubject() string { return identity.ServiceSubject(w.caller.Service()) }
