package releases

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/slipwayhq/slipway/pkg/helmvalues"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/paging"
	"github.com/slipwayhq/slipway/pkg/validate"
	"github.com/slipwayhq/slipway/services/releases/internal/ops"
)

// ErrInstanceLimit: the org has as many instances not yet deleted as the
// service allows (RESOURCE_EXHAUSTED).
var ErrInstanceLimit = errors.New("too many instances")

// ErrInstanceDeleted: a keepalive of an instance deleting or deleted.
var ErrInstanceDeleted = errors.New("instance is deleted")

// Bounds and defaults of instances.
const (
	DefaultInstanceTTL    = time.Hour
	DefaultInstanceMinTTL = 5 * time.Minute
	MaxInstanceTTL        = 24 * time.Hour
	DefaultInstancesOrg   = 20
	// instanceRetention is how long a deleted instance stays listed.
	instanceRetention = 7 * 24 * time.Hour
	// instanceDeleteRetry is how long after a failed delete the culler
	// tries again.
	instanceDeleteRetry = 5 * time.Minute
	// instanceKeyTTL is how long a launch's idempotency key is honoured,
	// as the operations' keys are.
	instanceKeyTTL = ops.DefaultKeyTTL
	// instanceLabel marks the namespace a launch created, with the
	// instance's id: only such a namespace is deleted with the instance.
	instanceLabel = "slipway.dev/instance"
	// maxInstanceApp is how much of the application's name an instance's
	// release keeps: with "-" and 10 characters of the id, Helm's 53.
	maxInstanceApp   = maxReleaseName - 1 - instanceShortLen
	instanceShortLen = 10
)

// InstanceOptions tune instances.
type InstanceOptions struct {
	// MinTTL is the shortest TTL a launch or keepalive may ask for
	// (DefaultInstanceMinTTL); at most DefaultInstanceTTL.
	MinTTL time.Duration
	// PerOrg is how many instances not yet deleted an org may have
	// (DefaultInstancesOrg).
	PerOrg int
	// CullEvery is how often expired instances are looked for (1 min).
	CullEvery time.Duration
}

// InstanceLaunch is a request for a new instance.
type InstanceLaunch struct {
	Application, Target string
	ImageVersion        string
	ValuesYAML          string
	TTL                 time.Duration // 0: DefaultInstanceTTL
	IdempotencyKey      string
}

// InstanceService launches, reads, keeps alive and deletes instances.
type InstanceService interface {
	Launch(ctx context.Context, r InstanceLaunch) (Instance, ops.Operation, error)
	Get(ctx context.Context, application, id string) (Instance, error)
	List(ctx context.Context, f InstanceFilter, p PageRequest) ([]Instance, string, error)
	KeepAlive(ctx context.Context, application, id string, ttl time.Duration) (Instance, error)
	Delete(ctx context.Context, application, id, idempotencyKey string) (Instance, ops.Operation, error)
}

// Instances is InstanceService, and the culler of expired instances (Run).
// It queues on the worker's operation store and records in its ledger;
// the worker runs the launches and deletes (instances_worker.go).
type Instances struct {
	w       *Worker
	apps    Applications
	images  Images
	opts    InstanceOptions
	wake    func()
	log     *slog.Logger
	now     func() time.Time
	entropy *ulid.LockedMonotonicReader
}

var _ InstanceService = (*Instances)(nil)

// NewInstances returns the instances API over w; wake tells the worker
// an operation was queued.
func NewInstances(w *Worker, apps Applications, images Images, o InstanceOptions, wake func(), log *slog.Logger) (*Instances, error) {
	if o.MinTTL == 0 {
		o.MinTTL = DefaultInstanceMinTTL
	}
	if o.PerOrg == 0 {
		o.PerOrg = DefaultInstancesOrg
	}
	if o.CullEvery <= 0 {
		o.CullEvery = time.Minute
	}
	switch {
	case o.MinTTL < 0 || o.MinTTL > DefaultInstanceTTL:
		return nil, fmt.Errorf("instance minimum TTL %s: want more than 0 and at most %s", o.MinTTL, DefaultInstanceTTL)
	case o.PerOrg < 0:
		return nil, fmt.Errorf("instances per organization %d: want at least 1", o.PerOrg)
	}
	if wake == nil {
		wake = func() {}
	}
	return &Instances{w: w, apps: apps, images: images, opts: o, wake: wake, log: log, now: storedNow,
		entropy: &ulid.LockedMonotonicReader{MonotonicReader: ulid.Monotonic(rand.Reader, 0)}}, nil
}

func (s *Instances) validTTL(field string, ttl time.Duration) error {
	if ttl != 0 && (ttl < s.opts.MinTTL || ttl > MaxInstanceTTL) {
		return validate.Field(field, "must be between %s and %s, got %s", s.opts.MinTTL, MaxInstanceTTL, ttl)
	}
	return nil
}

// InstanceName is the release (and namespace) of an instance: the
// application's name, cut to fit, and the end of the id (its random part),
// lower-case.
func InstanceName(application, id string) string {
	app := application
	if len(app) > maxInstanceApp {
		app = strings.TrimRight(app[:maxInstanceApp], "-")
	}
	return app + "-" + strings.ToLower(id[len(id)-instanceShortLen:])
}

