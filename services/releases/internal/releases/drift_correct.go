package releases

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/slipwayhq/slipway/pkg/identity"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
	"github.com/slipwayhq/slipway/services/releases/internal/drift"
	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
	"github.com/slipwayhq/slipway/services/releases/internal/ops"
)

// kindCorrectDrift puts a release's drifted objects back to its latest
// revision's manifest (CorrectDeploymentDrift, or the drift check).
const kindCorrectDrift ops.Kind = "correct-drift"

// ErrNotDeployed: the release's latest revision is not deployed, so no
// manifest is known to run: nothing to put back.
var ErrNotDeployed = errors.New("release is not deployed")

// errNotCorrected: an object could not be put back, or differs again
// right after (a controller or admission webhook changes it back).
var errNotCorrected = errors.New("drift not corrected")

// driftFieldManager names Slipway's corrections in objects' managedFields.
const driftFieldManager = "slipway-drift"

// Audit actions of the drift check.
const (
	actionDriftFound   = "slipway.releases.v1.ReleasesService/GetDeploymentDrift"
	actionDriftCorrect = "slipway.releases.v1.ReleasesService/CorrectDeploymentDrift"
)

// Helm's marks of the objects a release owns, which it puts on every
// object it applies (not in the stored manifest): a re-created object
// carries them too, so Helm's next upgrade adopts it as its own.
const (
	helmManagedByLabel      = "app.kubernetes.io/managed-by"
	helmReleaseNameAnnot    = "meta.helm.sh/release-name"
	helmReleaseNamespaceAnn = "meta.helm.sh/release-namespace"
)

// statusName is a status as people read it ("pending-upgrade").
func statusName(s Status) string {
	n := strings.TrimPrefix(releasesv1.ReleaseStatus(s).String(), "RELEASE_STATUS_")
	return strings.ReplaceAll(strings.ToLower(n), "_", "-")
}

// correctDrift runs a correct-drift operation: under the release's lease,
// it compares the latest revision's objects with the cluster again and
// puts each drifted one back (patching only its drifted fields, or
// creating it again when missing), then checks again. It makes no new
// revision; the result is the release as it was.
func (w *Worker) correctDrift(ctx context.Context, l ops.Lease, access helmexec.Access, j job, event func(phase, msg string), log *slog.Logger) ([]byte, error) {
	if j.Options.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, j.Options.Timeout)
		defer cancel()
	}
	k := ReleaseKey{l.Org, l.Target.Cluster, l.Target.Namespace, l.Target.Release}
	head, err := w.ledger.Get(ctx, k, 0)
	if err != nil {
		return nil, notFound(err, k.Namespace, k.Name)
	}
	if head.Status != StatusDeployed {
		return nil, fmt.Errorf("%w: revision %d of %s/%s is %s", ErrNotDeployed, head.Revision, k.Namespace, k.Name, statusName(head.Status))
	}
	kc, err := kubeClientsOf(w.exec, access)
	if err != nil {
		return nil, err
	}
	found, err := releaseDrift(ctx, kc, k.Namespace, head.Manifest)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		event("checking", fmt.Sprintf("revision %d is in sync: nothing to correct", head.Revision))
		w.recordCheck(ctx, k, head.Revision, 0, log)
		return encodeResult(head)
	}
	event("checking", fmt.Sprintf("revision %d: %d drifted: %s", head.Revision, len(found), driftSummary(found)))
	var done, failed []string
	for _, d := range found {
		what, err := correctObject(ctx, d, head)
		name := objectLabel(d.DriftedObject)
		if err != nil {
			event("correcting", name+": "+err.Error())
			failed = append(failed, name)
			continue
		}
		event("correcting", name+": "+what)
		done = append(done, name+" ("+what+")")
	}
	after, err := releaseDrift(ctx, kc, k.Namespace, head.Manifest)
	if err != nil {
		return nil, fmt.Errorf("check again after the correction: %w", err)
	}
	w.recordCheck(ctx, k, head.Revision, len(after), log)
	if j.Found != "" && len(done) > 0 {
		w.audit(ctx, l, log, actionDriftCorrect, fmt.Sprintf("%s; operation %s put back %s", j.Found, l.ID, strings.Join(done, ", ")))
	}
	switch {
	case len(failed) > 0:
		return nil, fmt.Errorf("%w: %d of %d drifted objects could not be put back (see the events): %s", errNotCorrected, len(failed), len(found), strings.Join(failed, ", "))
	case len(after) > 0:
		return nil, fmt.Errorf("%w: still drifted right after it (a controller or admission webhook changes them back?): %s", errNotCorrected, driftSummary(after))
	}
	event("checking", fmt.Sprintf("revision %d is in sync", head.Revision))
	return encodeResult(head)
}

