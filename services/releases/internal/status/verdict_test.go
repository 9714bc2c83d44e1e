package status

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	t0      = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	longAgo = Context{Now: t0, Changed: t0.Add(-time.Hour)}
	justNow = Context{Now: t0, Changed: t0.Add(-30 * time.Second)}
)

func ptr[T any](v T) *T { return &v }

func objMeta(gen int64) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: "shop", Name: "web", Generation: gen, CreationTimestamp: metav1.NewTime(t0.Add(-2 * time.Hour))}
}

type deploy struct {
	desired, replicas, ready, available, updated int32
	gen, observed                                int64
	conds                                        []appsv1.DeploymentCondition
	paused                                       bool
	noDeadline                                   bool
}

func (d deploy) obj() *appsv1.Deployment {
	if d.gen == 0 {
		d.gen, d.observed = 1, 1
	}
	o := &appsv1.Deployment{
		ObjectMeta: objMeta(d.gen),
		Spec:       appsv1.DeploymentSpec{Replicas: ptr(d.desired), Paused: d.paused, ProgressDeadlineSeconds: ptr(int32(600))},
		Status: appsv1.DeploymentStatus{ObservedGeneration: d.observed, Replicas: d.replicas, ReadyReplicas: d.ready,
			AvailableReplicas: d.available, UpdatedReplicas: d.updated, Conditions: d.conds},
	}
	if d.noDeadline {
		o.Spec.ProgressDeadlineSeconds = nil
	}
	return o
}

func progressing(status corev1.ConditionStatus, reason string) appsv1.DeploymentCondition {
	return appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: status, Reason: reason, Message: "msg"}
}

func TestAssessDeployment(t *testing.T) {
	complete := progressing(corev1.ConditionTrue, "NewReplicaSetAvailable")
	for _, tc := range []struct {
		name string
		d    deploy
		c    Context
		want Verdict
		msg  string
	}{
		{"all available", deploy{desired: 3, replicas: 3, ready: 3, available: 3, updated: 3, conds: []appsv1.DeploymentCondition{complete}}, longAgo, Ready, ""},
		{"scaled to zero", deploy{desired: 0}, longAgo, Ready, ""},
		{"generation not observed", deploy{desired: 3, replicas: 3, ready: 3, available: 3, updated: 3, gen: 2, observed: 1}, longAgo, Progressing,
			"waiting for its controller to observe generation 2"},
		{"new pods starting", deploy{desired: 2, replicas: 2, updated: 2, conds: []appsv1.DeploymentCondition{progressing(corev1.ConditionTrue, "ReplicaSetUpdated")}},
			longAgo, Progressing, "rolling out: 2 of 2 updated, 0 available"},
		{"rolling update, old replicas left", deploy{desired: 3, replicas: 4, ready: 3, available: 3, updated: 1, conds: []appsv1.DeploymentCondition{progressing(corev1.ConditionTrue, "ReplicaSetUpdated")}},
			longAgo, Progressing, "rolling out: 1 of 3 updated, 3 available"},
		{"deadline exceeded", deploy{desired: 1, replicas: 1, updated: 1, conds: []appsv1.DeploymentCondition{progressing(corev1.ConditionFalse, "ProgressDeadlineExceeded")}},
			justNow, Failed, "ProgressDeadlineExceeded: msg"},
		{"replica failure", deploy{desired: 1, conds: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: "quota"}}},
			justNow, Failed, "FailedCreate: quota"},
		{"lost a pod after completing", deploy{desired: 3, replicas: 3, ready: 2, available: 2, updated: 3, conds: []appsv1.DeploymentCondition{complete}},
			longAgo, Degraded, "2 of 3 replicas available"},
		{"lost every pod after completing", deploy{desired: 3, replicas: 3, updated: 3, conds: []appsv1.DeploymentCondition{complete}},
			longAgo, Failed, "none of 3 replicas available"},
		{"short just after a release change", deploy{desired: 3, replicas: 3, ready: 2, available: 2, updated: 3, conds: []appsv1.DeploymentCondition{complete}},
			justNow, Progressing, "2 of 3 replicas available"},
		{"paused, short", deploy{desired: 3, replicas: 3, available: 1, updated: 1, paused: true}, longAgo, Degraded, "rollout paused: 1 of 3 replicas available"},
		{"paused, available", deploy{desired: 1, replicas: 1, available: 1, updated: 0, paused: true}, longAgo, Ready, ""},
		{"no deadline, rolling long after the change", deploy{desired: 2, replicas: 2, updated: 1, available: 1, noDeadline: true}, longAgo, Degraded, "1 of 2 replicas available"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := Assess(tc.d.obj(), tc.c)
			if w.Verdict != tc.want || w.Message != tc.msg {
				t.Errorf("verdict %s %q; want %s %q", w.Verdict, w.Message, tc.want, tc.msg)
			}
			if w.Object != (Object{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "web"}) || w.Desired != tc.d.desired || w.Available != tc.d.available {
				t.Errorf("workload %+v", w)
			}
		})
	}
}