// launchHash fingerprints what an idempotency key promises to repeat.
func launchHash(r InstanceLaunch) string {
	var b []byte
	for _, f := range []string{r.Application, r.Target, r.ImageVersion, r.ValuesYAML, r.TTL.String()} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Launch validates r, resolves the application's target and image as a
// deploy does, records the instance and queues its launch.
func (s *Instances) Launch(ctx context.Context, r InstanceLaunch) (Instance, ops.Operation, error) {
	caller, err := callerWith(ctx, identity.RoleDeployer)
	if err != nil {
		return Instance{}, ops.Operation{}, err
	}
	if err := validate.First(validate.DNSLabel("application", r.Application), validate.DNSLabel("target", r.Target),
		validate.MaxLen("version", r.ImageVersion, 128), validate.MaxLen("idempotency_key", r.IdempotencyKey, 255), s.validTTL("ttl", r.TTL)); err != nil {
		return Instance{}, ops.Operation{}, err
	}
	if len(r.ValuesYAML) > maxValuesBytes {
		return Instance{}, ops.Operation{}, validate.Field("values_yaml", "must be at most %d bytes", maxValuesBytes)
	}
	hash := launchHash(r)
	if r.IdempotencyKey != "" {
		if i, op, found, err := s.replayLaunch(ctx, caller.Org, r.IdempotencyKey, hash); err != nil || found {
			return i, op, err
		}
	}
	var request map[string]any
	if r.ValuesYAML != "" {
		vals, err := chartutil.ReadValues([]byte(r.ValuesYAML))
		if err != nil {
			return Instance{}, ops.Operation{}, validate.Field("values_yaml", "is not a YAML mapping: %v", err)
		}
		request = vals.AsMap()
	}
	t, err := s.apps.Target(ctx, caller.Org, r.Application, r.Target)
	if err != nil {
		return Instance{}, ops.Operation{}, err
	}
	j := job{Chart: &t.Chart, Application: r.Application, Options: Options{Wait: true, Timeout: DefaultTimeout}}
	var img *helmvalues.Image
	if t.Image != "" {
		i, err := s.images.Version(ctx, caller.Org, t.Image, r.ImageVersion)
		if err != nil {
			return Instance{}, ops.Operation{}, err
		}
		img = &i
		j.Images = []Image{{Reference: i.Reference, Digest: i.Digest}}
	} else if r.ImageVersion != "" {
		return Instance{}, ops.Operation{}, validate.Field("version", "application %s runs no image of the registry", r.Application)
	}
	j.Values = helmvalues.Overlay(t.Values, request, helmvalues.ImageValues(t.ImageValuesKey, img))

	now := s.now()
	u, err := ulid.New(ulid.Timestamp(now), s.entropy)
	if err != nil {
		return Instance{}, ops.Operation{}, fmt.Errorf("new instance id: %w", err)
	}
	ttl := r.TTL
	if ttl == 0 {
		ttl = DefaultInstanceTTL
	}
	id := "inst_" + u.String()
	name := InstanceName(r.Application, id)
	inst := Instance{
		Org: caller.Org, ID: id, Application: r.Application, Target: r.Target, Cluster: t.Cluster, Namespace: name, Release: name,
		State: InstanceLaunching, TTL: ttl, LastActivity: now, Expires: now.Add(ttl), Creator: caller.Subject,
		IdempotencyKey: r.IdempotencyKey, RequestHash: hash, Created: now,
	}
	j.Options.Description = "Instance " + id
	if err := s.w.ledger.PutInstance(ctx, inst, s.opts.PerOrg); err != nil {
		if errors.Is(err, errInstanceKeyRace) {
			if i, op, found, err := s.replayLaunch(ctx, caller.Org, r.IdempotencyKey, hash); err != nil || found {
				return i, op, err
			}
		}
		return Instance{}, ops.Operation{}, err
	}
	op, err := s.w.enqueueInstance(ctx, ops.KindLaunchInstance, inst, caller.Subject, j, "")
	if err != nil {
		// Nothing was queued: the record goes too.
		if derr := s.w.ledger.DropInstance(context.WithoutCancel(ctx), inst.Org, inst.ID); derr != nil {
			s.log.ErrorContext(ctx, "drop the record of an instance not launched", "org", inst.Org, "instance", inst.ID, "error", derr)
		}
		return Instance{}, ops.Operation{}, err
	}
	// The worker records it too, should this write be lost.
	if err := s.w.ledger.SetInstanceLaunchOp(ctx, inst.Org, inst.ID, op.ID); err != nil {
		s.log.WarnContext(ctx, "record the launch operation of an instance", "org", inst.Org, "instance", inst.ID, "operation", op.ID, "error", err)
	}
	inst.LaunchOp = op.ID
	s.wake()
	return inst, op, nil
}

// replayLaunch returns the instance a live idempotency key launched, with
// its launch operation; a key used for another request is
// ops.ErrIdempotencyMismatch, an expired one is freed.
func (s *Instances) replayLaunch(ctx context.Context, org, key, hash string) (Instance, ops.Operation, bool, error) {
	i, found, err := s.w.ledger.InstanceByKey(ctx, org, key)
	switch {
	case err != nil || !found:
		return Instance{}, ops.Operation{}, false, err
	case s.now().Sub(i.Created) >= instanceKeyTTL:
		return Instance{}, ops.Operation{}, false, s.w.ledger.ForgetInstanceKey(ctx, org, i.ID)
	case i.RequestHash != hash:
		return Instance{}, ops.Operation{}, false, fmt.Errorf("%w: instance %s", ops.ErrIdempotencyMismatch, i.ID)
	}
	var op ops.Operation
	if i.LaunchOp != "" {
		if op, err = s.w.ops.Get(ctx, org, i.LaunchOp); err != nil {
			return Instance{}, ops.Operation{}, false, err
		}
	}
	return i, op, true, nil
}

// instance reads an instance of the caller's org and application.
func (s *Instances) instance(ctx context.Context, min identity.Role, application, id string) (Instance, error) {
	caller, err := callerWith(ctx, min)
	if err != nil {
		return Instance{}, err
	}
	if err := validate.First(validate.DNSLabel("application", application), validate.MaxLen("instance", id, 64)); err != nil {
		return Instance{}, err
	}
	i, err := s.w.ledger.GetInstance(ctx, caller.Org, id)
	if err != nil {
		return Instance{}, err
	}
	if i.Application != application || i.State == InstanceDeleted && i.Deleted.Before(s.now().Add(-instanceRetention)) {
		return Instance{}, fmt.Errorf("%w: %s", ErrInstanceNotFound, id)
	}
	return i, nil
}

// Get returns an instance, settled first when its operation ended or its
// location may be known by now.
func (s *Instances) Get(ctx context.Context, application, id string) (Instance, error) {
	i, err := s.instance(ctx, identity.RoleViewer, application, id)
	if err != nil {
		return Instance{}, err
	}
	return s.w.settleInstance(ctx, i), nil
}

// List lists an application's instances, newest first.
func (s *Instances) List(ctx context.Context, f InstanceFilter, p PageRequest) ([]Instance, string, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return nil, "", err
	}
	if err := validate.DNSLabel("application", f.Application); err != nil {
		return nil, "", err
	}
	if f.Target != "" {
		if err := validate.DNSLabel("target", f.Target); err != nil {
			return nil, "", err
		}
	}
	if f.State < 0 || f.State > InstanceDeleted {
		return nil, "", validate.Field("state", "is not an instance state")
	}
	size, err := paging.Size(p.Size)
	if err != nil {
		return nil, "", err
	}
	fp := paging.Fingerprint(caller.Org, "instances", f.Application, f.Target, fmt.Sprint(int(f.State)))
	before, err := paging.Decode(p.Token, fp)
	if err != nil {
		return nil, "", err
	}
	f.DeletedSince = s.now().Add(-instanceRetention)
	list, err := s.w.ledger.ListInstances(ctx, caller.Org, f, before, size+1)
	if err != nil {
		return nil, "", err
	}
	var next string
	if len(list) > size {
		list = list[:size]
		next = paging.Encode(list[size-1].ID, fp)
	}
	return list, next, nil
}

