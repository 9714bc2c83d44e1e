package catalog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/Masterminds/semver/v3"

	"github.com/slipwayhq/slipway/pkg/chartarchive"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/paging"
	"github.com/slipwayhq/slipway/pkg/validate"
	"github.com/slipwayhq/slipway/services/catalog/internal/fetch"
	"github.com/slipwayhq/slipway/services/catalog/internal/index"
)

// Chart is a chart of a repository, described by its latest version.
type Chart struct {
	Repository    string
	Name          string
	LatestVersion string
	AppVersion    string
	Description   string
	Keywords      []string
	Home, Icon    string
	Deprecated    bool
	VersionCount  int
	Updated       time.Time
	// rank orders search results: 0 when the name matches.
	rank     int
	sourceID string
}

// ChartVersion is one version of a chart in a repository.
type ChartVersion struct {
	Repository string
	index.Version
	position int
	sourceID string
	repoURL  string
	oci      bool
}

// ChartQuery is a chart search.
type ChartQuery struct {
	Q                 string
	Repository        string
	IncludeDeprecated bool
}

// ChartPage is one page of charts.
type ChartPage struct {
	Charts        []Chart
	NextPageToken string
}

// ChartDetail is a chart with one page of its versions, highest first.
type ChartDetail struct {
	Chart         Chart
	Versions      []ChartVersion
	NextPageToken string
}

// ChartFiles is one version with the files the catalog shows of it.
type ChartFiles struct {
	Version    ChartVersion
	ValuesYAML string
	SchemaJSON string
	Readme     string
	Truncated  []string
}

// maxShownFile bounds each file GetChartVersion answers with.
const maxShownFile = 1 << 20

// Search bounds.
const (
	maxQueryLen   = 256
	maxQueryWords = 8
)

// chartCursor is where a page of search results resumes.
type chartCursor struct {
	Rank             int
	Name, Repository string
}

func (c chartCursor) encode() string {
	return strconv.Itoa(c.Rank) + "\x00" + c.Name + "\x00" + c.Repository
}

func decodeCursor(s string) (chartCursor, error) {
	if s == "" {
		return chartCursor{Rank: -1}, nil
	}
	parts := strings.Split(s, "\x00")
	if len(parts) != 3 {
		return chartCursor{}, validate.Field("page_token", "is not a token this list issued")
	}
	rank, err := strconv.Atoi(parts[0])
	if err != nil {
		return chartCursor{}, validate.Field("page_token", "is not a token this list issued")
	}
	return chartCursor{Rank: rank, Name: parts[1], Repository: parts[2]}, nil
}

// words splits a query into lower-case words.
func words(q string) []string {
	return strings.Fields(strings.ToLower(q))
}

func (s *service) SearchCharts(ctx context.Context, q ChartQuery, p PageRequest) (ChartPage, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return ChartPage{}, err
	}
	if err := validate.First(
		validate.MaxLen("q", q.Q, maxQueryLen),
		optional(q.Repository, func() error { return validate.DNSLabel("repository", q.Repository) }),
	); err != nil {
		return ChartPage{}, err
	}
	if n := len(words(q.Q)); n > maxQueryWords {
		return ChartPage{}, validate.Field("q", "at most %d words, got %d", maxQueryWords, n)
	}
	return s.chartPage(ctx, caller.Org, q, p)
}

func (s *service) ListCharts(ctx context.Context, repository string, p PageRequest) (ChartPage, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return ChartPage{}, err
	}
	if err := validate.DNSLabel("repository", repository); err != nil {
		return ChartPage{}, err
	}
	if _, err := s.repository(ctx, caller.Org, repository); err != nil {
		return ChartPage{}, err
	}
	return s.chartPage(ctx, caller.Org, ChartQuery{Repository: repository, IncludeDeprecated: true}, p)
}