func TestAssessStatefulSet(t *testing.T) {
	sts := func(desired, replicas, available, updated int32, cur, upd string) *appsv1.StatefulSet {
		return &appsv1.StatefulSet{ObjectMeta: objMeta(1), Spec: appsv1.StatefulSetSpec{Replicas: ptr(desired)},
			Status: appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: replicas, ReadyReplicas: available, AvailableReplicas: available,
				UpdatedReplicas: updated, CurrentRevision: cur, UpdateRevision: upd}}
	}
	for _, tc := range []struct {
		name string
		s    *appsv1.StatefulSet
		c    Context
		want Verdict
	}{
		{"ready", sts(3, 3, 3, 3, "r1", "r1"), longAgo, Ready},
		{"revision rolling, in grace", sts(3, 3, 3, 1, "r1", "r2"), justNow, Progressing},
		{"revision rolling, past grace, all available", sts(3, 3, 3, 1, "r1", "r2"), longAgo, Ready},
		{"starting, in grace", sts(3, 1, 0, 1, "r1", "r1"), justNow, Progressing},
		{"stuck past grace", sts(3, 1, 0, 1, "r1", "r1"), longAgo, Failed},
		{"short past grace", sts(3, 3, 2, 3, "r1", "r1"), longAgo, Degraded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if w := Assess(tc.s, tc.c); w.Verdict != tc.want {
				t.Errorf("verdict %s %q; want %s", w.Verdict, w.Message, tc.want)
			}
		})
	}
}

func TestAssessDaemonSet(t *testing.T) {
	ds := func(desired, available, updated int32, gen, observed int64) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{ObjectMeta: objMeta(gen), Status: appsv1.DaemonSetStatus{ObservedGeneration: observed, DesiredNumberScheduled: desired,
			CurrentNumberScheduled: desired, NumberReady: available, NumberAvailable: available, UpdatedNumberScheduled: updated}}
	}
	for _, tc := range []struct {
		name string
		d    *appsv1.DaemonSet
		c    Context
		want Verdict
	}{
		{"on every node", ds(3, 3, 3, 1, 1), longAgo, Ready},
		{"no nodes to run on", ds(0, 0, 0, 1, 1), longAgo, Ready},
		{"not observed", ds(0, 0, 0, 1, 0), longAgo, Progressing},
		{"updating in grace", ds(3, 3, 1, 2, 2), justNow, Progressing},
		{"short past grace", ds(3, 1, 3, 1, 1), longAgo, Degraded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if w := Assess(tc.d, tc.c); w.Verdict != tc.want {
				t.Errorf("verdict %s %q; want %s", w.Verdict, w.Message, tc.want)
			}
		})
	}
}

func jobWith(succeeded, active int32, conds ...batchv1.JobCondition) *batchv1.Job {
	return &batchv1.Job{ObjectMeta: objMeta(1), Spec: batchv1.JobSpec{Completions: ptr(int32(1))},
		Status: batchv1.JobStatus{Succeeded: succeeded, Active: active, Conditions: conds}}
}

func jobCond(typ batchv1.JobConditionType, reason string) batchv1.JobCondition {
	return batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: "msg"}
}

