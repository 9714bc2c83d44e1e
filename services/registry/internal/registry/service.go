// Package registry is Slipway's record of deployable container images: the
// immutable mapping (org, name, version) -> reference, digest.
//
// Layers, one file each: service.go (domain), endpoint.go (go-kit
// endpoints), transport_grpc.go (proto <-> domain), middleware.go (logging,
// metrics), errors.go (domain errors -> gRPC codes), store.go (persistence).
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/distribution/reference"
	"github.com/google/uuid"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/paging"
	"github.com/slipwayhq/slipway/pkg/validate"
)

// Errors of the images API; errors.go maps them to gRPC codes. Their text is
// shown to callers.
var (
	ErrImageExists   = errors.New("image already exists")
	ErrImageNotFound = errors.New("image not found")
	ErrUnauthorized  = errors.New("caller may not do this")
)

// MaxReferenceLen bounds an image reference (registries cap names at 255,
// plus tag and digest).
const MaxReferenceLen = 512

// Image is one immutable image version of an organization.
type Image struct {
	ID        string // time-ordered unique id; the list order and page key
	Org       string
	Name      string
	Version   string
	Reference string
	Digest    string
	Creator   string
	Created   time.Time
}

// NewImage is what a caller supplies to record an image.
type NewImage struct {
	Name      string
	Version   string
	Reference string
}

// ImageFilter narrows a list; empty fields match everything.
type ImageFilter struct {
	Name    string
	Version string
}

// PageRequest asks for one page of a list.
type PageRequest struct {
	Size  int32
	Token string
}

// ImagePage is one page of images, newest first.
type ImagePage struct {
	Images        []Image
	NextPageToken string
}

// Service is the images API. The organization is always the verified
// caller's (see identity.FromContext), never a field of the input.
type Service interface {
	CreateImage(ctx context.Context, img NewImage) (Image, error)
	GetImage(ctx context.Context, name, version string) (Image, error)
	ListImages(ctx context.Context, f ImageFilter, p PageRequest) (ImagePage, error)
	DeleteImage(ctx context.Context, name, version string) error
	ReceivePushEvents(ctx context.Context, events []PushEvent) (PushResult, error)
	GetPushRule(ctx context.Context) (PushRule, error)
	UpdatePushRule(ctx context.Context, r PushRule) (PushRule, error)
	ListImageDeployments(ctx context.Context, name, version string, p PageRequest) (DeploymentPage, error)
	ListDigestDeployments(ctx context.Context, digest string, p PageRequest) (DeploymentPage, error)
}

// Middleware decorates a Service.
type Middleware func(Service) Service

// Options tune the service.
type Options struct {
	// AcceptUnresolved records an image whose reference cannot be resolved
	// (an air-gapped registry Slipway cannot reach) with the digest the
	// reference pins, if any, instead of refusing it. Off by default:
	// deployments then run by digest, exactly the image recorded.
	AcceptUnresolved bool
}

type service struct {
	store       Store
	resolver    Resolver
	deployments Deployments
	opts        Options
	log         *slog.Logger
	now         func() time.Time
}

// NewService returns the images API over store, resolving digests with
// resolver and asking deployments where images run.
func NewService(store Store, resolver Resolver, deployments Deployments, opts Options, log *slog.Logger) Service {
	return &service{store: store, resolver: resolver, deployments: deployments, opts: opts, log: log, now: time.Now}
}

func (s *service) CreateImage(ctx context.Context, in NewImage) (Image, error) {
	caller, err := callerWith(ctx, identity.RoleDeployer)
	if err != nil {
		return Image{}, err
	}
	img, _, err := s.create(ctx, caller, in)
	return img, err
}

// create records in for caller. When the version is recorded already it
// returns ErrImageExists with the recorded image, which push webhooks
// compare with what was pushed.
func (s *service) create(ctx context.Context, caller identity.Identity, in NewImage) (Image, Image, error) {
	ref, digest, err := validateNewImage(in)
	if err != nil {
		return Image{}, Image{}, err
	}
	exists := fmt.Errorf("%w: %s version %s is immutable; record a new version instead", ErrImageExists, in.Name, in.Version)
	// An image is never overwritten: say so before asking any registry.
	if old, err := s.store.GetImage(ctx, caller.Org, in.Name, in.Version); err == nil {
		return Image{}, old, exists
	}
	if digest, err = s.resolve(ctx, caller.Org, ref, digest); err != nil {
		return Image{}, Image{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Image{}, Image{}, fmt.Errorf("new image id: %w", err)
	}
	img := Image{
		ID:        id.String(),
		Org:       caller.Org,
		Name:      in.Name,
		Version:   in.Version,
		Reference: ref,
		Digest:    digest,
		Creator:   caller.Subject,
		Created:   s.now().UTC().Truncate(time.Microsecond),
	}
	if err := s.store.InsertImage(ctx, img); err != nil {
		if errors.Is(err, ErrImageExists) {
			// Recorded concurrently: read back what won.
			old, _ := s.store.GetImage(ctx, caller.Org, in.Name, in.Version)
			return Image{}, old, exists
		}
		return Image{}, Image{}, fmt.Errorf("insert image: %w", err)
	}
	return img, Image{}, nil
}

// resolve returns the digest ref resolves to now, which must be pinned
// when ref pins one. With AcceptUnresolved, a reference that cannot be
// resolved keeps its pinned digest (or none).
func (s *service) resolve(ctx context.Context, org, ref, pinned string) (string, error) {
	got, err := s.resolver.Resolve(ctx, org, ref)
	switch {
	case err != nil && s.opts.AcceptUnresolved && (errors.Is(err, ErrUnresolvable) || errors.Is(err, ErrRegistryUnavailable)):
		s.log.WarnContext(ctx, "image recorded unresolved", "reference", ref, "error", err)
		return pinned, nil
	case err != nil:
		return "", err
	case pinned != "" && got != pinned:
		return "", fmt.Errorf("%w: %s resolves to %s, not the digest it names", ErrUnresolvable, ref, got)
	}
	return got, nil
}

func (s *service) GetImage(ctx context.Context, name, version string) (Image, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return Image{}, err
	}
	if err := validateKey(name, version); err != nil {
		return Image{}, err
	}
	img, err := s.store.GetImage(ctx, caller.Org, name, version)
	if err != nil {
		return Image{}, notFound(err, name, version)
	}
	return img, nil
}