// recordCheck records a correction's check as the release's last.
func (w *Worker) recordCheck(ctx context.Context, k ReleaseKey, revision, drifted int, log *slog.Logger) {
	if _, _, err := w.ledger.RecordDriftCheck(context.WithoutCancel(ctx), k, revision, drifted, time.Now()); err != nil {
		log.WarnContext(ctx, "record drift check", "error", err)
	}
}

// audit records what the service did on its own in the org's audit log.
func (w *Worker) audit(ctx context.Context, l ops.Lease, log *slog.Logger, action, detail string) {
	e := AuditEvent{
		Org: l.Org, Actor: identity.ServiceSubject(w.caller.Service()), Action: action,
		Target: releasePath(l.Org, l.Target.Cluster, l.Target.Namespace, l.Target.Release), Result: 200, Detail: detail,
	}
	if err := w.ledger.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		log.ErrorContext(ctx, "audit", "action", action, "error", err)
	}
}

// correctObject puts one drifted object back and says how ("created",
// "patched spec.replicas").
func correctObject(ctx context.Context, d objectDrift, head Revision) (string, error) {
	secret := d.Kind == "Secret"
	if d.State == DriftMissing {
		u := &unstructured.Unstructured{Object: runtime.DeepCopyJSON(d.manifest)}
		if d.Namespace != "" {
			u.SetNamespace(d.Namespace)
		}
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[helmManagedByLabel] = "Helm"
		u.SetLabels(labels)
		annotations := u.GetAnnotations()
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[helmReleaseNameAnnot], annotations[helmReleaseNamespaceAnn] = head.Name, head.Namespace
		u.SetAnnotations(annotations)
		if _, err := d.client().Create(ctx, u, metav1.CreateOptions{FieldManager: driftFieldManager}); err != nil {
			return "", kubeError("create", err, secret)
		}
		return "created", nil
	}
	c, err := drift.Correct(d.manifest, d.live, d.ignore)
	if err != nil {
		return "", err
	}
	if c.Patch == nil {
		return "in sync already", nil
	}
	if _, err := d.client().Patch(ctx, d.Name, c.Type, c.Patch, metav1.PatchOptions{FieldManager: driftFieldManager}); err != nil {
		return "", kubeError("patch", err, secret)
	}
	return "patched " + fieldList(c.Fields), nil
}

// kubeError is the API server's refusal, without its message for a
// Secret: the message may quote the values sent.
func kubeError(verb string, err error, secret bool) error {
	if secret {
		return fmt.Errorf("%s: %s (HTTP %d)", verb, apierrors.ReasonForError(err), statusCodeOf(err))
	}
	return fmt.Errorf("%s: %w", verb, err)
}

func statusCodeOf(err error) int32 {
	var s apierrors.APIStatus
	if errors.As(err, &s) {
		return s.Status().Code
	}
	return 0
}

// fieldList names up to five fields.
func fieldList(fields []drift.Path) string {
	var names []string
	for i, f := range fields {
		if i == 5 {
			names = append(names, fmt.Sprintf("and %d more", len(fields)-5))
			break
		}
		names = append(names, f.String())
	}
	return strings.Join(names, ", ")
}

// driftSummary names the drifted objects, at most ten.
func driftSummary(found []objectDrift) string {
	var names []string
	for i, d := range found {
		if i == 10 {
			names = append(names, fmt.Sprintf("and %d more", len(found)-10))
			break
		}
		state := "modified"
		if d.State == DriftMissing {
			state = "missing"
		}
		names = append(names, objectLabel(d.DriftedObject)+" ("+state+")")
	}
	return strings.Join(names, ", ")
}

// objectLabel names an object: "Deployment shop/web".
func objectLabel(o DriftedObject) string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}
