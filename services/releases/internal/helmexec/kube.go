package helmexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"helm.sh/helm/v3/pkg/kube"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/resource"
)

const (
	waitFirstPoll = 250 * time.Millisecond
	waitMaxPoll   = 2 * time.Second
)

// actionKube is the namespace's Helm kube client as one action sees it:
// it reports progress, honours the caller's context at the points where
// that is safe (before applying, while waiting), and waits itself rather
// than through Helm's waiter, which can neither be cancelled nor report.
//
// It keeps the action's context because Helm's kube.Interface has none.
type actionKube struct {
	*kube.Client
	o *op
}

var (
	_ kube.Interface                    = (*actionKube)(nil)
	_ kube.InterfaceExt                 = (*actionKube)(nil)
	_ kube.InterfaceDeletionPropagation = (*actionKube)(nil)
)

// Build skips client-side OpenAPI validation where the server validates
// (see serverValidatesFields).
func (k *actionKube) Build(r io.Reader, validate bool) (kube.ResourceList, error) {
	return k.Client.Build(r, validate && !k.o.skipValidation)
}

func (k *actionKube) Create(resources kube.ResourceList) (*kube.Result, error) {
	if err := k.proceed(); err != nil {
		// Helm reads the result even on error.
		return &kube.Result{}, err
	}
	k.o.report(k.applyPhase(resources), fmt.Sprintf("creating %s", describe(resources)))
	return k.Client.Create(resources)
}

func (k *actionKube) Update(original, target kube.ResourceList, force bool) (*kube.Result, error) {
	if err := k.proceed(); err != nil {
		return &kube.Result{}, err
	}
	k.o.report(k.applyPhase(target), fmt.Sprintf("applying %s", describe(target)))
	return k.Client.Update(original, target, force)
}

func (k *actionKube) Delete(resources kube.ResourceList) (*kube.Result, []error) {
	k.reportDelete(resources)
	return k.Client.Delete(resources)
}

func (k *actionKube) DeleteWithPropagationPolicy(resources kube.ResourceList, policy metav1.DeletionPropagation) (*kube.Result, []error) {
	k.reportDelete(resources)
	return k.Client.DeleteWithPropagationPolicy(resources, policy)
}

func (k *actionKube) reportDelete(resources kube.ResourceList) {
	if len(resources) == 0 {
		return
	}
	phase := PhaseApplying
	if k.o.kind == "uninstall" {
		phase = PhaseUninstalling
	}
	k.o.report(k.o.phase(phase), fmt.Sprintf("deleting %s", describe(resources)))
}

// proceed refuses to start applying an install or upgrade once the caller
// has given up (Helm then records the revision failed, with nothing of it
// applied). A rollback is never refused: Helm would mark the deployed
// revision superseded on the way out, leaving none deployed. Nor is an
// install or upgrade undoing itself.
func (k *actionKube) proceed() error {
	if k.o.rollingBack.Load() || (k.o.kind != "install" && k.o.kind != "upgrade") {
		return nil
	}
	if err := k.o.ctx.Err(); err != nil {
		return fmt.Errorf("not applying: %w", err)
	}
	return nil
}

// applyPhase tells hooks (which Helm creates with Create too) from the
// release's own resources.
func (k *actionKube) applyPhase(resources kube.ResourceList) string {
	for _, r := range resources {
		if a, err := meta.Accessor(r.Object); err == nil {
			if _, ok := a.GetAnnotations()["helm.sh/hook"]; ok {
				return k.o.phase(PhaseHooks)
			}
		}
	}
	return k.o.phase(PhaseApplying)
}

func (k *actionKube) Wait(resources kube.ResourceList, timeout time.Duration) error {
	return k.wait(resources, timeout, false)
}

func (k *actionKube) WaitWithJobs(resources kube.ResourceList, timeout time.Duration) error {
	return k.wait(resources, timeout, true)
}

