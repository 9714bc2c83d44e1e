package status

import (
	"fmt"
	"math"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultGrace is how long a workload short of what it wants counts as
// still rolling out, from the later of the release's last change and the
// workload's creation, where its kind has no progress deadline of its own.
const DefaultGrace = 10 * time.Minute

// Context is what a verdict depends on besides the object itself.
type Context struct {
	Now time.Time
	// Changed is when the release last changed (its revision's update
	// time); zero when unknown.
	Changed time.Time
	// Grace is DefaultGrace when zero.
	Grace time.Duration
	// LatestJob is, for a CronJob, its most recently created Job; nil when
	// it has none.
	LatestJob *batchv1.Job
}

// inGrace reports whether a workload created at created is within the
// grace period.
func (c Context) inGrace(created time.Time) bool {
	g := c.Grace
	if g <= 0 {
		g = DefaultGrace
	}
	start := c.Changed
	if created.After(start) {
		start = created
	}
	return !start.IsZero() && c.Now.Sub(start) < g
}

// Assess returns the rollout state and verdict of a workload (a
// *Deployment, *StatefulSet, *DaemonSet, *Job or *CronJob), by the one
// rule below, in this order:
//
//  1. Failed when its controller reports failure: a Deployment's
//     Progressing=False with reason ProgressDeadlineExceeded, a
//     ReplicaFailure=True condition, a Job's Failed=True (or
//     FailureTarget=True).
//  2. Progressing while its controller has not observed the latest
//     generation (status.observedGeneration < metadata.generation).
//  3. Progressing while a rollout is under way: not every desired replica
//     updated to the latest template, or old replicas left, or (a
//     Deployment) Progressing=True for a reason other than
//     NewReplicaSetAvailable. A Deployment's own progress deadline ends
//     this (rule 1); a StatefulSet or DaemonSet, which has none, counts as
//     rolling out only within the grace period.
//  4. Ready when available replicas (pods ready for minReadySeconds) reach
//     the desired count; a Job when Complete (SuccessCriteriaMet alone is
//     still Progressing); a CronJob unless its latest
//     Job failed (then Degraded); anything scaled to zero.
//  5. Progressing while short within the grace period (Context.Grace,
//     from the later of the release's last change and the workload's
//     creation): pods are still starting.
//  6. Failed when none is available.
//  7. Degraded otherwise: running, short of what is desired, with no
//     rollout under way.
//
// It returns Unassessed for any other type.
func Assess(obj any, c Context) Workload {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return assessDeployment(o, c)
	case *appsv1.StatefulSet:
		return assessStatefulSet(o, c)
	case *appsv1.DaemonSet:
		return assessDaemonSet(o, c)
	case *batchv1.Job:
		return assessJob(o)
	case *batchv1.CronJob:
		return assessCronJob(o, c)
	}
	return Workload{}
}

func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func ref(apiVersion, kind string, m metav1.ObjectMeta) Object {
	return Object{APIVersion: apiVersion, Kind: kind, Namespace: m.Namespace, Name: m.Name}
}

// byAvailability finishes w with rules 4 to 7, once rules 1 to 3 found
// nothing.
func (w Workload) byAvailability(c Context, created time.Time) Workload {
	switch {
	case w.Available >= w.Desired:
		return w.with(Ready, "")
	case c.inGrace(created):
		return w.with(Progressing, fmt.Sprintf("%d of %d replicas available", w.Available, w.Desired))
	case w.Available == 0:
		return w.with(Failed, fmt.Sprintf("none of %d replicas available", w.Desired))
	}
	return w.with(Degraded, fmt.Sprintf("%d of %d replicas available", w.Available, w.Desired))
}

func (w Workload) with(v Verdict, msg string) Workload {
	w.Verdict, w.Message = v, msg
	return w
}

func (w Workload) unobserved() (Workload, bool) {
	if w.ObservedGeneration < w.Generation {
		return w.with(Progressing, fmt.Sprintf("waiting for its controller to observe generation %d", w.Generation)), true
	}
	return w, false
}

func (w Workload) rolling() Workload {
	return w.with(Progressing, fmt.Sprintf("rolling out: %d of %d updated, %d available", w.Updated, w.Desired, w.Available))
}

