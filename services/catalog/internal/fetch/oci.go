package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"helm.sh/helm/v3/pkg/chart"
)

// Media types of Helm charts stored in OCI registries.
const (
	HelmConfigMediaType = "application/vnd.cncf.helm.config.v1+json"
	HelmChartMediaType  = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	// legacyChartMediaType is what Helm before 3.8 pushed; Helm still pulls it.
	legacyChartMediaType = "application/tar+gzip"
)

// Bounds of what is read from a registry.
const (
	// maxOCIAnswer bounds every answer but archives: catalog pages, tag
	// lists, manifests (4 MiB is what registries accept for manifests),
	// token exchanges.
	maxOCIAnswer = 4 << 20
	// MaxConfigBytes bounds a chart's config blob (its Chart.yaml as JSON).
	MaxConfigBytes = 1 << 20
	pageSize       = 1000
	// maxPages bounds a catalog or a tag list to 100,000 entries.
	maxPages = 100
)

// createdAnnotation is the manifest annotation Helm sets to the push time.
const createdAnnotation = "org.opencontainers.image.created"

// pathComponent is a component of an OCI repository name (distribution spec).
var pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)

// ociPath is the repository path under an oci:// URL, "" at the registry's root.
func ociPath(u *url.URL) (string, error) {
	if u.RawPath != "" {
		return "", fmt.Errorf("%w: the path of oci://%s is escaped; OCI repository names never need escaping", ErrInvalidURL, hostOf(u))
	}
	p := strings.TrimPrefix(u.Path, "/")
	if p == "" {
		return "", nil
	}
	for _, c := range strings.Split(p, "/") {
		if !pathComponent.MatchString(c) {
			return "", fmt.Errorf("%w: %q in the path of oci://%s is not an OCI repository name component (lower-case letters and digits, separated by '.', '_', '__' or '-')", ErrInvalidURL, c, hostOf(u))
		}
	}
	return p, nil
}

// ociTarget is a checked oci:// repository URL.
type ociTarget struct {
	host string // as in the URL, for messages and names
	path string // repository path under the registry; may be ""
	reg  name.Registry
}

func (f *Fetcher) nameOptions() []name.Option {
	opts := []name.Option{name.StrictValidation}
	if f.allowHTTP {
		opts = append(opts, name.Insecure)
	}
	return opts
}

func (f *Fetcher) ociRepo(raw string) (ociTarget, error) {
	u, err := f.checkURL(raw)
	if err != nil {
		return ociTarget{}, err
	}
	if u.Scheme != "oci" {
		return ociTarget{}, fmt.Errorf("%w: %s is an HTTP chart repository, not an OCI registry (oci://)", ErrInvalidURL, hostOf(u))
	}
	p, err := ociPath(u)
	if err != nil {
		return ociTarget{}, err
	}
	reg, err := name.NewRegistry(u.Host, f.nameOptions()...)
	if err != nil {
		return ociTarget{}, fmt.Errorf("%w: %s is not a registry host the OCI client accepts", ErrInvalidURL, u.Host)
	}
	return ociTarget{host: u.Host, path: p, reg: reg}, nil
}

// repository is chart's OCI repository under t.
func (f *Fetcher) repository(t ociTarget, chart string) (name.Repository, error) {
	if !pathComponent.MatchString(chart) {
		return name.Repository{}, fmt.Errorf("%w: %q is not a chart name an OCI repository can have (lower-case letters and digits, separated by '.', '_', '__' or '-')", ErrInvalidURL, chart)
	}
	full := t.host + "/" + chart
	if t.path != "" {
		full = t.host + "/" + t.path + "/" + chart
	}
	repo, err := name.NewRepository(full, f.nameOptions()...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("%w: chart %q under oci://%s is not a valid OCI repository name", ErrInvalidURL, chart, t.host)
	}
	return repo, nil
}

// registryClient is go-containerregistry's view of the policy: every
// request checked (schemes too: without AllowHTTP, the plain-HTTP fallback
// go-containerregistry uses for loopback and private addresses is
// refused), every answer bounded, the client certificate presented only to
// the registry.
type registryClient struct {
	rt   http.RoundTripper
	auth authn.Authenticator
	opts []remote.Option
}