// wait polls until every resource is ready, as Helm's waiter decides
// readiness (its ReadyChecker), quickly at first and then every
// waitMaxPoll. A transient error is retried; the caller's cancellation
// ends the wait at once.
func (k *actionKube) wait(resources kube.ResourceList, timeout time.Duration, jobs bool) error {
	phase := k.o.phase(PhaseWaiting)
	parent := k.o.waitContext()
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var why string
	checker := kube.NewReadyChecker(k.o.c.clientset, func(format string, v ...any) { why = fmt.Sprintf(format, v...) },
		kube.PausedAsReady(true), kube.CheckJobs(jobs))
	k.o.report(phase, fmt.Sprintf("waiting up to %s for %s", timeout, describe(resources)))
	last := ""
	return poll(ctx, func() (bool, error) {
		for _, r := range resources {
			why = ""
			ready, err := checker.IsReady(ctx, r)
			if err != nil && !transient(err) {
				return false, err
			}
			if err != nil || !ready {
				msg := why
				switch {
				case err != nil && ctx.Err() == nil:
					msg = fmt.Sprintf("checking %s: %v", name(r), err)
				case msg == "":
					msg = fmt.Sprintf("%s is not ready", name(r))
				}
				if msg != last {
					k.o.report(phase, msg)
					last = msg
				}
				return false, nil
			}
		}
		k.o.report(phase, fmt.Sprintf("%s ready", describe(resources)))
		return true, nil
	}, func() error {
		if err := parent.Err(); err != nil {
			return fmt.Errorf("wait for %s stopped: %w (%s)", describe(resources), err, last)
		}
		return &timeoutError{msg: fmt.Sprintf("timed out after %s waiting for %s: %s", timeout, describe(resources), last)}
	})
}

// WaitForDelete polls until every resource is gone.
func (k *actionKube) WaitForDelete(resources kube.ResourceList, timeout time.Duration) error {
	parent := k.o.waitContext()
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	phase := k.o.phase(PhaseUninstalling)
	k.o.report(phase, fmt.Sprintf("waiting up to %s for %s to be deleted", timeout, describe(resources)))
	left := ""
	return poll(ctx, func() (bool, error) {
		for _, r := range resources {
			_, err := resource.NewHelper(r.Client, r.Mapping).Get(r.Namespace, r.Name)
			switch {
			case apierrors.IsNotFound(err):
				continue
			case err != nil && !transient(err):
				return false, err
			}
			if n := name(r); n != left {
				left = n
				k.o.report(phase, fmt.Sprintf("%s is not deleted yet", n))
			}
			return false, nil
		}
		return true, nil
	}, func() error {
		if err := parent.Err(); err != nil {
			return fmt.Errorf("wait for deletion stopped: %w (%s is not deleted yet)", err, left)
		}
		return &timeoutError{msg: fmt.Sprintf("timed out after %s waiting for %s to be deleted", timeout, left)}
	})
}

// poll calls done until it reports true or an error, backing off from
// waitFirstPoll to waitMaxPoll; when ctx ends first, it returns expired().
func poll(ctx context.Context, done func() (bool, error), expired func() error) error {
	delay := waitFirstPoll
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return expired()
		case <-t.C:
		}
		ok, err := done()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if ctx.Err() != nil {
			return expired()
		}
		t.Reset(delay)
		delay = min(delay*3/2, waitMaxPoll)
	}
}

// transient tells errors worth retrying (the network, the server's
// overload) from those that will not change (forbidden, invalid).
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true // poll tells cancellation from a timeout
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		code := st.Status().Code
		return code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500
	}
	return true
}

func name(r *resource.Info) string {
	kind := r.Mapping.GroupVersionKind.Kind
	if r.Namespace == "" {
		return kind + " " + r.Name
	}
	return kind + " " + r.Namespace + "/" + r.Name
}

func describe(resources kube.ResourceList) string {
	switch len(resources) {
	case 0:
		return "no resources"
	case 1:
		return name(resources[0])
	}
	return fmt.Sprintf("%d resources", len(resources))
}
