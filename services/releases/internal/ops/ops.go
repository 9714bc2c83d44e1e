// Package ops is the durable operation queue of the releases service: every
// mutating release call becomes an Operation that any replica's worker runs,
// that survives restarts, and that callers can read, cancel and watch.
//
// The queue lives in the releases database (SQLite or PostgreSQL, through
// pkg/sqldb). Operations on one release (a Target) run one at a time in the
// order they were enqueued; operations on different releases run in
// parallel. A worker Claims an operation and receives a lease with a fencing
// token; every later write it makes carries the token and is refused with
// ErrLeaseLost once another worker has taken the operation over, so a worker
// that was paused or cut off cannot write after its lease was given away.
//
// A worker's life with one operation:
//
//	leases, _ := store.Claim(ctx, owner, 8, time.Minute)
//	for _, l := range leases {
//		// l.Attempt > 1: a previous worker died; l.State and l.Phase say where.
//		store.Start(ctx, l.ID, l.Token)
//		store.Event(ctx, l.ID, l.Token, "applying", "...")
//		cancel, err := store.Heartbeat(ctx, l.ID, l.Token, time.Minute) // well before the lease ends
//		store.Finish(ctx, l.ID, l.Token, ops.StateSucceeded, result, "", "")
//	}
//
// Every row carries its organization. Get, List, RequestCancel and Watch
// answer for one organization only; Claim serves every organization, and
// the worker calls (Start, Heartbeat, Event, Finish) name an operation by
// id and fencing token, which only its claimer holds.
//
// Lease expiry is judged with the clock of the replica that claims, so
// replicas' clocks should roughly agree; skew only makes a takeover early or
// late, and an early takeover is still safe because of the fencing token.
package ops

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. The service maps them to gRPC codes.
var (
	// ErrNotFound: no such operation in the organization. Another
	// organization's operation answers the same.
	ErrNotFound = errors.New("operation not found")
	// ErrIdempotencyMismatch: the idempotency key was used, within its
	// lifetime, for a different request (HTTP 422).
	ErrIdempotencyMismatch = errors.New("idempotency key already used for a different request")
	// ErrBusy: NoQueue was asked and an operation is queued or running on
	// the release (HTTP 409).
	ErrBusy = errors.New("another operation is queued or running on the release")
	// ErrLeaseLost: the caller's fencing token is no longer current (the
	// lease was given to another worker) or the operation is finished. The
	// worker must stop without writing anything else.
	ErrLeaseLost = errors.New("lease lost: operation finished or taken over by another worker")
	// ErrFinished: the operation already reached a final state and cannot
	// be cancelled (FAILED_PRECONDITION).
	ErrFinished = errors.New("operation already finished")
)

const (
	// MaxEvents is how many progress events an operation keeps, the latest
	// ones; older ones are counted in DroppedEventCount.
	MaxEvents = 200
	// ListedEvents is how many of the latest events List returns with each
	// operation.
	ListedEvents = 10
	// MaxEventMessage and MaxEventPhase bound an event's text, in bytes, so
	// that an operation with MaxEvents events stays well under 4 MiB.
	MaxEventMessage = 2048
	MaxEventPhase   = 64
	// DefaultMaxAttempts is how many times an operation is claimed before a
	// lease that runs out fails it.
	DefaultMaxAttempts = 3
	// DefaultKeyTTL is how long an idempotency key is honoured.
	DefaultKeyTTL = 24 * time.Hour
	// DefaultPollInterval is how often Watch reads the database for changes
	// made by other replicas.
	DefaultPollInterval = 250 * time.Millisecond
	// AbandonedCode is the ErrorCode of an operation failed because its
	// lease ran out on its last attempt.
	AbandonedCode = "INTERNAL"
)

// Kind is what an operation does.
type Kind string