func TestAssessJob(t *testing.T) {
	for _, tc := range []struct {
		name string
		j    *batchv1.Job
		want Verdict
		msg  string
	}{
		{"running", jobWith(0, 1), Progressing, "running: 0 of 1 completions, 1 active"},
		{"complete", jobWith(1, 0, jobCond(batchv1.JobComplete, "")), Ready, ""},
		{"success criteria met, pods not yet counted", jobWith(0, 0, jobCond(batchv1.JobSuccessCriteriaMet, "CompletionsReached")), Progressing, "completing"},
		{"failed", jobWith(0, 0, jobCond(batchv1.JobFailed, "BackoffLimitExceeded")), Failed, "BackoffLimitExceeded: msg"},
		{"failure target", jobWith(0, 1, jobCond(batchv1.JobFailureTarget, "DeadlineExceeded")), Failed, "DeadlineExceeded: msg"},
		{"suspended", jobWith(0, 0, jobCond(batchv1.JobSuspended, "")), Ready, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := Assess(tc.j, longAgo)
			if w.Verdict != tc.want || w.Message != tc.msg {
				t.Errorf("verdict %s %q; want %s %q", w.Verdict, w.Message, tc.want, tc.msg)
			}
			if w.Desired != 1 || w.Ready != tc.j.Status.Succeeded {
				t.Errorf("workload %+v", w)
			}
		})
	}
}

func TestAssessCronJob(t *testing.T) {
	cj := &batchv1.CronJob{ObjectMeta: objMeta(1)}
	if w := Assess(cj, longAgo); w.Verdict != Ready {
		t.Errorf("no jobs yet: %s", w.Verdict)
	}
	failed := jobWith(0, 0, jobCond(batchv1.JobFailed, "BackoffLimitExceeded"))
	failed.Name = "web-29000000"
	c := longAgo
	c.LatestJob = failed
	if w := Assess(cj, c); w.Verdict != Degraded || w.Message != "latest job web-29000000 failed: BackoffLimitExceeded: msg" {
		t.Errorf("latest job failed: %s %q", w.Verdict, w.Message)
	}
	c.LatestJob = jobWith(1, 0, jobCond(batchv1.JobComplete, ""))
	if w := Assess(cj, c); w.Verdict != Ready {
		t.Errorf("latest job complete: %s", w.Verdict)
	}
	if w := Assess(&corev1.ConfigMap{}, longAgo); w.Verdict != Unassessed {
		t.Errorf("a ConfigMap: %s", w.Verdict)
	}
}

func TestAssessPod(t *testing.T) {
	waiting := func(reason string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "m"}}}
	}
	for _, tc := range []struct {
		name string
		s    corev1.PodStatus
		del  bool
		want Verdict
		msg  string
	}{
		{"ready", corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}, false, Ready, ""},
		{"succeeded", corev1.PodStatus{Phase: corev1.PodSucceeded}, false, Ready, ""},
		{"failed", corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"}, false, Failed, "Evicted"},
		{"crash looping", corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{waiting("CrashLoopBackOff")}}, false, Failed, "container app: CrashLoopBackOff: m"},
		{"unschedulable", corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: "Unschedulable", Message: "0/3 nodes are available"}}}, false, Progressing, "Pending: Unschedulable: 0/3 nodes are available"},
		{"creating", corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{waiting("ContainerCreating")}}, false, Progressing, "Pending (app: ContainerCreating)"},
		{"running, not ready", corev1.PodStatus{Phase: corev1.PodRunning}, false, Progressing, "Running, not ready"},
		{"terminating", corev1.PodStatus{Phase: corev1.PodRunning}, true, Progressing, "terminating"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &corev1.Pod{Status: tc.s}
			if tc.del {
				p.DeletionTimestamp = ptr(metav1.NewTime(t0))
			}
			if v, msg := AssessPod(p); v != tc.want || msg != tc.msg {
				t.Errorf("verdict %s %q; want %s %q", v, msg, tc.want, tc.msg)
			}
		})
	}
}

func TestAssessService(t *testing.T) {
	lb := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	if v, _ := AssessService(lb); v != Progressing {
		t.Errorf("load balancer without address: %s", v)
	}
	lb.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}}
	if v, _ := AssessService(lb); v != Ready {
		t.Errorf("load balancer with address: %s", v)
	}
	if v, _ := AssessService(&corev1.Service{}); v != Ready {
		t.Errorf("ClusterIP: %s", v)
	}
}