func assessDeployment(d *appsv1.Deployment, c Context) Workload {
	w := Workload{
		Object: ref("apps/v1", "Deployment", d.ObjectMeta), Desired: replicas(d.Spec.Replicas),
		Ready: d.Status.ReadyReplicas, Available: d.Status.AvailableReplicas, Updated: d.Status.UpdatedReplicas,
		Generation: d.Generation, ObservedGeneration: d.Status.ObservedGeneration,
	}
	var progressing *appsv1.DeploymentCondition
	for i, cd := range d.Status.Conditions {
		w.Conditions = append(w.Conditions, Condition{Type: string(cd.Type), Status: string(cd.Status), Reason: cd.Reason, Message: cd.Message,
			LastTransition: cd.LastTransitionTime.Time, LastUpdate: cd.LastUpdateTime.Time})
		switch {
		case cd.Type == appsv1.DeploymentProgressing:
			progressing = &d.Status.Conditions[i]
		case cd.Type == appsv1.DeploymentReplicaFailure && cd.Status == corev1.ConditionTrue:
			return w.with(Failed, reason(cd.Reason, cd.Message))
		}
	}
	if progressing != nil && progressing.Status == corev1.ConditionFalse && progressing.Reason == "ProgressDeadlineExceeded" {
		return w.with(Failed, reason(progressing.Reason, progressing.Message))
	}
	if w, ok := w.unobserved(); ok {
		return w
	}
	if d.Spec.Paused {
		if w.Available >= w.Desired {
			return w.with(Ready, "")
		}
		return w.with(Degraded, fmt.Sprintf("rollout paused: %d of %d replicas available", w.Available, w.Desired))
	}
	hasDeadline := d.Spec.ProgressDeadlineSeconds != nil && *d.Spec.ProgressDeadlineSeconds != math.MaxInt32
	rolling := w.Updated < w.Desired || d.Status.Replicas > w.Updated ||
		progressing != nil && progressing.Status == corev1.ConditionTrue && progressing.Reason != "NewReplicaSetAvailable"
	if rolling && (hasDeadline || c.inGrace(d.CreationTimestamp.Time)) {
		return w.rolling()
	}
	return w.byAvailability(c, d.CreationTimestamp.Time)
}

func assessStatefulSet(s *appsv1.StatefulSet, c Context) Workload {
	w := Workload{
		Object: ref("apps/v1", "StatefulSet", s.ObjectMeta), Desired: replicas(s.Spec.Replicas),
		Ready: s.Status.ReadyReplicas, Available: s.Status.AvailableReplicas, Updated: s.Status.UpdatedReplicas,
		Generation: s.Generation, ObservedGeneration: s.Status.ObservedGeneration,
	}
	for _, cd := range s.Status.Conditions {
		w.Conditions = append(w.Conditions, Condition{Type: string(cd.Type), Status: string(cd.Status), Reason: cd.Reason, Message: cd.Message,
			LastTransition: cd.LastTransitionTime.Time})
	}
	if w, ok := w.unobserved(); ok {
		return w
	}
	target := w.Desired
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		target = max(0, w.Desired-*ru.Partition)
	}
	onDelete := s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType
	rolling := s.Status.Replicas != w.Desired || !onDelete && (w.Updated < target || target == w.Desired && s.Status.UpdateRevision != s.Status.CurrentRevision)
	if rolling && c.inGrace(s.CreationTimestamp.Time) {
		return w.rolling()
	}
	return w.byAvailability(c, s.CreationTimestamp.Time)
}

func assessDaemonSet(d *appsv1.DaemonSet, c Context) Workload {
	w := Workload{
		Object: ref("apps/v1", "DaemonSet", d.ObjectMeta), Desired: d.Status.DesiredNumberScheduled,
		Ready: d.Status.NumberReady, Available: d.Status.NumberAvailable, Updated: d.Status.UpdatedNumberScheduled,
		Generation: d.Generation, ObservedGeneration: d.Status.ObservedGeneration,
	}
	for _, cd := range d.Status.Conditions {
		w.Conditions = append(w.Conditions, Condition{Type: string(cd.Type), Status: string(cd.Status), Reason: cd.Reason, Message: cd.Message,
			LastTransition: cd.LastTransitionTime.Time})
	}
	if w, ok := w.unobserved(); ok {
		return w
	}
	onDelete := d.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType
	rolling := !onDelete && (w.Updated < w.Desired || d.Status.CurrentNumberScheduled > w.Desired)
	if rolling && c.inGrace(d.CreationTimestamp.Time) {
		return w.rolling()
	}
	return w.byAvailability(c, d.CreationTimestamp.Time)
}

// jobFailed returns a Job's failure condition, if it has one.
func jobFailed(j *batchv1.Job) (batchv1.JobCondition, bool) {
	for _, cd := range j.Status.Conditions {
		if (cd.Type == batchv1.JobFailed || cd.Type == batchv1.JobFailureTarget) && cd.Status == corev1.ConditionTrue {
			return cd, true
		}
	}
	return batchv1.JobCondition{}, false
}

