package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/uuid"

	"github.com/slipwayhq/slipway/pkg/chartarchive"
	"github.com/slipwayhq/slipway/pkg/helmvalues"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/paging"
	"github.com/slipwayhq/slipway/pkg/validate"
)

// Bounds of an application.
const (
	MaxTargets = 100
	// maxReleaseName is Helm's limit on release names, which are
	// "<application>-<target>".
	maxReleaseName = 53
	maxValuesBytes = 1 << 20
	// maxResolvedVersions bounds the versions a constraint is matched
	// against (newest first).
	maxResolvedVersions = 2000
)

// ChartRef names a chart in one of the organization's repositories, with
// a version constraint; or, for GetChartArchive alone, by an oci://
// reference (OCI, then the other fields are empty).
type ChartRef struct {
	Repository, Chart, Version string
	OCI                        string
}

// Target is a place an application can be deployed to.
type Target struct {
	Name      string
	Cluster   string // id once stored
	Namespace string
	Values    map[string]any
	Status    TargetStatus // output only
}

// TargetStatus is where a target stands (GetApplication).
type TargetStatus struct {
	ChartVersion         string
	DeployedChartVersion string
	UpgradeAvailable     bool
	LatestChartVersion   string
	Error                string
}

// Application is a chart, an image and deploy targets.
type Application struct {
	Org, Name      string
	Chart          ChartRef
	Image          string
	ImageValuesKey string
	Values         map[string]any
	Targets        []Target
	Probes         Probes
	Etag           string
	Creator        string
	Created        time.Time
	Updated        time.Time
}

// ApplicationFilter narrows a list; empty fields match everything. Chart
// is "<repository>/<chart>" or "<chart>".
type ApplicationFilter struct {
	Name, Chart, Image, Cluster string
}

// ApplicationPage is one page of applications by name.
type ApplicationPage struct {
	Applications  []Application
	NextPageToken string
}

// DefaultImageValuesKey is where a deploy puts the image when the
// application names no key.
const DefaultImageValuesKey = helmvalues.DefaultImageKey

