// Package vault runs a Vault dev server for the real environment, set up as
// Slipway uses Vault: KV v2 at secret/, and one AppRole per Slipway service
// bound to a policy that grants only what DESIGN.md gives that service.
// Slipway never runs on the root token; it is used here to set things up and
// is then left, for operators only, in <state>/vault/root-token (mode 0600).
package vault

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
)

// AddrEnv is the published variable holding the server's URL. The other
// published variables are each service's RoleIDEnv and SecretIDEnv; the root
// token is deliberately not published.
const AddrEnv = "VAULT_ADDR"

// KVMount is the KV v2 mount the clusters service keeps secrets in.
const KVMount = "secret"

// RoleIDEnv names the variable holding service's AppRole role_id.
func RoleIDEnv(service string) string { return "VAULT_ROLE_ID_" + strings.ToUpper(service) }

// SecretIDEnv names the variable holding service's AppRole secret_id.
func SecretIDEnv(service string) string { return "VAULT_SECRET_ID_" + strings.ToUpper(service) }

// RootTokenFile is where, in a stack's state folder, the root token is kept
// for operators.
func RootTokenFile(state string) string { return filepath.Join(state, "vault", "root-token") }

// Vault is the Vault component of the environment.
type Vault struct{}

var _ devenv.Component = Vault{}

// Name implements devenv.Component.
func (Vault) Name() string { return "vault" }

// Start builds Vault (once), starts a dev server on a free loopback port,
// sets up the AppRoles and publishes VAULT_ADDR and each service's role_id
// and secret_id.
func (Vault) Start(ctx context.Context, s *devenv.Stack) error {
	bin, err := Binary(ctx, s.Out)
	if err != nil {
		return err
	}
	dir, err := s.Dir("vault")
	if err != nil {
		return err
	}
	port, err := freePortPair()
	if err != nil {
		return fmt.Errorf("vault port: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	url := "http://" + addr

	root := rand.Text()
	tokenFile := RootTokenFile(s.State)
	// Removed first so that the file is created, and only ever exists, 0600.
	if err := os.Remove(tokenFile); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("replace vault root token file: %w", err)
	}
	if err := os.WriteFile(tokenFile, []byte(root+"\n"), 0o600); err != nil {
		return fmt.Errorf("write vault root token file: %w", err)
	}

	start := time.Now()
	// Token and address go in the environment, not the arguments, which any
	// local user can read in /proc. -dev-no-store-token keeps the server from
	// writing the root token to the operator's ~/.vault-token.
	cmd := exec.Command(bin, "server", "-dev", "-dev-no-store-token")
	cmd.Dir = dir
	cmd.Env = append(withoutVaultEnv(os.Environ()),
		"VAULT_DEV_ROOT_TOKEN_ID="+root,
		"VAULT_DEV_LISTEN_ADDRESS="+addr,
	)
	p, err := s.Start("vault", cmd)
	if err != nil {
		return err
	}

	c, err := newClient(url, root)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := devenv.WaitFor(ctx, "vault", p, func(ctx context.Context) error { return ready(ctx, c) }); err != nil {
		return fmt.Errorf("%w (log: %s)", err, filepath.Join(s.State, "logs", "vault.log"))
	}
	roles, err := setUp(ctx, c)
	if err != nil {
		return err
	}

	s.SetEnv(AddrEnv, url)
	for _, r := range roles {
		s.SetEnv(RoleIDEnv(r.Service), r.RoleID)
		s.SetEnv(SecretIDEnv(r.Service), r.SecretID)
	}
	fmt.Fprintf(s.Out, "vault %s ready at %s in %s; AppRoles for %s; root token (operators only, never in the env) in %s\n",
		Version, url, time.Since(start).Round(time.Millisecond), strings.Join(Services(), ", "), tokenFile)
	return nil
}

// ready reports whether the server is unsealed, active and its KV v2 mount
// answers: dev mode mounts secret/ just after it unseals.
func ready(ctx context.Context, c *api.Client) error {
	h, err := c.Sys().HealthWithContext(ctx)
	if err != nil {
		return err
	}
	if !h.Initialized || h.Sealed || h.Standby {
		return fmt.Errorf("vault not active yet (initialized %t, sealed %t, standby %t)", h.Initialized, h.Sealed, h.Standby)
	}
	if _, err := c.Logical().ReadWithContext(ctx, KVMount+"/config"); err != nil {
		return fmt.Errorf("kv v2 mount %s/: %w", KVMount, err)
	}
	return nil
}

// newClient returns a client of the server at url with token, ignoring any
// VAULT_TOKEN or VAULT_NAMESPACE the caller's environment holds.
func newClient(url, token string) (*api.Client, error) {
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		return nil, fmt.Errorf("vault client config: %w", cfg.Error)
	}
	cfg.Address = url
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	c.ClearNamespace()
	c.SetToken(token)
	return c, nil
}

// freePortPair returns a free loopback port whose successor is free too:
// Vault serves its API on the port and cluster requests on the next one.
func freePortPair() (int, error) {
	for range 20 {
		port, err := devenv.FreePort()
		if err != nil {
			return 0, err
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		if err != nil {
			continue
		}
		if err := l.Close(); err != nil {
			return 0, err
		}
		return port, nil
	}
	return 0, fmt.Errorf("no two consecutive free loopback ports")
}

// withoutVaultEnv drops VAULT_* variables, so that an operator's own Vault
// settings cannot change how the dev server starts.
func withoutVaultEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "VAULT_") {
			out = append(out, kv)
		}
	}
	return out
}