func (s *service) chartPage(ctx context.Context, org string, q ChartQuery, p PageRequest) (ChartPage, error) {
	size, err := paging.Size(p.Size)
	if err != nil {
		return ChartPage{}, err
	}
	fp := paging.Fingerprint(org, "charts", strings.Join(words(q.Q), " "), q.Repository, strconv.FormatBool(q.IncludeDeprecated))
	tok, err := paging.Decode(p.Token, fp)
	if err != nil {
		return ChartPage{}, err
	}
	after, err := decodeCursor(tok)
	if err != nil {
		return ChartPage{}, err
	}
	charts, err := s.Store.SearchCharts(ctx, org, q, after, size+1)
	if err != nil {
		return ChartPage{}, fmt.Errorf("search charts: %w", err)
	}
	page := ChartPage{Charts: charts}
	if len(charts) > size {
		last := charts[size-1]
		page.Charts = charts[:size]
		page.NextPageToken = paging.Encode(chartCursor{Rank: last.rank, Name: last.Name, Repository: last.Repository}.encode(), fp)
	}
	return page, nil
}

func (s *service) GetChart(ctx context.Context, repository, chart string, p PageRequest) (ChartDetail, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return ChartDetail{}, err
	}
	if err := validateChartKey(repository, chart); err != nil {
		return ChartDetail{}, err
	}
	c, err := s.chart(ctx, caller.Org, repository, chart)
	if err != nil {
		return ChartDetail{}, err
	}
	size, err := paging.Size(p.Size)
	if err != nil {
		return ChartDetail{}, err
	}
	fp := paging.Fingerprint(caller.Org, "versions", repository, chart)
	tok, err := paging.Decode(p.Token, fp)
	if err != nil {
		return ChartDetail{}, err
	}
	after := -1
	if tok != "" {
		if after, err = strconv.Atoi(tok); err != nil {
			return ChartDetail{}, validate.Field("page_token", "is not a token this list issued")
		}
	}
	vs, err := s.Store.ListVersions(ctx, caller.Org, repository, chart, after, size+1)
	if err != nil {
		return ChartDetail{}, fmt.Errorf("list chart versions: %w", err)
	}
	d := ChartDetail{Chart: c, Versions: vs}
	if len(vs) > size {
		d.Versions = vs[:size]
		d.NextPageToken = paging.Encode(strconv.Itoa(vs[size-1].position), fp)
	}
	return d, nil
}

func (s *service) chart(ctx context.Context, org, repository, chart string) (Chart, error) {
	c, err := s.Store.GetChart(ctx, org, repository, chart)
	if errors.Is(err, ErrChartNotFound) {
		if _, rerr := s.repository(ctx, org, repository); rerr != nil {
			return Chart{}, rerr
		}
		return Chart{}, fmt.Errorf("%w: %s/%s", ErrChartNotFound, repository, chart)
	}
	return c, err
}

func (s *service) GetChartVersion(ctx context.Context, repository, chart, version string) (ChartFiles, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return ChartFiles{}, err
	}
	if err := validate.First(validateChartKey(repository, chart), validate.MaxLen("version", version, 128)); err != nil {
		return ChartFiles{}, err
	}
	if version == "" {
		return ChartFiles{}, validate.Field("version", "required")
	}
	v, err := s.version(ctx, caller.Org, repository, chart, version)
	if err != nil {
		return ChartFiles{}, err
	}
	c, err := s.contents(ctx, caller.Org, v)
	if err != nil {
		return ChartFiles{}, err
	}
	f := ChartFiles{Version: v}
	f.ValuesYAML = shown(c.ValuesYAML, "values_yaml", &f.Truncated)
	f.SchemaJSON = shown(c.SchemaJSON, "values_schema_json", &f.Truncated)
	f.Readme = shown(c.Readme, "readme", &f.Truncated)
	return f, nil
}