func assessJob(j *batchv1.Job) Workload {
	desired := int32(1)
	switch {
	case j.Spec.Completions != nil:
		desired = *j.Spec.Completions
	case j.Spec.Parallelism != nil && *j.Spec.Parallelism == 0:
		desired = 0
	}
	// For a Job, ready and available count its succeeded pods, updated
	// every pod it has running or done.
	w := Workload{
		Object: ref("batch/v1", "Job", j.ObjectMeta), Desired: desired,
		Ready: j.Status.Succeeded, Available: j.Status.Succeeded, Updated: j.Status.Active + j.Status.Succeeded,
		Generation: j.Generation, ObservedGeneration: j.Generation, // Jobs report no observed generation
	}
	complete, suspended, met := false, false, false
	for _, cd := range j.Status.Conditions {
		w.Conditions = append(w.Conditions, Condition{Type: string(cd.Type), Status: string(cd.Status), Reason: cd.Reason, Message: cd.Message,
			LastTransition: cd.LastTransitionTime.Time, LastUpdate: cd.LastProbeTime.Time})
		if cd.Status == corev1.ConditionTrue {
			switch cd.Type {
			case batchv1.JobComplete:
				complete = true
			case batchv1.JobSuccessCriteriaMet:
				met = true
			case batchv1.JobSuspended:
				suspended = true
			}
		}
	}
	if cd, ok := jobFailed(j); ok {
		return w.with(Failed, reason(cd.Reason, cd.Message))
	}
	switch {
	case complete || suspended:
		return w.with(Ready, "")
	case met:
		// Complete follows once its pods are accounted for.
		return w.with(Progressing, "completing")
	}
	return w.with(Progressing, fmt.Sprintf("running: %d of %d completions, %d active", j.Status.Succeeded, desired, j.Status.Active))
}

func assessCronJob(cj *batchv1.CronJob, c Context) Workload {
	w := Workload{Object: ref("batch/v1", "CronJob", cj.ObjectMeta), Generation: cj.Generation, ObservedGeneration: cj.Generation}
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		return w.with(Ready, "")
	}
	if j := c.LatestJob; j != nil {
		if cd, ok := jobFailed(j); ok {
			return w.with(Degraded, fmt.Sprintf("latest job %s failed: %s", j.Name, reason(cd.Reason, cd.Message)))
		}
	}
	return w.with(Ready, "")
}

func reason(r, msg string) string {
	switch {
	case r == "":
		return msg
	case msg == "":
		return r
	}
	return r + ": " + msg
}

// failingWaits are the reasons a container waits for that will not go
// away by themselves.
var failingWaits = map[string]bool{
	"CrashLoopBackOff": true, "ImagePullBackOff": true, "ErrImagePull": true, "InvalidImageName": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true,
}

// AssessPod returns a pod's verdict: Failed when it failed or a container
// waits for a reason that will not go away by itself (CrashLoopBackOff,
// ImagePullBackOff, ...), Ready when it succeeded or is Ready, otherwise
// Progressing (pending, starting, or terminating), with the reason.
func AssessPod(p *corev1.Pod) (Verdict, string) {
	if p.DeletionTimestamp != nil {
		return Progressing, "terminating"
	}
	switch p.Status.Phase {
	case corev1.PodSucceeded:
		return Ready, ""
	case corev1.PodFailed:
		return Failed, reason(p.Status.Reason, p.Status.Message)
	}
	for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if wt := cs.State.Waiting; wt != nil && failingWaits[wt.Reason] {
			return Failed, "container " + cs.Name + ": " + reason(wt.Reason, wt.Message)
		}
	}
	var waiting []string
	for _, cs := range p.Status.ContainerStatuses {
		if wt := cs.State.Waiting; wt != nil && wt.Reason != "" {
			waiting = append(waiting, cs.Name+": "+wt.Reason)
		}
	}
	for _, cd := range p.Status.Conditions {
		switch {
		case cd.Type == corev1.PodScheduled && cd.Status == corev1.ConditionFalse:
			return Progressing, "Pending: " + reason(cd.Reason, cd.Message)
		case cd.Type == corev1.PodReady && cd.Status == corev1.ConditionTrue:
			return Ready, ""
		}
	}
	msg := string(p.Status.Phase)
	if msg == "" {
		msg = "Pending"
	}
	if p.Status.Phase == corev1.PodRunning {
		msg = "Running, not ready"
	}
	if len(waiting) > 0 {
		msg += " (" + strings.Join(waiting, ", ") + ")"
	}
	return Progressing, msg
}

// AssessService returns a Service's verdict: Progressing while a
// LoadBalancer Service has no address yet, Ready otherwise.
func AssessService(s *corev1.Service) (Verdict, string) {
	if s.Spec.Type == corev1.ServiceTypeLoadBalancer && len(s.Status.LoadBalancer.Ingress) == 0 {
		return Progressing, "waiting for a load balancer address"
	}
	return Ready, ""
}
