package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slipwayhq/slipway/pkg/chartarchive"
	"github.com/slipwayhq/slipway/pkg/validate"
	"github.com/slipwayhq/slipway/services/catalog/internal/fetch"
	"github.com/slipwayhq/slipway/services/catalog/internal/index"
)

// maxOCIReference bounds an oci:// reference.
const maxOCIReference = 1024

// ociReferenceArchive fetches the chart an oci:// reference names, for a
// deploy that names no repository of the catalog. It is fetched with the
// credential of the org's OCI repository that holds it (the longest URL
// prefix), if any, anonymously otherwise; the archive is kept like a
// repository's, in org's scope when a credential fetched it.
func (s *service) ociReferenceArchive(ctx context.Context, org, raw string) (ChartVersion, []byte, error) {
	if len(raw) > maxOCIReference {
		return ChartVersion{}, nil, validate.Field("oci_reference", "must be at most %d characters", maxOCIReference)
	}
	ref, err := fetch.ParseOCIReference(raw)
	if err != nil {
		return ChartVersion{}, nil, validate.Field("oci_reference", "%v", err)
	}
	holder, err := s.ociHolder(ctx, org, ref.Repository)
	if err != nil {
		return ChartVersion{}, nil, err
	}
	auth, scope := (*fetch.Auth)(nil), ""
	if holder.CredentialID != "" {
		if auth, err = s.login(ctx, org, holder.CredentialID, holder.URL); err != nil {
			return ChartVersion{}, nil, err
		}
		scope = org
	}
	ctx, cancel := context.WithTimeout(ctx, archiveTimeout)
	defer cancel()
	ov, err := s.Fetcher.OCIVersion(ctx, ref.Repository, ref.Chart, ref.Version, auth)
	if err != nil {
		return ChartVersion{}, nil, fetchError(err)
	}
	if ov.Metadata.Type == "library" {
		return ChartVersion{}, nil, fmt.Errorf("%w: %s is a library chart, which cannot be deployed", ErrUnprocessable, raw)
	}
	data, err := s.Store.GetArchive(ctx, scope, ov.ArchiveDigest)
	if err != nil && !errors.Is(err, errArchiveNotFound) {
		return ChartVersion{}, nil, fmt.Errorf("read archive: %w", err)
	}
	if err != nil {
		if data, err = s.Fetcher.OCIArchive(ctx, ref.Repository, ref.Chart, ov.ArchiveDigest, auth, s.opts.Limits.Archive.MaxCompressed); err != nil {
			return ChartVersion{}, nil, fetchError(err)
		}
		if err := s.Store.PutArchive(ctx, scope, ov.ArchiveDigest, data, s.now()); err != nil {
			return ChartVersion{}, nil, fmt.Errorf("store archive: %w", err)
		}
	}
	// Read once under the limits before anyone deploys it.
	if _, err := chartarchive.Read(data, s.opts.Limits.Archive); err != nil {
		return ChartVersion{}, nil, fmt.Errorf("%w: chart %s: %v", ErrUnprocessable, raw, err)
	}
	md := ov.Metadata
	v := ChartVersion{Version: index.Version{Chart: ov.Chart, Version: ov.Version, AppVersion: md.AppVersion, Description: md.Description,
		APIVersion: md.APIVersion, Type: md.Type, Digest: ov.ArchiveDigest, Created: ov.Created}, repoURL: ref.Repository, oci: true}
	return v, data, nil
}

// ociHolder is the org's OCI repository whose URL is the longest prefix of
// repoURL (at a path boundary), the zero Repository when none is.
func (s *service) ociHolder(ctx context.Context, org, repoURL string) (Repository, error) {
	var best Repository
	after := ""
	for {
		page, err := s.Store.ListRepositories(ctx, org, "", after, 500)
		if err != nil {
			return Repository{}, fmt.Errorf("list repositories: %w", err)
		}
		for _, r := range page {
			u := strings.TrimSuffix(r.URL, "/")
			if r.IsOCI() && (repoURL == u || strings.HasPrefix(repoURL, u+"/")) && len(u) > len(strings.TrimSuffix(best.URL, "/")) {
				best = r
			}
		}
		if len(page) < 500 {
			return best, nil
		}
		after = page[len(page)-1].Name
	}
}