// GetChartArchive resolves ref and returns its version's archive, for the
// releases service to deploy.
func (s *service) GetChartArchive(ctx context.Context, ref ChartRef) (ChartVersion, []byte, error) {
	caller, err := deployerOrReleases(ctx)
	if err != nil {
		return ChartVersion{}, nil, err
	}
	if ref.OCI != "" {
		return s.ociReferenceArchive(ctx, caller.Org, ref.OCI)
	}
	if err := validateChartKey(ref.Repository, ref.Chart); err != nil {
		return ChartVersion{}, nil, err
	}
	if ref.Version != "" {
		if _, err := semver.NewConstraint(ref.Version); err != nil {
			return ChartVersion{}, nil, validate.Field("chart.version", "must be a version or semantic version constraint: %v", err)
		}
	}
	r, err := s.repository(ctx, caller.Org, ref.Repository)
	if err != nil {
		return ChartVersion{}, nil, err
	}
	version, _, err := s.resolve(ctx, caller.Org, ref)
	if err != nil {
		if _, cerr := s.chart(ctx, caller.Org, ref.Repository, ref.Chart); cerr != nil {
			return ChartVersion{}, nil, cerr
		}
		return ChartVersion{}, nil, fmt.Errorf("%w: %v", ErrUnprocessable, err)
	}
	v, err := s.version(ctx, caller.Org, ref.Repository, ref.Chart, version)
	if err != nil {
		return ChartVersion{}, nil, err
	}
	if v.Type == "library" {
		return ChartVersion{}, nil, fmt.Errorf("%w: %s version %s is a library chart, which cannot be deployed", ErrUnprocessable, ref.Chart, version)
	}
	scope := ""
	if r.CredentialID != "" {
		scope = r.Org
	}
	data, digest, err := s.archive(ctx, r, scope, v)
	if err != nil {
		return ChartVersion{}, nil, err
	}
	// The archive is read once under the limits before anyone deploys it.
	if _, err := s.contents(ctx, caller.Org, v); err != nil {
		return ChartVersion{}, nil, err
	}
	v.Digest = digest
	return v, data, nil
}

func (s *service) version(ctx context.Context, org, repository, chart, version string) (ChartVersion, error) {
	v, err := s.Store.GetVersion(ctx, org, repository, chart, version)
	if errors.Is(err, ErrChartVersionNotFound) {
		if _, cerr := s.chart(ctx, org, repository, chart); cerr != nil {
			return ChartVersion{}, cerr
		}
		return ChartVersion{}, fmt.Errorf("%w: %s/%s version %s", ErrChartVersionNotFound, repository, chart, version)
	}
	return v, err
}

