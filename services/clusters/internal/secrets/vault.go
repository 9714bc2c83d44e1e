// Package secrets connects the clusters service to HashiCorp Vault, where
// every secret Slipway keeps lives (KV v2 under secret/orgs/<org>/...).
//
// The service authenticates with its own AppRole (never a root token) and
// logs in again before its token expires; its policy lets it touch only
// secret/data/orgs/+/* and look up its own token.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
)

// Config is how the service reaches Vault.
type Config struct {
	Addr     string
	RoleID   string
	SecretID string
}

// Vault is an authenticated Vault client that keeps its login fresh.
type Vault struct {
	client *vault.Client
	auth   *approle.AppRoleAuth
	log    *slog.Logger

	mu      sync.Mutex
	expires time.Time
}

// Open logs in with the AppRole and returns the client. It fails when Vault
// is unreachable or the credentials are refused, so a misconfigured service
// never starts.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Vault, error) {
	if cfg.Addr == "" || cfg.RoleID == "" || cfg.SecretID == "" {
		return nil, errors.New("vault address, AppRole role id and secret id are all required")
	}
	vc := vault.DefaultConfig()
	vc.Address = cfg.Addr
	vc.Timeout = 10 * time.Second
	client, err := vault.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	auth, err := approle.NewAppRoleAuth(cfg.RoleID, &approle.SecretID{FromString: cfg.SecretID})
	if err != nil {
		return nil, fmt.Errorf("vault approle: %w", err)
	}
	v := &Vault{client: client, auth: auth, log: log}
	if err := v.login(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *Vault) login(ctx context.Context) error {
	secret, err := v.client.Auth().Login(ctx, v.auth)
	if err != nil {
		// The error names the path and status, never the secret id.
		return fmt.Errorf("vault approle login at %s: %w", v.client.Address(), err)
	}
	ttl, err := secret.TokenTTL()
	if err != nil || ttl <= 0 {
		ttl = time.Hour
	}
	v.mu.Lock()
	v.expires = time.Now().Add(ttl)
	v.mu.Unlock()
	return nil
}

// KeepLoggedIn logs in again at two thirds of each token's life until ctx
// ends; a failed login is retried every 10 seconds and logged.
func (v *Vault) KeepLoggedIn(ctx context.Context) error {
	for {
		v.mu.Lock()
		wait := time.Until(v.expires) * 2 / 3
		v.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(max(wait, 10*time.Second)):
		}
		if err := v.login(ctx); err != nil && ctx.Err() == nil {
			v.log.ErrorContext(ctx, "vault login failed", "error", err)
			v.mu.Lock()
			v.expires = time.Now().Add(15 * time.Second) // retry soon
			v.mu.Unlock()
		}
	}
}

// Ping reports whether the service's Vault token still works (readiness).
func (v *Vault) Ping(ctx context.Context) error {
	if _, err := v.client.Auth().Token().LookupSelfWithContext(ctx); err != nil {
		return fmt.Errorf("vault token lookup: %w", err)
	}
	return nil
}
