// Package status tells how a release's objects run in its cluster: the
// rollout state and verdict of each workload, the live state of every
// object of its manifest, the Kubernetes events about them, and a change
// feed for watching all that, from a per-cluster informer cache rather
// than from requests to the cluster per read.
//
// The cache (Cache) holds one set of client-go shared informers per
// cluster and namespace (a scope) for Deployments, StatefulSets,
// DaemonSets, Jobs, CronJobs, Pods, Services and Events. A scope starts on
// first use, stops when unused and unwatched for a while or when its
// cluster's credential changes, and the scopes are bounded in number.
//
// The verdict rule is in verdict.go (Assess), a pure function of a
// workload's status, and is documented in docs/releases.md ("Status").
package status

import (
	"errors"
	"time"
)

// Verdict is whether something runs as intended: the values of
// slipway.releases.v1.Verdict.
type Verdict int

// The verdicts, in order of severity.
const (
	Unassessed Verdict = iota
	Ready
	Progressing
	Degraded
	Failed
)

func (v Verdict) String() string {
	switch v {
	case Ready:
		return "ready"
	case Progressing:
		return "progressing"
	case Degraded:
		return "degraded"
	case Failed:
		return "failed"
	}
	return "unassessed"
}

// ErrBusy: the cache watches as many cluster namespaces as it may, each of
// them watched by someone.
var ErrBusy = errors.New("too many cluster namespaces watched at once; retry later")

// ErrUnknown: the cluster's state cannot be read (yet): its API server
// does not answer, or the credential may not list what is asked.
var ErrUnknown = errors.New("cluster state unknown")

// Object names a Kubernetes object.
type Object struct {
	APIVersion, Kind, Namespace, Name string
}

// Condition is a Kubernetes status condition.
type Condition struct {
	Type, Status, Reason, Message string
	LastTransition, LastUpdate    time.Time
}

// Workload is the rollout state of a Deployment, StatefulSet, DaemonSet,
// Job or CronJob, and its verdict.
type Workload struct {
	Object  Object
	Verdict Verdict
	// Message says why, for people, when not ready.
	Message                            string
	Desired, Ready, Available, Updated int32
	Generation, ObservedGeneration     int64
	Conditions                         []Condition
}

// Snapshot is the state of a release's workloads.
type Snapshot struct {
	// Verdict is the worst of the workloads' (Ready when there are none);
	// Unassessed when some workload's state is unknown and none is worse
	// than ready.
	Verdict Verdict
	// Message is the first unready workload's, prefixed with it.
	Message string
	// Workloads, worst verdict first, then in manifest order; at most
	// MaxWorkloads.
	Workloads []Workload
	// WorkloadCount counts them all.
	WorkloadCount int
	Observed      time.Time
}

// MaxWorkloads bounds Snapshot.Workloads.
const MaxWorkloads = 200

// Resource is an object of a release's manifest, or a pod of one of its
// workloads, with its live state.
type Resource struct {
	Object Object
	// Owner is the workload a pod belongs to.
	Owner   *Object
	Verdict Verdict
	Message string
	// Missing: in the manifest, not in the cluster.
	Missing bool
	Created time.Time
}

// Event is a Kubernetes event about an object of a release.
type Event struct {
	UID                   string
	Involved              Object
	Type, Reason, Message string
	Count                 int32
	First, Last           time.Time
	Source                string
}
