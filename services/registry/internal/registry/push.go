package registry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/validate"
)

// PushNaming says which part of a repository names the image.
type PushNaming int

// Namings.
const (
	NamingLastSegment PushNaming = 1 // "team/billing/api" is "api"
	NamingPath        PushNaming = 2 // "billing/api" is "billing-api"
)

// PushRule maps pushed repositories to image names (the version is the tag).
type PushRule struct {
	// RepositoryPrefix limits the rule to repositories under it, and is
	// removed before naming.
	RepositoryPrefix string
	Naming           PushNaming
}

// DefaultPushRule applies until an org sets its own.
var DefaultPushRule = PushRule{Naming: NamingLastSegment}

// maxPrefixLen bounds a rule's repository prefix.
const maxPrefixLen = 255

func (r PushRule) validate() error {
	if len(r.RepositoryPrefix) > maxPrefixLen {
		return validate.Field("rule.repository_prefix", "at most %d characters", maxPrefixLen)
	}
	if r.RepositoryPrefix != "" && !repositoryPrefix.MatchString(r.RepositoryPrefix) {
		return validate.Field("rule.repository_prefix", "must be repository path segments ending in \"/\" (lower-case letters, digits, '.', '_', '-'), e.g. team/")
	}
	if r.Naming != NamingLastSegment && r.Naming != NamingPath {
		return validate.Field("rule.naming", "must be PUSH_NAMING_LAST_SEGMENT or PUSH_NAMING_PATH")
	}
	return nil
}

// repositoryPrefix is one or more repository path segments, each followed
// by "/".
var repositoryPrefix = regexp.MustCompile(`^([a-z0-9]+([._-][a-z0-9]+)*/)+$`)

func (s *service) GetPushRule(ctx context.Context) (PushRule, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return PushRule{}, err
	}
	return s.store.GetPushRule(ctx, caller.Org)
}

func (s *service) UpdatePushRule(ctx context.Context, r PushRule) (PushRule, error) {
	caller, err := callerWith(ctx, identity.RoleAdmin)
	if err != nil {
		return PushRule{}, err
	}
	if r.Naming == 0 {
		r.Naming = NamingLastSegment
	}
	if err := r.validate(); err != nil {
		return PushRule{}, err
	}
	if err := s.store.PutPushRule(ctx, caller.Org, r, s.now().UTC()); err != nil {
		return PushRule{}, err
	}
	return r, nil
}

// MaxPushEvents bounds the events of one notification envelope
// (distribution sends them one or a few at a time).
const MaxPushEvents = 100

// PushEvent is one event of an OCI registry's notification envelope, as
// far as Slipway reads it.
type PushEvent struct {
	ID, Action                              string
	MediaType, Digest, Repository, URL, Tag string
}

// PushResult says what became of an envelope's events.
type PushResult struct {
	Created  []Image
	Existing []string // "name:version" already recorded with the pushed digest
	Skipped  []string // why an event recorded nothing
}

// manifestTypes are the media types whose push records an image (a blob
// or a signature pushed with a tag does not name a deployable image).
var manifestTypes = []string{
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}

func (s *service) ReceivePushEvents(ctx context.Context, events []PushEvent) (PushResult, error) {
	caller, err := callerWith(ctx, identity.RoleDeployer)
	if err != nil {
		return PushResult{}, err
	}
	if len(events) > MaxPushEvents {
		return PushResult{}, validate.Field("events", "at most %d events per envelope, got %d", MaxPushEvents, len(events))
	}
	rule, err := s.store.GetPushRule(ctx, caller.Org)
	if err != nil {
		return PushResult{}, err
	}
	var res PushResult
	for _, e := range events {
		in, why := imageFromEvent(e, rule)
		if why != "" {
			res.Skipped = append(res.Skipped, fmt.Sprintf("event %s: %s", short(e.ID), why))
			continue
		}
		key := in.Name + ":" + in.Version
		img, old, err := s.create(ctx, caller, in)
		switch {
		case err == nil:
			res.Created = append(res.Created, img)
		case errors.Is(err, ErrImageExists) && old.Digest == e.Digest:
			res.Existing = append(res.Existing, key)
		case errors.Is(err, ErrImageExists):
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s is recorded with digest %s, not the pushed %s; images are immutable: push a new tag", key, orNone(old.Digest), e.Digest))
		case errors.Is(err, ErrUnresolvable):
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s: %v", key, err))
		default:
			// Unavailable and the like: the registry retries the envelope,
			// and what was recorded already counts as existing then.
			return PushResult{}, err
		}
	}
	return res, nil
}

// imageFromEvent maps a push to the image it records by rule (the version
// is the tag), or says why the event records none.
func imageFromEvent(e PushEvent, rule PushRule) (NewImage, string) {
	switch {
	case e.Action != "push":
		return NewImage{}, fmt.Sprintf("%s: not a push", quoteShort(e.Action))
	case e.Tag == "":
		return NewImage{}, "a push by digest: no tag to record as a version"
	case !slices.Contains(manifestTypes, e.MediaType):
		return NewImage{}, fmt.Sprintf("media type %s is not an image manifest or index", quoteShort(e.MediaType))
	case !digestPattern.MatchString(e.Digest):
		return NewImage{}, "the digest is not sha256: and 64 hex digits"
	}
	u, err := url.Parse(e.URL)
	if err != nil || u.Host == "" || u.User != nil {
		return NewImage{}, "the target URL names no registry host"
	}
	rest, ok := strings.CutPrefix(e.Repository, rule.RepositoryPrefix)
	if !ok || rest == "" {
		return NewImage{}, fmt.Sprintf("repository %s is not under the org's prefix %s", quoteShort(e.Repository), quoteShort(rule.RepositoryPrefix))
	}
	name := path.Base(rest)
	if rule.Naming == NamingPath {
		name = strings.ReplaceAll(rest, "/", "-")
	}
	in := NewImage{Name: name, Version: e.Tag, Reference: u.Host + "/" + e.Repository + ":" + e.Tag}
	if err := validateKey(in.Name, in.Version); err != nil {
		return NewImage{}, fmt.Sprintf("repository %s, tag %s: %v", quoteShort(e.Repository), quoteShort(e.Tag), err)
	}
	if _, _, err := parseReference(in.Reference); err != nil {
		return NewImage{}, fmt.Sprintf("%v", err)
	}
	return in, ""
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// quoteShort quotes a payload value, cut so that an event cannot make a
// response arbitrarily long.
func quoteShort(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return fmt.Sprintf("%q", s)
}

func short(id string) string {
	if len(id) > 40 {
		return id[:40]
	}
	return id
}