func (f *Fetcher) registryClient(ctx context.Context, t ociTarget, auth *Auth) (*registryClient, error) {
	if auth.basic() && auth.bearer() {
		return nil, fmt.Errorf("%w: the login for %s has both a username/password and a bearer token", ErrInvalidAuth, t.host)
	}
	rt, err := f.roundTripper(&url.URL{Scheme: "https", Host: t.reg.RegistryStr()}, auth)
	if err != nil {
		return nil, err
	}
	rt = f.policy.Client(&cappedRT{rt: rt, def: maxOCIAnswer}, f.httpSchemes()...).Transport
	var a authn.Authenticator = authn.Anonymous
	switch {
	case auth.basic():
		a = &authn.Basic{Username: auth.Username, Password: auth.Password}
	case auth.bearer():
		a = &authn.Bearer{Token: auth.BearerToken}
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(rt),
		remote.WithAuth(a),
		remote.WithPageSize(pageSize),
		// go-containerregistry retries 5xx and 429; a tenant's failing
		// registry should not hold a request for long.
		remote.WithRetryBackoff(remote.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 3}),
	}
	if f.userAgent != "" {
		opts = append(opts, remote.WithUserAgent(f.userAgent))
	}
	return &registryClient{rt: rt, auth: a, opts: opts}, nil
}