// shown cuts b at maxShownFile (on a rune boundary), naming field in
// truncated when it does.
func shown(b []byte, field string, truncated *[]string) string {
	if len(b) <= maxShownFile {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	cut := maxShownFile
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	*truncated = append(*truncated, field)
	return strings.ToValidUTF8(string(b[:cut]), "\uFFFD")
}

// contents returns a version's files from the archive cache, downloading
// the archive the first time anyone asks for it.
//
// The cache is content-addressed, but a digest alone is no proof of
// access: an index can claim any digest. An archive fetched anonymously
// is one any organization could fetch, so it is shared; one fetched with
// a credential is kept in its organization's scope.
func (s *service) contents(ctx context.Context, org string, v ChartVersion) (*chartarchive.Contents, error) {
	r, err := s.repository(ctx, org, v.Repository)
	if err != nil {
		return nil, err
	}
	scope := ""
	if r.CredentialID != "" {
		scope = r.Org
	}
	if v.Digest != "" {
		if c, ok := s.files.get(scope, v.Digest); ok {
			return c, nil
		}
	}
	key := scope + "\x00" + v.Digest
	if v.Digest == "" {
		key += "\x00" + v.sourceID + "\x00" + v.Chart + "\x00" + v.Version.Version
	}
	res, err, _ := s.files.flight.Do(key, func() (any, error) {
		data, digest, err := s.archive(ctx, r, scope, v)
		if err != nil {
			return nil, err
		}
		c, err := chartarchive.Read(data, s.opts.Limits.Archive)
		if err != nil {
			return nil, fmt.Errorf("%w: chart %s version %s: %v", ErrUnprocessable, v.Chart, v.Version.Version, err)
		}
		s.files.put(scope, digest, c)
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	return res.(*chartarchive.Contents), nil
}

// archive returns a version's archive and its digest: from the store when
// it was downloaded before into scope, from the repository otherwise
// (checked against the digest the index gives, then stored).
func (s *service) archive(ctx context.Context, r Repository, scope string, v ChartVersion) ([]byte, string, error) {
	if v.Digest != "" {
		data, err := s.Store.GetArchive(ctx, scope, v.Digest)
		if err == nil {
			return data, v.Digest, nil
		}
		if !errors.Is(err, errArchiveNotFound) {
			return nil, "", fmt.Errorf("read archive: %w", err)
		}
	}
	data, err := s.download(ctx, r, v)
	if err != nil {
		return nil, "", err
	}
	digest := chartarchive.Digest(data)
	if v.Digest != "" && digest != v.Digest {
		return nil, "", fmt.Errorf("%w: the archive of %s version %s has digest %s, not the %s the repository's index gives",
			ErrUnprocessable, v.Chart, v.Version.Version, digest, v.Digest)
	}
	if err := s.Store.PutArchive(ctx, scope, digest, data, s.now()); err != nil {
		return nil, "", fmt.Errorf("store archive: %w", err)
	}
	if v.Digest == "" {
		if err := s.Store.SetVersionDigest(ctx, v.sourceID, v.Chart, v.Version.Version, digest); err != nil {
			return nil, "", fmt.Errorf("record archive digest: %w", err)
		}
	}
	return data, digest, nil
}

// download fetches a version's archive from its repository with the
// repository's login.
func (s *service) download(ctx context.Context, r Repository, v ChartVersion) ([]byte, error) {
	auth, err := s.login(ctx, r.Org, r.CredentialID, r.URL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, archiveTimeout)
	defer cancel()
	max := s.opts.Limits.Archive.MaxCompressed
	var data []byte
	if r.IsOCI() {
		if v.Digest == "" {
			return nil, fmt.Errorf("%w: OCI chart %s version %s has no recorded digest; sync the repository", ErrUnprocessable, v.Chart, v.Version.Version)
		}
		data, err = s.Fetcher.OCIArchive(ctx, r.URL, v.Chart, v.Digest, auth, max)
	} else {
		if len(v.URLs) == 0 {
			return nil, fmt.Errorf("%w: the index lists no archive URL for %s version %s", ErrUnprocessable, v.Chart, v.Version.Version)
		}
		data, err = s.Fetcher.Archive(ctx, r.URL, v.URLs[0], auth, max)
	}
	if err != nil {
		// Named: a release's operation shows this text, where the host
		// alone does not say which repository to look at.
		return nil, fmt.Errorf("repository %s: %w", r.Name, fetchError(err))
	}
	return data, nil
}

// archiveTimeout bounds one archive download.
const archiveTimeout = time.Minute

// login returns the login of a repository's credential, nil when it has
// none.
func (s *service) login(ctx context.Context, org, credentialID, url string) (*fetch.Auth, error) {
	if credentialID == "" {
		return nil, nil
	}
	l, err := s.Logins.RepositoryAuth(ctx, org, credentialID, url)
	if err != nil {
		return nil, loginError(credentialID, err)
	}
	return l.Auth, nil
}

func validateChartKey(repository, chart string) error {
	if err := validate.DNSLabel("repository", repository); err != nil {
		return err
	}
	if chart == "" {
		return validate.Field("chart", "required")
	}
	if len(chart) > 255 || !chartName.MatchString(chart) {
		return validate.Field("chart", "must be a chart name (letters, digits, '.', '_', '-' and '/' between OCI path components), got %q", chart)
	}
	return nil
}

func optional(v string, check func() error) error {
	if v == "" {
		return nil
	}
	return check()
}
