package releases

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/paging"
	"github.com/slipwayhq/slipway/pkg/validate"
	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
	"github.com/slipwayhq/slipway/services/releases/internal/status"
)

// Bounds of the status watch.
const (
	// watchLimit is how long one WatchDeploymentStatus stream lasts.
	watchLimit = 30 * time.Minute
	// watchEvery is the least time between two snapshots of a stream.
	watchEvery = time.Second
	// watchLedgerEvery is how often a stream reads the ledger again, for
	// changes of the release itself (a new revision, its status), which no
	// informer sees.
	watchLedgerEvery = 5 * time.Second
)

// DeploymentStatus is a release's latest revision and the live state of
// its workloads. Verdict and Message are the overall ones: the worse of the
// release's (DeploymentStatus.release) and its workloads'.
type DeploymentStatus struct {
	Release Revision
	Active  string
	status.Snapshot
}

// ResourcePage is one page of a release's objects.
type ResourcePage struct {
	Resources     []status.Resource
	NextPageToken string
}

// EventPage is one page of a release's events.
type EventPage struct {
	Events        []status.Event
	NextPageToken string
}

// EventQuery filters ListDeploymentEvents.
type EventQuery struct {
	Type  string        // "Normal", "Warning", or any when empty
	Since time.Duration // only events that last happened within this long, when set
}

// StatusService reads the live state of releases from the status cache.
// Like Service, it answers another org's release exactly as a missing one.
type StatusService interface {
	DeploymentStatus(ctx context.Context, cluster, namespace, name string) (DeploymentStatus, error)
	WatchDeploymentStatus(ctx context.Context, cluster, namespace, name string, send func(DeploymentStatus) error) error
	DeploymentResources(ctx context.Context, cluster, namespace, name string, pods bool, p PageRequest) (ResourcePage, error)
	DeploymentEvents(ctx context.Context, cluster, namespace, name string, q EventQuery, p PageRequest) (EventPage, error)
}

type statusService struct {
	svc    Service
	access ClusterAccess
	cache  *status.Cache
	now    func() time.Time
}

// NewStatusService reads releases through svc (which checks the caller,
// resolves the cluster in the caller's org and reads the ledger) and their
// objects from cache, reaching clusters with access.
func NewStatusService(svc Service, access ClusterAccess, cache *status.Cache) StatusService {
	return &statusService{svc: svc, access: access, cache: cache, now: time.Now}
}

// release reads the release's latest revision and what the cache needs to
// know of it; live is false for an uninstalled release, whose objects are
// gone.
func (s *statusService) release(ctx context.Context, cluster, namespace, name string) (r Revision, active string, sr status.Release, live bool, err error) {
	r, active, err = s.svc.GetRelease(ctx, cluster, namespace, name, 0)
	if err != nil {
		return Revision{}, "", status.Release{}, false, err
	}
	if r.Status == StatusUninstalled {
		return r, active, status.Release{}, false, nil
	}
	caller, _ := identity.FromContext(ctx) // GetRelease checked it
	ca, err := s.access.ClusterAccess(ctx, caller.Org, r.Cluster)
	if err != nil {
		return Revision{}, "", status.Release{}, false, clusterError(cluster, err)
	}
	sr = status.Release{
		Access: helmexec.AccessFromProto(ca), Namespace: r.Namespace, Manifest: r.Manifest, Changed: r.Updated,
		Revision: strings.Join([]string{caller.Org, r.Cluster, r.Namespace, r.Name, strconv.Itoa(r.Revision)}, "/"),
	}
	return r, active, sr, true, nil
}

// releaseVerdict is the verdict of a revision's status.
func releaseVerdict(r Revision) (status.Verdict, string) {
	switch r.Status {
	case StatusDeployed:
		return status.Ready, ""
	case StatusFailed:
		return status.Failed, "release failed: " + r.Description
	case StatusPendingInstall, StatusPendingUpgrade, StatusPendingRollback, StatusUninstalling:
		return status.Progressing, "release " + statusNames[r.Status]
	case StatusUninstalled:
		return status.Unassessed, "release uninstalled"
	}
	return status.Unassessed, "release status unknown"
}

var statusNames = map[Status]string{
	StatusPendingInstall: "pending-install", StatusPendingUpgrade: "pending-upgrade",
	StatusPendingRollback: "pending-rollback", StatusUninstalling: "uninstalling",
}

func (s *statusService) DeploymentStatus(ctx context.Context, cluster, namespace, name string) (DeploymentStatus, error) {
	d, _, err := s.status(ctx, cluster, namespace, name)
	return d, err
}

func (s *statusService) status(ctx context.Context, cluster, namespace, name string) (DeploymentStatus, status.Release, error) {
	r, active, sr, live, err := s.release(ctx, cluster, namespace, name)
	if err != nil {
		return DeploymentStatus{}, status.Release{}, err
	}
	d := DeploymentStatus{Release: r, Active: active, Snapshot: status.Snapshot{Verdict: status.Ready, Observed: s.now()}}
	if live {
		if d.Snapshot, err = s.cache.Status(ctx, sr); err != nil {
			return DeploymentStatus{}, status.Release{}, cacheError(cluster, r, err)
		}
	}
	if rv, msg := releaseVerdict(r); rv != status.Ready && rv.Severity() >= d.Verdict.Severity() {
		d.Verdict, d.Message = rv, msg
	}
	return d, sr, nil
}

