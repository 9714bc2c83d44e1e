package releases

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/paging"
	"github.com/slipwayhq/slipway/pkg/validate"
	"github.com/slipwayhq/slipway/services/releases/internal/ops"
)

// allClusters is the cluster "-" of ListDeployments: every cluster.
const allClusters = "-"

func (s *service) ListReleases(ctx context.Context, f ListFilter, p PageRequest) (RevisionPage, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return RevisionPage{}, err
	}
	if f.Namespace != "" {
		if err := validate.DNSLabel("namespace", f.Namespace); err != nil {
			return RevisionPage{}, err
		}
	}
	if f.Cluster == allClusters {
		f.Cluster = ""
	} else if f.Cluster, err = s.clusterID(ctx, caller.Org, f.Cluster); err != nil {
		return RevisionPage{}, err
	}
	size, err := paging.Size(p.Size)
	if err != nil {
		return RevisionPage{}, err
	}
	fp := paging.Fingerprint(caller.Org, "releases", f.Cluster, f.Namespace, strconv.Itoa(int(f.Status)), strconv.FormatBool(f.IncludeUninstalled))
	tok, err := paging.Decode(p.Token, fp)
	if err != nil {
		return RevisionPage{}, err
	}
	var after ReleaseKey
	if tok != "" {
		parts := strings.Split(tok, "\x00")
		if len(parts) != 3 {
			return RevisionPage{}, validate.Field("page_token", "is not a token this list issued")
		}
		after = ReleaseKey{Cluster: parts[0], Namespace: parts[1], Name: parts[2]}
	}
	revs, err := s.ledger.List(ctx, caller.Org, f, after, size+1)
	if err != nil {
		return RevisionPage{}, err
	}
	page := RevisionPage{Revisions: revs}
	if len(revs) > size {
		last := revs[size-1]
		page.Revisions = revs[:size]
		page.NextPageToken = paging.Encode(last.Cluster+"\x00"+last.Namespace+"\x00"+last.Name, fp)
	}
	return page, nil
}

func (s *service) History(ctx context.Context, cluster, namespace, name string, p PageRequest) (RevisionPage, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return RevisionPage{}, err
	}
	k, err := s.key(ctx, caller.Org, cluster, namespace, name)
	if err != nil {
		return RevisionPage{}, err
	}
	size, err := paging.Size(p.Size)
	if err != nil {
		return RevisionPage{}, err
	}
	fp := paging.Fingerprint(caller.Org, "history", k.Cluster, k.Namespace, k.Name)
	tok, err := paging.Decode(p.Token, fp)
	if err != nil {
		return RevisionPage{}, err
	}
	before := 0
	if tok != "" {
		if before, err = strconv.Atoi(tok); err != nil {
			return RevisionPage{}, validate.Field("page_token", "is not a token this list issued")
		}
	}
	revs, err := s.ledger.History(ctx, k, before, size+1)
	if err != nil {
		return RevisionPage{}, err
	}
	if len(revs) == 0 && before == 0 {
		return RevisionPage{}, fmt.Errorf("%w: %s/%s", ErrReleaseNotFound, k.Namespace, k.Name)
	}
	page := RevisionPage{Revisions: revs}
	if len(revs) > size {
		page.Revisions = revs[:size]
		page.NextPageToken = paging.Encode(strconv.Itoa(revs[size-1].Revision), fp)
	}
	return page, nil
}

func (s *service) GetOperation(ctx context.Context, id string) (ops.Operation, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return ops.Operation{}, err
	}
	if err := validOperationID(id); err != nil {
		return ops.Operation{}, err
	}
	return s.ops.Get(ctx, caller.Org, id)
}

func (s *service) ListOperations(ctx context.Context, f ops.ListFilter, p PageRequest) ([]ops.Operation, string, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return nil, "", err
	}
	if f.Cluster != "" {
		if f.Cluster, err = s.clusterID(ctx, caller.Org, f.Cluster); err != nil {
			return nil, "", err
		}
	}
	size, err := paging.Size(p.Size)
	if err != nil {
		return nil, "", err
	}
	return s.ops.List(ctx, caller.Org, f, ops.Page{Size: size, Token: p.Token})
}

func (s *service) CancelOperation(ctx context.Context, id string) (ops.Operation, error) {
	caller, err := callerWith(ctx, identity.RoleDeployer)
	if err != nil {
		return ops.Operation{}, err
	}
	if err := validOperationID(id); err != nil {
		return ops.Operation{}, err
	}
	return s.ops.RequestCancel(ctx, caller.Org, id)
}

func (s *service) WatchOperation(ctx context.Context, id string, send func(ops.Operation) error) error {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return err
	}
	if err := validOperationID(id); err != nil {
		return err
	}
	return s.ops.Watch(ctx, caller.Org, id, send)
}

func validOperationID(id string) error {
	if !strings.HasPrefix(id, "op_") || len(id) > 64 {
		return validate.Field("operation", "must be an operation id (op_...), got %q", id)
	}
	return nil
}

// digestPattern is the only digest form images hold.
var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// maxDigests bounds one DigestReleases question.
const maxDigests = 100

func (s *service) DigestReleases(ctx context.Context, digests []string, p PageRequest) ([]DigestRelease, string, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return nil, "", err
	}
	if len(digests) == 0 || len(digests) > maxDigests {
		return nil, "", validate.Field("digests", "between 1 and %d digests, got %d", maxDigests, len(digests))
	}
	for i, d := range digests {
		if !digestPattern.MatchString(d) {
			return nil, "", validate.Field(fmt.Sprintf("digests[%d]", i), "must be sha256: and 64 lower-case hex digits")
		}
	}
	size, err := paging.Size(p.Size)
	if err != nil {
		return nil, "", err
	}
	fp := paging.Fingerprint(append([]string{caller.Org, "digests"}, digests...)...)
	tok, err := paging.Decode(p.Token, fp)
	if err != nil {
		return nil, "", err
	}
	var after DigestRelease
	if tok != "" {
		parts := strings.Split(tok, "\x00")
		if len(parts) != 4 {
			return nil, "", validate.Field("page_token", "is not a token this list issued")
		}
		after = DigestRelease{Digest: parts[0], Cluster: parts[1], Namespace: parts[2], Name: parts[3]}
	}
	list, err := s.ledger.DigestReleases(ctx, caller.Org, digests, after, size+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(list) > size {
		l := list[size-1]
		list, next = list[:size], paging.Encode(strings.Join([]string{l.Digest, l.Cluster, l.Namespace, l.Name}, "\x00"), fp)
	}
	return list, next, nil
}
