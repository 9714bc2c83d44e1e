package orgs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/gateway/internal/authn"
	"github.com/slipwayhq/slipway/gateway/internal/store"
	"github.com/slipwayhq/slipway/pkg/identity"
)

// minSecretLen is the shortest bootstrap secret accepted from an operator.
const minSecretLen = len(authn.TokenPrefix) + 32

// Bootstrap makes a new installation usable: when the store holds no
// organization yet, it creates orgName, an owner user and an owner API
// token named "bootstrap". secret is the token to use ("" generates one).
// It returns the secret and created=false when the store was not empty (or
// another replica bootstrapped first).
func (s *Service) Bootstrap(ctx context.Context, orgName, secret string) (string, bool, error) {
	n, err := s.store.CountOrgs(ctx)
	if err != nil {
		return "", false, fmt.Errorf("bootstrap: %w", err)
	}
	if n > 0 {
		return "", false, nil
	}
	if secret != "" && (!strings.HasPrefix(secret, authn.TokenPrefix) || len(secret) < minSecretLen) {
		return "", false, fmt.Errorf("bootstrap token must start with %q and be at least %d characters", authn.TokenPrefix, minSecretLen)
	}
	var hash []byte
	if secret == "" {
		if secret, hash, err = authn.NewSecret(); err != nil {
			return "", false, err
		}
	} else {
		hash = authn.HashSecret(secret)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	uid, err := newID()
	if err != nil {
		return "", false, err
	}
	if err := s.store.CreateUser(ctx, store.User{ID: uid, Created: now}); err != nil {
		return "", false, fmt.Errorf("bootstrap user: %w", err)
	}
	oid, err := newID()
	if err != nil {
		return "", false, err
	}
	org := store.Org{ID: oid, Name: orgName, DisplayName: orgName, Created: now, Updated: now}
	if err := s.store.CreateOrg(ctx, org, uid); err != nil {
		if errors.Is(err, store.ErrExists) {
			return "", false, nil // another replica won the race
		}
		return "", false, fmt.Errorf("bootstrap org: %w", err)
	}
	tid, err := newID()
	if err != nil {
		return "", false, err
	}
	if err := s.store.CreateToken(ctx, store.Token{ID: tid, OrgID: oid, Name: "bootstrap", Role: identity.RoleOwner, Hash: hash, Creator: uid, Created: now}); err != nil {
		return "", false, fmt.Errorf("bootstrap token: %w", err)
	}
	if err := s.RecordCreated(ctx, org, "user:"+uid, "", "bootstrap"); err != nil {
		return "", false, fmt.Errorf("bootstrap audit: %w", err)
	}
	return secret, true, nil
}