func (s *service) ListImages(ctx context.Context, f ImageFilter, p PageRequest) (ImagePage, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return ImagePage{}, err
	}
	if err := validate.First(
		optional(f.Name, func() error { return validate.DNSLabel("name", f.Name) }),
		optional(f.Version, func() error { return validateVersion(f.Version) }),
	); err != nil {
		return ImagePage{}, err
	}
	size, err := paging.Size(p.Size)
	if err != nil {
		return ImagePage{}, err
	}
	fp := paging.Fingerprint(caller.Org, f.Name, f.Version)
	after, err := paging.Decode(p.Token, fp)
	if err != nil {
		return ImagePage{}, err
	}
	// One extra row tells whether another page follows.
	imgs, err := s.store.ListImages(ctx, caller.Org, f, after, size+1)
	if err != nil {
		return ImagePage{}, fmt.Errorf("list images: %w", err)
	}
	page := ImagePage{Images: imgs}
	if len(imgs) > size {
		page.Images = imgs[:size]
		page.NextPageToken = paging.Encode(imgs[size-1].ID, fp)
	}
	return page, nil
}

func (s *service) DeleteImage(ctx context.Context, name, version string) error {
	caller, err := callerWith(ctx, identity.RoleDeployer)
	if err != nil {
		return err
	}
	if err := validateKey(name, version); err != nil {
		return err
	}
	img, err := s.store.GetImage(ctx, caller.Org, name, version)
	if err != nil {
		return notFound(err, name, version)
	}
	if err := s.checkUnused(ctx, img); err != nil {
		return err
	}
	if err := s.store.DeleteImage(ctx, caller.Org, name, version); err != nil {
		return notFound(err, name, version)
	}
	return nil
}

// callerWith returns the verified caller, refusing one whose role is below min.
func callerWith(ctx context.Context, min identity.Role) (identity.Identity, error) {
	id, ok := identity.FromContext(ctx)
	if !ok {
		return identity.Identity{}, fmt.Errorf("%w: no caller identity", ErrUnauthorized)
	}
	if !id.Role.AtLeast(min) {
		return identity.Identity{}, fmt.Errorf("%w: role %s needed, caller is %s", ErrUnauthorized, min, id.Role)
	}
	return id, nil
}

func notFound(err error, name, version string) error {
	if errors.Is(err, ErrImageNotFound) {
		return fmt.Errorf("%w: %s version %s", ErrImageNotFound, name, version)
	}
	return err
}

// versionPattern is the OCI distribution tag grammar.
var versionPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

func validateVersion(v string) error {
	switch {
	case v == "":
		return validate.Field("version", "required")
	case len(v) > 128:
		return validate.Field("version", "must be at most 128 characters, got %d", len(v))
	case !versionPattern.MatchString(v):
		return validate.Field("version", "must be a tag: letters, digits, '_', '.' and '-', not starting with '.' or '-', got %q", v)
	}
	return nil
}

func validateKey(name, version string) error {
	return validate.First(validate.DNSLabel("name", name), validateVersion(version))
}

// validateNewImage checks the input and returns the normalized reference and
// the digest it pins, if any.
func validateNewImage(in NewImage) (ref, digest string, err error) {
	if err := validateKey(in.Name, in.Version); err != nil {
		return "", "", err
	}
	return parseReference(in.Reference)
}

// parseReference validates an OCI image reference and returns it fully
// qualified ("nginx:1.27" -> "docker.io/library/nginx:1.27") with its digest.
func parseReference(s string) (ref, digest string, err error) {
	const field = "reference"
	switch {
	case s == "":
		return "", "", validate.Field(field, "required")
	case len(s) > MaxReferenceLen:
		return "", "", validate.Field(field, "must be at most %d characters, got %d", MaxReferenceLen, len(s))
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return "", "", validate.Field(field, "is not a valid OCI image reference (%v)", err)
	}
	if d, ok := named.(reference.Digested); ok {
		digest = d.Digest().String()
	}
	return named.String(), digest, nil
}

func optional(v string, check func() error) error {
	if v == "" {
		return nil
	}
	return check()
}