// valuesKey is a dotted values path ("image", "app.image").
var valuesKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*){0,7}$`)

// unprocessableError lists everything wrong with an application that its
// input alone does not show: what it names does not exist, or its values
// do not fit the chart's schema.
type unprocessableError struct {
	fields []*validate.FieldError
}

func (e *unprocessableError) Error() string {
	var b strings.Builder
	b.WriteString("application refused: ")
	for i, f := range e.fields {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Error())
	}
	return b.String()
}

func (e *unprocessableError) Unwrap() error                           { return ErrUnprocessable }
func (e *unprocessableError) FieldViolations() []*validate.FieldError { return e.fields }

func (e *unprocessableError) add(field, format string, args ...any) {
	e.fields = append(e.fields, &validate.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// maxViolations bounds the failures one answer lists.
const maxViolations = 50

func (s *service) CreateApplication(ctx context.Context, app Application) (Application, error) {
	caller, err := callerWith(ctx, identity.RoleAdmin)
	if err != nil {
		return Application{}, err
	}
	if err := s.check(ctx, caller.Org, &app); err != nil {
		return Application{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	app.Org, app.Creator, app.Created, app.Updated, app.Etag = caller.Org, caller.Subject, now, now, newEtag()
	if err := s.Store.InsertApplication(ctx, app); err != nil {
		if errors.Is(err, ErrApplicationExists) {
			return Application{}, fmt.Errorf("%w: %s", ErrApplicationExists, app.Name)
		}
		return Application{}, fmt.Errorf("insert application: %w", err)
	}
	return app, nil
}

func (s *service) UpdateApplication(ctx context.Context, app Application) (Application, error) {
	caller, err := callerWith(ctx, identity.RoleAdmin)
	if err != nil {
		return Application{}, err
	}
	if err := validate.DNSLabel("application.name", app.Name); err != nil {
		return Application{}, err
	}
	old, err := s.application(ctx, caller.Org, app.Name)
	if err != nil {
		return Application{}, err
	}
	if app.Etag != "" && app.Etag != old.Etag {
		return Application{}, fmt.Errorf("%w: get it again and reapply your change", ErrEtagMismatch)
	}
	if err := s.check(ctx, caller.Org, &app); err != nil {
		return Application{}, err
	}
	want := old.Etag
	app.Org, app.Creator, app.Created = caller.Org, old.Creator, old.Created
	app.Updated, app.Etag = s.now().UTC().Truncate(time.Microsecond), newEtag()
	if err := s.Store.ReplaceApplication(ctx, app, want); err != nil {
		if errors.Is(err, ErrEtagMismatch) {
			return Application{}, fmt.Errorf("%w: it was replaced concurrently; get it again and reapply your change", ErrEtagMismatch)
		}
		return Application{}, notFoundApp(err, app.Name)
	}
	return app, nil
}

func newEtag() string { return strings.ReplaceAll(uuid.NewString(), "-", "")[:16] }

func (s *service) GetApplication(ctx context.Context, name string) (Application, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return Application{}, err
	}
	if err := validate.DNSLabel("application", name); err != nil {
		return Application{}, err
	}
	app, err := s.application(ctx, caller.Org, name)
	if err != nil {
		return Application{}, err
	}
	s.fillStatus(ctx, &app)
	return visible(caller, app), nil
}

// visible returns app as caller may see it: values can hold what a chart
// is configured with (passwords included), which viewers do not read, as
// they do not read a release's values.
func visible(caller identity.Identity, app Application) Application {
	if caller.Role.AtLeast(identity.RoleDeployer) || caller.Service == releasesService {
		return app
	}
	app.Values = nil
	targets := make([]Target, len(app.Targets))
	for i, t := range app.Targets {
		t.Values = nil
		targets[i] = t
	}
	app.Targets = targets
	return app
}

func (s *service) application(ctx context.Context, org, name string) (Application, error) {
	app, err := s.Store.GetApplication(ctx, org, name)
	return app, notFoundApp(err, name)
}

func notFoundApp(err error, name string) error {
	if errors.Is(err, ErrApplicationNotFound) {
		return fmt.Errorf("%w: %s", ErrApplicationNotFound, name)
	}
	return err
}

// fillStatus reports, per target, the version a deploy would use now and
// what is deployed there. Failures are reported in the status, not as the
// answer's error: the application itself was found.
func (s *service) fillStatus(ctx context.Context, app *Application) {
	resolved, latest, rerr := s.resolve(ctx, app.Org, app.Chart)
	for i := range app.Targets {
		st := TargetStatus{ChartVersion: resolved, LatestChartVersion: latest}
		if rerr != nil {
			st.Error = rerr.Error()
		}
		rel, ok, err := s.Releases.Latest(ctx, app.Org, app.Name, app.Targets[i].Name)
		switch {
		case errors.Is(err, ErrNotTracked):
		case err != nil:
			st.Error = joinText(st.Error, statusMessage(err))
		case ok && rel.Deployed:
			st.DeployedChartVersion = rel.ChartVersion
			st.UpgradeAvailable = newer(resolved, rel.ChartVersion)
		}
		app.Targets[i].Status = st
	}
}

func joinText(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// newer reports whether semantic version a is higher than b.
func newer(a, b string) bool {
	va, err := semver.NewVersion(a)
	if err != nil {
		return false
	}
	vb, err := semver.NewVersion(b)
	if err != nil {
		return false
	}
	return va.GreaterThan(vb)
}

// resolve returns the highest synced version of ref's chart matching its
// constraint, and the chart's latest version. The error says why nothing
// matches, for the caller to show.
func (s *service) resolve(ctx context.Context, org string, ref ChartRef) (string, string, error) {
	c, err := s.Store.GetChart(ctx, org, ref.Repository, ref.Chart)
	if errors.Is(err, ErrChartNotFound) {
		return "", "", fmt.Errorf("repository %s has no chart %s (synced)", ref.Repository, ref.Chart)
	}
	if err != nil {
		return "", "", err
	}
	if ref.Version == "" {
		return c.LatestVersion, c.LatestVersion, nil
	}
	constraint, err := semver.NewConstraint(ref.Version)
	if err != nil {
		return "", c.LatestVersion, fmt.Errorf("version constraint %q: %v", ref.Version, err)
	}
	vs, err := s.Store.ListVersions(ctx, org, ref.Repository, ref.Chart, -1, maxResolvedVersions)
	if err != nil {
		return "", c.LatestVersion, err
	}
	for _, v := range vs {
		sv, err := semver.NewVersion(v.Version.Version)
		if err == nil && constraint.Check(sv) {
			return v.Version.Version, c.LatestVersion, nil
		}
	}
	return "", c.LatestVersion, fmt.Errorf("no synced version of %s matches %q (latest is %s)", ref.Chart, ref.Version, c.LatestVersion)
}

func (s *service) ListApplications(ctx context.Context, f ApplicationFilter, p PageRequest) (ApplicationPage, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return ApplicationPage{}, err
	}
	if err := validate.First(
		optional(f.Name, func() error { return validate.DNSLabel("name", f.Name) }),
		validate.MaxLen("chart", f.Chart, 320),
		optional(f.Image, func() error { return validate.DNSLabel("image", f.Image) }),
		validate.MaxLen("cluster", f.Cluster, 128),
	); err != nil {
		return ApplicationPage{}, err
	}
	size, err := paging.Size(p.Size)
	if err != nil {
		return ApplicationPage{}, err
	}
	fp := paging.Fingerprint(caller.Org, "applications", f.Name, f.Chart, f.Image, f.Cluster)
	after, err := paging.Decode(p.Token, fp)
	if err != nil {
		return ApplicationPage{}, err
	}
	apps, err := s.Store.ListApplications(ctx, caller.Org, f, after, size+1)
	if err != nil {
		return ApplicationPage{}, fmt.Errorf("list applications: %w", err)
	}
	page := ApplicationPage{Applications: apps}
	if len(apps) > size {
		page.Applications = apps[:size]
		page.NextPageToken = paging.Encode(apps[size-1].Name, fp)
	}
	for i := range page.Applications {
		page.Applications[i] = visible(caller, page.Applications[i])
	}
	return page, nil
}

func (s *service) DeleteApplication(ctx context.Context, name string) error {
	caller, err := callerWith(ctx, identity.RoleAdmin)
	if err != nil {
		return err
	}
	if err := validate.DNSLabel("application", name); err != nil {
		return err
	}
	app, err := s.application(ctx, caller.Org, name)
	if err != nil {
		return err
	}
	var deployed []string
	for _, t := range app.Targets {
		rel, ok, err := s.Releases.Latest(ctx, caller.Org, app.Name, t.Name)
		switch {
		case errors.Is(err, ErrNotTracked):
			// Nothing can have been deployed through a releases service
			// that does not report it.
		case err != nil:
			return err
		case ok && rel.Deployed:
			deployed = append(deployed, t.Name)
		}
	}
	if len(deployed) > 0 {
		return fmt.Errorf("%w: application %s is deployed on target(s) %s; uninstall those releases first", ErrInUse, name, strings.Join(deployed, ", "))
	}
	return notFoundApp(s.Store.DeleteApplication(ctx, caller.Org, name), name)
}

// check validates app as given and against what it names, and normalises
// it: target clusters become ids, the image key gets its default.
func (s *service) check(ctx context.Context, org string, app *Application) error {
	if err := checkShape(app); err != nil {
		return err
	}
	bad := &unprocessableError{}
	if _, err := s.repository(ctx, org, app.Chart.Repository); err != nil {
		if !errors.Is(err, ErrRepositoryNotFound) {
			return err
		}
		bad.add("chart.repository", "the organization has no repository %q", app.Chart.Repository)
	}
	var version string
	if len(bad.fields) == 0 {
		v, _, err := s.resolve(ctx, org, app.Chart)
		if err != nil {
			bad.add("chart", "%v", err)
		}
		version = v
	}
	var img *Image
	if app.Image != "" {
		i, err := s.Images.Newest(ctx, org, app.Image)
		switch {
		case errors.Is(err, ErrUnprocessable):
			bad.add("image", "%s", strings.TrimPrefix(err.Error(), ErrUnprocessable.Error()+": "))
		case err != nil:
			return err
		default:
			img = &i
		}
	}
	for i := range app.Targets {
		id, err := s.Clusters.ClusterID(ctx, org, app.Targets[i].Cluster)
		switch {
		case errors.Is(err, ErrUnprocessable):
			bad.add(fmt.Sprintf("targets[%d].cluster", i), "%s", strings.TrimPrefix(err.Error(), ErrUnprocessable.Error()+": "))
		case err != nil:
			return err
		default:
			app.Targets[i].Cluster = id
		}
	}
	if version != "" {
		if err := s.checkValues(ctx, org, app, version, img, bad); err != nil {
			return err
		}
	}
	if len(bad.fields) > 0 {
		if len(bad.fields) > maxViolations {
			bad.fields = bad.fields[:maxViolations]
		}
		return bad
	}
	return nil
}

// checkValues validates, per target, the values a deploy would install
// (chart defaults < application < target < image) against the chart's
// values.schema.json.
func (s *service) checkValues(ctx context.Context, org string, app *Application, version string, img *Image, bad *unprocessableError) error {
	v, err := s.version(ctx, org, app.Chart.Repository, app.Chart.Chart, version)
	if err != nil {
		return err
	}
	if v.Type == "library" {
		bad.add("chart", "%s version %s is a library chart, which cannot be deployed", app.Chart.Chart, version)
		return nil
	}
	c, err := s.contents(ctx, org, v)
	if err != nil {
		if errors.Is(err, ErrUnprocessable) {
			bad.add("chart", "%s version %s: %s", app.Chart.Chart, version, strings.TrimPrefix(err.Error(), ErrUnprocessable.Error()+": "))
			return nil
		}
		return err
	}
	if len(c.SchemaJSON) == 0 {
		return nil
	}
	type layer struct {
		field  string
		values map[string]any
	}
	layers := []layer{{"values", nil}}
	if len(app.Targets) > 0 {
		layers = layers[:0]
		for i, t := range app.Targets {
			layers = append(layers, layer{fmt.Sprintf("targets[%d].values", i), t.Values})
		}
	}
	for _, l := range layers {
		merged := helmvalues.Merge(c.Values, app.Values, l.values, helmvalues.ImageValues(app.ImageValuesKey, helmImage(img)))
		vs, err := chartarchive.Validate(c.SchemaJSON, merged)
		if err != nil {
			bad.add("chart", "%s version %s: its values.schema.json cannot be checked: %v", app.Chart.Chart, version, err)
			return nil
		}
		for _, viol := range vs {
			bad.add(l.field+viol.Path, "%s", viol.Message)
		}
	}
	return nil
}

// helmImage is img as the values of a deploy name it.
func helmImage(img *Image) *helmvalues.Image {
	if img == nil {
		return nil
	}
	return &helmvalues.Image{Version: img.Version, Reference: img.Reference, Digest: img.Digest}
}

// checkShape validates what the input alone shows.
func checkShape(app *Application) error {
	if err := validate.First(
		validate.DNSLabel("name", app.Name),
		validate.DNSLabel("chart.repository", app.Chart.Repository),
	); err != nil {
		return err
	}
	if app.Chart.Chart == "" {
		return validate.Field("chart.chart", "required")
	}
	if len(app.Chart.Chart) > 255 || !chartName.MatchString(app.Chart.Chart) {
		return validate.Field("chart.chart", "must be a chart name, got %q", app.Chart.Chart)
	}
	if app.Chart.Version != "" {
		if len(app.Chart.Version) > 128 {
			return validate.Field("chart.version", "must be at most 128 characters")
		}
		if _, err := semver.NewConstraint(app.Chart.Version); err != nil {
			return validate.Field("chart.version", "must be a version or semantic version constraint (\"1.4.2\", \"^1.2\", \">=2.0 <3.0\"): %v", err)
		}
	}
	if app.Image != "" {
		if err := validate.DNSLabel("image", app.Image); err != nil {
			return err
		}
	}
	if app.ImageValuesKey == "" {
		app.ImageValuesKey = DefaultImageValuesKey
	}
	if !valuesKey.MatchString(app.ImageValuesKey) {
		return validate.Field("image_values_key", "must be a dotted values path of up to 8 keys (\"image\", \"app.image\"), got %q", app.ImageValuesKey)
	}
	if err := valuesSize("values", app.Values); err != nil {
		return err
	}
	if err := checkProbes(&app.Probes); err != nil {
		return err
	}
	if len(app.Targets) > MaxTargets {
		return validate.Field("targets", "at most %d targets, got %d", MaxTargets, len(app.Targets))
	}
	seen := map[string]bool{}
	for i, t := range app.Targets {
		f := fmt.Sprintf("targets[%d]", i)
		if err := validate.First(
			validate.DNSLabel(f+".name", t.Name),
			validate.DNSLabel(f+".namespace", t.Namespace),
			valuesSize(f+".values", t.Values),
		); err != nil {
			return err
		}
		if seen[t.Name] {
			return validate.Field(f+".name", "target %q is named twice", t.Name)
		}
		seen[t.Name] = true
		if n := len(app.Name) + 1 + len(t.Name); n > maxReleaseName {
			return validate.Field(f+".name", "release name %s-%s would be %d characters; Helm allows %d", app.Name, t.Name, n, maxReleaseName)
		}
		if t.Cluster == "" {
			return validate.Field(f+".cluster", "required")
		}
		if err := validate.MaxLen(f+".cluster", t.Cluster, 128); err != nil {
			return err
		}
	}
	return nil
}

func valuesSize(field string, v map[string]any) error {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return validate.Field(field, "cannot be encoded: %v", err)
	}
	if len(b) > maxValuesBytes {
		return validate.Field(field, "must be at most %d bytes as JSON, got %d", maxValuesBytes, len(b))
	}
	return nil
}