// cacheError explains why the status cache could not answer for release
// r on cluster (as the caller named it): a cluster whose state is unknown
// (its API server does not answer) is named.
func cacheError(cluster string, r Revision, err error) error {
	if errors.Is(err, status.ErrUnknown) {
		return fmt.Errorf("cluster %s: %w", cluster, err)
	}
	if errors.Is(err, status.ErrBusy) || errors.Is(err, helmexec.ErrInvalidAccess) {
		return err
	}
	return fmt.Errorf("read the state of %s/%s: %w", r.Namespace, r.Name, err)
}

// WatchDeploymentStatus sends the release's status, then a new one
// whenever it changes: the cache's informers tell when the release's
// objects change, and the ledger is read again every watchLedgerEvery for
// the release's own changes. At most one snapshot a second; the stream
// ends after watchLimit.
func (s *statusService) WatchDeploymentStatus(ctx context.Context, cluster, namespace, name string, send func(DeploymentStatus) error) error {
	ctx, cancel := context.WithTimeout(ctx, watchLimit)
	defer cancel()
	last, sr, err := s.status(ctx, cluster, namespace, name)
	if err != nil {
		return err
	}
	if err := send(last); err != nil {
		return err
	}
	sent := s.now()
	var w *status.Watch
	defer func() {
		if w != nil {
			w.Close()
		}
	}()
	subscribed := status.Release{}
	ledger := time.NewTicker(watchLedgerEvery)
	defer ledger.Stop()
	for {
		if sr.Revision != subscribed.Revision || sr.Access.Fingerprint() != subscribed.Access.Fingerprint() || w != nil && w.Stale() {
			if w != nil {
				w.Close()
				w = nil
			}
			if sr.Revision != "" {
				if w, err = s.cache.Watch(ctx, sr); err != nil {
					return cacheError(cluster, last.Release, err)
				}
			}
			subscribed = sr
		}
		var changed <-chan struct{}
		if w != nil {
			changed = w.C()
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil // watchLimit: the client reconnects
			}
			return ctx.Err()
		case <-changed:
		case <-ledger.C:
		}
		if wait := watchEvery - s.now().Sub(sent); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				continue
			case <-t.C:
			}
		}
		d, nsr, err := s.status(ctx, cluster, namespace, name)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			return err
		}
		sr = nsr
		if sameStatus(d, last) {
			continue
		}
		if err := send(d); err != nil {
			return err
		}
		last, sent = d, s.now()
	}
}

// sameStatus compares two snapshots but for when they were observed.
func sameStatus(a, b DeploymentStatus) bool {
	a.Observed, b.Observed = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func (s *statusService) DeploymentResources(ctx context.Context, cluster, namespace, name string, pods bool, p PageRequest) (ResourcePage, error) {
	r, _, sr, live, err := s.release(ctx, cluster, namespace, name)
	if err != nil {
		return ResourcePage{}, err
	}
	caller, _ := identity.FromContext(ctx)
	fp := paging.Fingerprint(caller.Org, "resources", r.Cluster, r.Namespace, r.Name, strconv.Itoa(r.Revision), strconv.FormatBool(pods))
	size, from, err := offsetPage(p, fp)
	if err != nil {
		return ResourcePage{}, err
	}
	if !live {
		return ResourcePage{}, nil
	}
	all, err := s.cache.Resources(ctx, sr, pods)
	if err != nil {
		return ResourcePage{}, cacheError(cluster, r, err)
	}
	var page ResourcePage
	if from < len(all) {
		end := min(from+size, len(all))
		page.Resources = all[from:end]
		if end < len(all) {
			page.NextPageToken = paging.Encode(strconv.Itoa(end), fp)
		}
	}
	return page, nil
}

func (s *statusService) DeploymentEvents(ctx context.Context, cluster, namespace, name string, q EventQuery, p PageRequest) (EventPage, error) {
	switch {
	case q.Type != "" && q.Type != "Normal" && q.Type != "Warning":
		return EventPage{}, validate.Field("type", `must be "Normal" or "Warning", got %q`, q.Type)
	case q.Since < 0:
		return EventPage{}, validate.Field("since", "must not be negative")
	}
	r, _, sr, live, err := s.release(ctx, cluster, namespace, name)
	if err != nil {
		return EventPage{}, err
	}
	size, err := paging.Size(p.Size)
	if err != nil {
		return EventPage{}, err
	}
	caller, _ := identity.FromContext(ctx)
	fp := paging.Fingerprint(caller.Org, "events", r.Cluster, r.Namespace, r.Name, q.Type, q.Since.String())
	tok, err := paging.Decode(p.Token, fp)
	if err != nil {
		return EventPage{}, err
	}
	// Events are newest first, then by uid: a page continues after the
	// last one's (time, uid).
	var afterTime int64
	var afterUID string
	if tok != "" {
		t, uid, ok := strings.Cut(tok, "/")
		if afterTime, err = strconv.ParseInt(t, 10, 64); err != nil || !ok {
			return EventPage{}, validate.Field("page_token", "is not a token this list issued")
		}
		afterUID = uid
	}
	if !live {
		return EventPage{}, nil
	}
	f := status.EventFilter{Type: q.Type}
	if q.Since > 0 {
		f.Since = s.now().Add(-q.Since)
	}
	all, err := s.cache.Events(ctx, sr, f)
	if err != nil {
		return EventPage{}, cacheError(cluster, r, err)
	}
	var page EventPage
	for _, e := range all {
		if tok != "" {
			t := e.Last.UnixNano()
			if t > afterTime || t == afterTime && e.UID <= afterUID {
				continue
			}
		}
		if len(page.Events) == size {
			l := page.Events[size-1]
			page.NextPageToken = paging.Encode(strconv.FormatInt(l.Last.UnixNano(), 10)+"/"+l.UID, fp)
			break
		}
		page.Events = append(page.Events, e)
	}
	return page, nil
}