// KeepAlive pushes an instance's expiry back by its TTL, or by a new one.
func (s *Instances) KeepAlive(ctx context.Context, application, id string, ttl time.Duration) (Instance, error) {
	if err := s.validTTL("ttl", ttl); err != nil {
		return Instance{}, err
	}
	i, err := s.instance(ctx, identity.RoleDeployer, application, id)
	if err != nil {
		return Instance{}, err
	}
	i, ok, err := s.w.ledger.KeepInstanceAlive(ctx, i.Org, i.ID, ttl, s.now())
	if err != nil {
		return Instance{}, err
	}
	if !ok {
		return Instance{}, fmt.Errorf("%w: %s is %s; launch another", ErrInstanceDeleted, id, i.State)
	}
	return i, nil
}

// Delete queues the deletion of an instance now. Deletes of one instance
// are one operation (while it does not fail): the idempotency key adds
// nothing but its bounds.
func (s *Instances) Delete(ctx context.Context, application, id, key string) (Instance, ops.Operation, error) {
	if err := validate.MaxLen("idempotency_key", key, 255); err != nil {
		return Instance{}, ops.Operation{}, err
	}
	i, err := s.instance(ctx, identity.RoleDeployer, application, id)
	if err != nil {
		return Instance{}, ops.Operation{}, err
	}
	caller, _ := identity.FromContext(ctx)
	return s.w.deleteInstanceOp(ctx, i, caller.Subject)
}

func (st InstanceState) String() string {
	switch st {
	case InstanceLaunching:
		return "launching"
	case InstanceRunning:
		return "running"
	case InstanceFailed:
		return "failed"
	case InstanceDeleting:
		return "deleting"
	case InstanceDeleted:
		return "deleted"
	}
	return fmt.Sprintf("InstanceState(%d)", int(st))
}