// OCICharts returns the names of the charts under repoURL
// (oci://host[:port]/path), sorted. With names, those are checked to be
// valid chart repository names and returned without asking the registry.
// Without, the registry's catalog API (/v2/_catalog, paginated) is read
// and the repositories directly under the path returned; a registry that
// refuses it gives ErrCatalogUnsupported (the charts must then be listed).
func (f *Fetcher) OCICharts(ctx context.Context, repoURL string, names []string, auth *Auth) ([]string, error) {
	t, err := f.ociRepo(repoURL)
	if err != nil {
		return nil, err
	}
	if len(names) > 0 {
		out := make([]string, 0, len(names))
		for _, n := range names {
			if _, err := f.repository(t, n); err != nil {
				return nil, err
			}
			out = append(out, n)
		}
		slices.Sort(out)
		return slices.Compact(out), nil
	}
	c, err := f.registryClient(ctx, t, auth)
	if err != nil {
		return nil, err
	}
	const what = "the repository catalog"
	p, err := remote.NewPuller(c.opts...)
	if err != nil {
		return nil, fmt.Errorf("fetch: registry client: %w", err)
	}
	cat, err := p.Catalogger(ctx, t.reg)
	if err != nil {
		return nil, f.catalogError(ctx, err, t, c, auth)
	}
	prefix := ""
	if t.path != "" {
		prefix = t.path + "/"
	}
	var out []string
	for pages := 0; cat.HasNext(); pages++ {
		if pages == maxPages {
			return nil, fmt.Errorf("%w: the catalog of %s has over %d repositories: list the charts (oci_charts)", ErrCatalogUnsupported, t.host, maxPages*pageSize)
		}
		page, err := cat.Next(ctx)
		if err != nil {
			return nil, f.classify(ctx, err, t.host, what, auth.login())
		}
		for _, r := range page.Repos {
			if rest, ok := strings.CutPrefix(r, prefix); ok && pathComponent.MatchString(rest) {
				out = append(out, rest)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// catalogError tells a registry that refuses its catalog (many do:
// Docker Hub, GHCR, Harbor for non-admins) from one that refuses the login.
func (f *Fetcher) catalogError(ctx context.Context, err error, t ociTarget, c *registryClient, auth *Auth) error {
	var te *transport.Error
	if !errors.As(err, &te) {
		return f.classify(ctx, err, t.host, "the repository catalog", auth.login())
	}
	switch code := te.StatusCode; {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		// The catalog is refused; is the login? A registry checks it for
		// /v2/ (or for the token it hands out for no scope).
		if err := f.checkLogin(ctx, t, c, auth); err != nil {
			return err
		}
		return fmt.Errorf("%w: %s refuses to list its repositories (HTTP %d): list the charts (oci_charts)", ErrCatalogUnsupported, t.host, code)
	case code == http.StatusNotFound || code == http.StatusMethodNotAllowed || code == http.StatusBadRequest || code == http.StatusNotImplemented:
		return fmt.Errorf("%w: %s has no catalog API (HTTP %d): list the charts (oci_charts)", ErrCatalogUnsupported, t.host, code)
	}
	for _, d := range te.Errors {
		if d.Code == transport.UnsupportedErrorCode {
			return fmt.Errorf("%w: %s does not support the catalog API: list the charts (oci_charts)", ErrCatalogUnsupported, t.host)
		}
	}
	return f.classify(ctx, err, t.host, "the repository catalog", auth.login())
}

// checkLogin returns ErrUnauthorized when the registry refuses auth as a
// login at all, nil when it accepts it (or wants none).
func (f *Fetcher) checkLogin(ctx context.Context, t ociTarget, c *registryClient, auth *Auth) error {
	const what = "the API version check"
	tr, err := transport.NewWithContext(ctx, t.reg, c.auth, c.rt, nil)
	if err != nil {
		return f.classify(ctx, err, t.host, what, auth.login())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+t.reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return fmt.Errorf("%w: no request for %s can be made", ErrInvalidURL, t.host)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return f.classify(ctx, err, t.host, what, auth.login())
	}
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return statusError(t.host, what, resp.StatusCode, auth.login())
	}
	return nil
}

// OCITags returns the versions of chart under repoURL: its tags that are
// chart versions (SemVer, as Helm reads them), with the '_' Helm stores for
// '+' mapped back, in ascending version order.
func (f *Fetcher) OCITags(ctx context.Context, repoURL, chart string, auth *Auth) ([]string, error) {
	t, err := f.ociRepo(repoURL)
	if err != nil {
		return nil, err
	}
	repo, err := f.repository(t, chart)
	if err != nil {
		return nil, err
	}
	c, err := f.registryClient(ctx, t, auth)
	if err != nil {
		return nil, err
	}
	what := "the tags of chart " + chart
	p, err := remote.NewPuller(c.opts...)
	if err != nil {
		return nil, fmt.Errorf("fetch: registry client: %w", err)
	}
	lister, err := p.Lister(ctx, repo)
	if err != nil {
		return nil, f.classify(ctx, err, t.host, what, auth.login())
	}
	type version struct {
		s string
		v *semver.Version
	}
	var versions []version
	for pages := 0; lister.HasNext(); pages++ {
		if pages == maxPages {
			return nil, fmt.Errorf("%w: chart %s in %s has over %d tags", ErrTooLarge, chart, t.host, maxPages*pageSize)
		}
		page, err := lister.Next(ctx)
		if err != nil {
			return nil, f.classify(ctx, err, t.host, what, auth.login())
		}
		for _, tag := range page.Tags {
			s := strings.ReplaceAll(tag, "_", "+")
			if v, err := semver.NewVersion(s); err == nil {
				versions = append(versions, version{s, v})
			}
		}
	}
	slices.SortStableFunc(versions, func(a, b version) int {
		if c := a.v.Compare(b.v); c != 0 {
			return c
		}
		return strings.Compare(a.s, b.s)
	})
	out := make([]string, 0, len(versions))
	for _, v := range versions {
		out = append(out, v.s)
	}
	return slices.Compact(out), nil
}

// OCIVersion is one chart version in an OCI registry.
type OCIVersion struct {
	Chart, Version string
	ManifestDigest string // "sha256:..."
	// ArchiveDigest is the digest of the chart layer, the sha256 of the
	// .tgz: what OCIArchive downloads.
	ArchiveDigest string
	// Metadata is the chart's Chart.yaml, from the config blob.
	Metadata *chart.Metadata
	// Created is the manifest's org.opencontainers.image.created
	// annotation; zero when absent or unparsable.
	Created time.Time
}

// OCIVersion reads one version's manifest and config; version is a tag,
// or a manifest digest ("sha256:..."). A manifest that is
// not a Helm chart's (another config media type, no chart layer, a config
// naming another chart or version) is ErrNotChart.
func (f *Fetcher) OCIVersion(ctx context.Context, repoURL, chartName, version string, auth *Auth) (OCIVersion, error) {
	t, err := f.ociRepo(repoURL)
	if err != nil {
		return OCIVersion{}, err
	}
	repo, err := f.repository(t, chartName)
	if err != nil {
		return OCIVersion{}, err
	}
	what := "version " + version + " of chart " + chartName
	var ref name.Reference
	byDigest := strings.HasPrefix(version, "sha256:")
	if byDigest {
		what = "manifest " + version + " of chart " + chartName
		ref, err = name.NewDigest(repo.Name()+"@"+version, f.nameOptions()...)
	} else {
		ref, err = name.NewTag(repo.Name()+":"+strings.ReplaceAll(version, "+", "_"), f.nameOptions()...)
	}
	if version == "" || err != nil {
		return OCIVersion{}, fmt.Errorf("%w: %q cannot be the version of a chart in an OCI registry (not a valid tag or digest)", ErrNotFound, version)
	}
	c, err := f.registryClient(ctx, t, auth)
	if err != nil {
		return OCIVersion{}, err
	}
	desc, err := remote.Get(ref, c.opts...)
	if err != nil {
		return OCIVersion{}, f.classify(ctx, err, t.host, what, auth.login())
	}
	if desc.MediaType != types.OCIManifestSchema1 && desc.MediaType != types.DockerManifestSchema2 {
		return OCIVersion{}, fmt.Errorf("%w: %s in %s is a %s, not a chart's manifest", ErrNotChart, what, t.host, desc.MediaType)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return OCIVersion{}, fmt.Errorf("%w: the manifest of %s in %s does not decode", ErrBadResponse, what, t.host)
	}
	if m.Config.MediaType != HelmConfigMediaType {
		return OCIVersion{}, fmt.Errorf("%w: %s in %s has a config of type %q, not %s", ErrNotChart, what, t.host, m.Config.MediaType, HelmConfigMediaType)
	}
	layer, err := chartLayer(m)
	if err != nil {
		return OCIVersion{}, fmt.Errorf("%w: %s in %s %v", ErrNotChart, what, t.host, err)
	}
	if m.Config.Size > MaxConfigBytes {
		return OCIVersion{}, fmt.Errorf("%w: the config of %s in %s is over %d bytes", ErrTooLarge, what, t.host, MaxConfigBytes)
	}
	cfg, err := f.blob(ctx, t, repo, m.Config.Digest, auth, MaxConfigBytes, "the config of "+what)
	if err != nil {
		return OCIVersion{}, err
	}
	md := new(chart.Metadata)
	if err := json.Unmarshal(cfg, md); err != nil {
		return OCIVersion{}, fmt.Errorf("%w: the config of %s in %s is not chart metadata", ErrNotChart, what, t.host)
	}
	if md.Name != chartName || (!byDigest && md.Version != version && strings.ReplaceAll(md.Version, "+", "_") != version) {
		return OCIVersion{}, fmt.Errorf("%w: the config of %s in %s describes chart %q version %q", ErrNotChart, what, t.host, md.Name, md.Version)
	}
	out := OCIVersion{
		Chart:          chartName,
		Version:        md.Version,
		ManifestDigest: desc.Digest.String(),
		ArchiveDigest:  layer.Digest.String(),
		Metadata:       md,
	}
	if s, ok := m.Annotations[createdAnnotation]; ok {
		if ts, err := time.Parse(time.RFC3339Nano, s); err == nil {
			out.Created = ts
		}
	}
	return out, nil
}

// chartLayer is the manifest's one chart layer.
func chartLayer(m *v1.Manifest) (v1.Descriptor, error) {
	var found []v1.Descriptor
	for _, mt := range []types.MediaType{HelmChartMediaType, legacyChartMediaType} {
		for _, l := range m.Layers {
			if l.MediaType == mt {
				found = append(found, l)
			}
		}
		if len(found) > 0 {
			break
		}
	}
	switch len(found) {
	case 0:
		return v1.Descriptor{}, fmt.Errorf("has no layer of type %s", HelmChartMediaType)
	case 1:
		return found[0], nil
	}
	return v1.Descriptor{}, fmt.Errorf("has %d chart layers", len(found))
}

// OCIArchive downloads chart's layer blob archiveDigest (an
// OCIVersion.ArchiveDigest), verifying the digest, bounded by maxBytes.
func (f *Fetcher) OCIArchive(ctx context.Context, repoURL, chart, archiveDigest string, auth *Auth, maxBytes int64) ([]byte, error) {
	t, err := f.ociRepo(repoURL)
	if err != nil {
		return nil, err
	}
	repo, err := f.repository(t, chart)
	if err != nil {
		return nil, err
	}
	if maxBytes <= 0 {
		return nil, fmt.Errorf("fetch OCI archive: maxBytes %d is not positive", maxBytes)
	}
	h, err := v1.NewHash(archiveDigest)
	if err != nil || h.Algorithm != "sha256" {
		return nil, fmt.Errorf("fetch OCI archive: %q is not a sha256 digest", archiveDigest)
	}
	return f.blob(ctx, t, repo, h, auth, maxBytes, "the archive of chart "+chart)
}

// blob downloads a blob of repo, at most limit bytes, and checks its digest.
func (f *Fetcher) blob(ctx context.Context, t ociTarget, repo name.Repository, h v1.Hash, auth *Auth, limit int64, what string) ([]byte, error) {
	c, err := f.registryClient(withLimit(ctx, limit), t, auth)
	if err != nil {
		return nil, err
	}
	layer, err := remote.Layer(repo.Digest(h.String()), c.opts...)
	if err != nil {
		return nil, f.classify(ctx, err, t.host, what, auth.login())
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, f.classify(ctx, err, t.host, what, auth.login())
	}
	defer rc.Close()
	sum := sha256.New()
	b, err := io.ReadAll(io.TeeReader(rc, sum))
	matches := hex.EncodeToString(sum.Sum(nil)) == h.Hex
	var netErr net.Error
	switch {
	case err != nil && !matches && !errors.Is(err, ErrTooLarge) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &netErr) && ctx.Err() == nil:
		// go-containerregistry checks the digest at the end of the body.
		return nil, fmt.Errorf("%w: %s from %s does not match its digest %s", ErrBadResponse, what, t.host, h)
	case err != nil:
		return nil, f.classify(ctx, err, t.host, what, auth.login())
	case !matches:
		return nil, fmt.Errorf("%w: %s from %s does not match its digest %s", ErrBadResponse, what, t.host, h)
	}
	return b, nil
}

// OCIReference is a chart named by one oci:// reference.
type OCIReference struct {
	Repository string // the oci:// URL the chart is under
	Chart      string
	Version    string // a tag, or a manifest digest ("sha256:...")
}

// ParseOCIReference splits "oci://host/path/chart:tag" or
// "oci://host/path/chart@sha256:..." into the repository URL, the chart
// and its version; the URL itself is checked by the fetches.
func ParseOCIReference(ref string) (OCIReference, error) {
	rest, ok := strings.CutPrefix(ref, "oci://")
	if !ok {
		return OCIReference{}, fmt.Errorf("%w: %q is not an oci:// reference", ErrInvalidURL, ref)
	}
	var version string
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest, version = rest[:at], rest[at+1:]
		if _, err := v1.NewHash(version); err != nil || !strings.HasPrefix(version, "sha256:") {
			return OCIReference{}, fmt.Errorf("%w: %q in %q is not a sha256 manifest digest", ErrInvalidURL, version, ref)
		}
	} else if c := strings.LastIndex(rest, ":"); c > strings.LastIndex(rest, "/") {
		rest, version = rest[:c], rest[c+1:]
	}
	slash := strings.LastIndex(rest, "/")
	if version == "" || slash <= 0 || slash == len(rest)-1 {
		return OCIReference{}, fmt.Errorf("%w: %q must name a chart under a registry with a tag or digest (oci://host/path/chart:1.2.3)", ErrInvalidURL, ref)
	}
	return OCIReference{Repository: "oci://" + rest[:slash], Chart: rest[slash+1:], Version: version}, nil
}