// The kinds of OperationKind in slipway.releases.v1.
const (
	KindInstall             Kind = "install"
	KindUpgrade             Kind = "upgrade"
	KindRollback            Kind = "rollback"
	KindUninstall           Kind = "uninstall"
	KindDeployApplication   Kind = "deploy-application"
	KindRollbackApplication Kind = "rollback-application"
	KindLaunchInstance      Kind = "launch-instance"
	KindDeleteInstance      Kind = "delete-instance"
)

// State is where an operation is. The values are those of OperationState in
// slipway.releases.v1; 0 is no state (in a ListFilter: any).
type State int

// The states. Succeeded, Failed and Cancelled are final.
const (
	StateQueued State = iota + 1
	StateRunning
	StateSucceeded
	StateFailed
	StateCancelled
)

// Terminal reports whether s is final.
func (s State) Terminal() bool {
	return s == StateSucceeded || s == StateFailed || s == StateCancelled
}

func (s State) String() string {
	switch s {
	case StateQueued:
		return "queued"
	case StateRunning:
		return "running"
	case StateSucceeded:
		return "succeeded"
	case StateFailed:
		return "failed"
	case StateCancelled:
		return "cancelled"
	default:
		return fmt.Sprintf("State(%d)", int(s))
	}
}

// Target is the release an operation acts on. Cluster, Namespace and
// Release name its queue; the other fields describe it.
type Target struct {
	Cluster           string
	Namespace         string
	Release           string
	Application       string
	ApplicationTarget string
	Instance          string
}

// Event is one step of an operation's progress.
type Event struct {
	Time    time.Time
	Phase   string
	Message string
}

// Operation is a durable job that changes a release.
type Operation struct {
	ID             string // "op_" + ULID
	Org            string
	Kind           Kind
	Target         Target
	DryRun         bool
	Payload        []byte // what to do, opaque to the queue; nil in List
	Creator        string
	IdempotencyKey string

	State           State
	Phase           string // phase of the latest event
	Attempt         int    // how many times a worker claimed it
	CancelRequested bool
	// Events are the latest MaxEvents events, oldest first;
	// DroppedEventCount counts the older ones.
	Events            []Event
	DroppedEventCount int
	Result            []byte // set by Finish
	ErrorCode         string // canonical gRPC code name, when failed
	ErrorMessage      string

	Created time.Time
	Started time.Time // first Start; zero until then
	Ended   time.Time // zero until final
	// Version grows at every change of the operation; Watch compares it.
	Version int64
	// TraceParent and TraceState are the W3C trace context of the request
	// that enqueued the operation ("" when it had none); see TraceContext.
	TraceParent string
	TraceState  string
}

// Lease is an operation handed to a worker by Claim.
type Lease struct {
	Operation
	// Token is the fencing token: pass it to every write about the
	// operation. It grows with every claim of the operation's release, so
	// it can also fence writes the worker makes elsewhere.
	Token int64
	// Expires is when the lease runs out unless Heartbeat extends it.
	Expires time.Time
	// LastAttempt is set on the operation's final attempt: if the lease
	// runs out again the operation fails, so a worker recovering from a
	// crashed attempt should settle the release rather than retry.
	LastAttempt bool
}

// EnqueueRequest is a new operation.
type EnqueueRequest struct {
	Org     string
	Kind    Kind
	Target  Target
	DryRun  bool
	Payload []byte // canonical encoding: the idempotency check compares its hash
	Creator string
	// IdempotencyKey, when set, makes a repeat of the same request (same
	// org and key, same kind, target, dry run and payload) within the key's
	// lifetime return the first operation instead of a new one.
	IdempotencyKey string
	// NoQueue refuses the request with ErrBusy instead of queueing it when
	// an operation is queued or running on the release.
	NoQueue bool
}

// ListFilter narrows List; empty fields match everything.
type ListFilter struct {
	Cluster     string
	Namespace   string
	Release     string
	Application string
	Kind        Kind
	State       State
}

// Page selects a page of List: Size operations (50 when 0, at most 500)
// after the one Token points at ("" for the first page).
type Page struct {
	Size  int
	Token string
}
