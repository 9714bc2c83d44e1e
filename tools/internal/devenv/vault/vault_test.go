package vault_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/devenvtest"
	"github.com/slipwayhq/slipway/tools/internal/devenv/vault"
)

const kubeconfigPath = "orgs/acme/kubeconfigs/c1"

// TestAppRoles: each service's AppRole reaches what DESIGN.md gives that
// service and nothing else.
func TestAppRoles(t *testing.T) {
	s := devenvtest.Start(t, vault.Vault{})
	env := s.Env()
	ctx := t.Context()

	for _, svc := range vault.Services() {
		if env[vault.RoleIDEnv(svc)] == "" || env[vault.SecretIDEnv(svc)] == "" {
			t.Fatalf("%s or %s not published", vault.RoleIDEnv(svc), vault.SecretIDEnv(svc))
		}
	}
	clusters := login(t, env, env[vault.RoleIDEnv("clusters")], env[vault.SecretIDEnv("clusters")])
	registry := login(t, env, env[vault.RoleIDEnv("registry")], env[vault.SecretIDEnv("registry")])
	gateway := login(t, env, env[vault.RoleIDEnv("gateway")], env[vault.SecretIDEnv("gateway")])

	t.Run("tokens carry only the service policy", func(t *testing.T) {
		for svc, c := range map[string]*api.Client{"clusters": clusters, "registry": registry, "gateway": gateway} {
			self, err := c.Auth().Token().LookupSelfWithContext(ctx)
			if err != nil {
				t.Fatalf("%s lookup-self: %v", svc, err)
			}
			pols, err := self.TokenPolicies()
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{vault.RoleName(svc)}; !slices.Equal(pols, want) {
				t.Errorf("%s token policies = %v, want %v", svc, pols, want)
			}
			if ttl, _ := self.TokenTTL(); ttl <= 0 || ttl > time.Hour {
				t.Errorf("%s token ttl = %s, want at most 1h", svc, ttl)
			}
		}
	})

	t.Run("clusters writes and reads its KV path", func(t *testing.T) {
		kv := clusters.KVv2(vault.KVMount)
		want := "apiVersion: v1\nkind: Config\n"
		if _, err := kv.Put(ctx, kubeconfigPath, map[string]any{"kubeconfig": want}); err != nil {
			t.Fatalf("put secret/data/%s: %v", kubeconfigPath, err)
		}
		got, err := kv.Get(ctx, kubeconfigPath)
		if err != nil {
			t.Fatalf("get secret/data/%s: %v", kubeconfigPath, err)
		}
		if got.Data["kubeconfig"] != want {
			t.Errorf("kubeconfig = %q, want %q", got.Data["kubeconfig"], want)
		}
		list, err := clusters.Logical().ListWithContext(ctx, "secret/metadata/orgs/acme/kubeconfigs")
		if err != nil || list == nil {
			t.Fatalf("list secret/metadata/orgs/acme/kubeconfigs: %v, %v", list, err)
		}
		if keys, _ := list.Data["keys"].([]any); !slices.Contains(keys, any("c1")) {
			t.Errorf("listed keys = %v, want c1 among them", list.Data["keys"])
		}
	})

	// Run after the write above, so that a denial is not a missing secret.
	for _, tc := range []struct {
		name string
		c    *api.Client
		call func(ctx context.Context, c *api.Client) error
	}{
		{"clusters lists policies", clusters, func(ctx context.Context, c *api.Client) error {
			_, err := c.Sys().ListPoliciesWithContext(ctx)
			return err
		}},
		{"clusters reads a policy", clusters, func(ctx context.Context, c *api.Client) error {
			_, err := c.Logical().ReadWithContext(ctx, "sys/policies/acl/"+vault.RoleName("clusters"))
			return err
		}},
		{"clusters writes a policy", clusters, func(ctx context.Context, c *api.Client) error {
			return c.Sys().PutPolicyWithContext(ctx, "escalate", `path "*" { capabilities = ["sudo"] }`)
		}},
		{"clusters lists mounts", clusters, func(ctx context.Context, c *api.Client) error {
			_, err := c.Sys().ListMountsWithContext(ctx)
			return err
		}},
		{"clusters mounts a secrets engine", clusters, func(ctx context.Context, c *api.Client) error {
			return c.Sys().MountWithContext(ctx, "mine", &api.MountInput{Type: "kv"})
		}},
		{"clusters writes outside orgs/", clusters, func(ctx context.Context, c *api.Client) error {
			_, err := c.Logical().WriteWithContext(ctx, "secret/data/shared/x", kvBody())
			return err
		}},
		{"clusters lists every org", clusters, func(ctx context.Context, c *api.Client) error {
			_, err := c.Logical().ListWithContext(ctx, "secret/metadata/orgs")
			return err
		}},
		{"clusters writes its cubbyhole", clusters, func(ctx context.Context, c *api.Client) error {
			_, err := c.Logical().WriteWithContext(ctx, "cubbyhole/x", map[string]any{"v": "1"})
			return err
		}},
		{"clusters issues a registry secret_id", clusters, func(ctx context.Context, c *api.Client) error {
			_, err := c.Logical().WriteWithContext(ctx, "auth/approle/role/"+vault.RoleName("registry")+"/secret-id", nil)
			return err
		}},
		{"registry reads the kubeconfig", registry, func(ctx context.Context, c *api.Client) error {
			_, err := c.Logical().ReadWithContext(ctx, "secret/data/"+kubeconfigPath)
			return err
		}},
		{"registry writes the kubeconfig", registry, func(ctx context.Context, c *api.Client) error {
			_, err := c.Logical().WriteWithContext(ctx, "secret/data/"+kubeconfigPath, kvBody())
			return err
		}},
		{"registry lists the org's secrets", registry, func(ctx context.Context, c *api.Client) error {
			_, err := c.Logical().ListWithContext(ctx, "secret/metadata/orgs/acme/kubeconfigs")
			return err
		}},
		{"registry writes its own org path", registry, func(ctx context.Context, c *api.Client) error {
			_, err := c.Logical().WriteWithContext(ctx, "secret/data/orgs/acme/registries/r1", kvBody())
			return err
		}},
		{"gateway reads the kubeconfig", gateway, func(ctx context.Context, c *api.Client) error {
			_, err := c.Logical().ReadWithContext(ctx, "secret/data/"+kubeconfigPath)
			return err
		}},
	} {
		t.Run("denied/"+tc.name, func(t *testing.T) {
			err := tc.call(ctx, tc.c)
			var re *api.ResponseError
			if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
				t.Errorf("got %v, want 403 permission denied", err)
			}
		})
	}

	t.Run("clusters reads its secret after the denied writes", func(t *testing.T) {
		got, err := clusters.KVv2(vault.KVMount).Get(ctx, kubeconfigPath)
		if err != nil || got.VersionMetadata.Version != 1 {
			t.Fatalf("get %s = %+v, %v; want version 1 untouched", kubeconfigPath, got, err)
		}
	})

	t.Run("login fails with a wrong secret_id", func(t *testing.T) {
		for name, creds := range map[string][2]string{
			"made-up secret_id":         {env[vault.RoleIDEnv("clusters")], rand.Text()},
			"another role's secret_id":  {env[vault.RoleIDEnv("clusters")], env[vault.SecretIDEnv("registry")]},
			"made-up role_id":           {rand.Text(), env[vault.SecretIDEnv("clusters")]},
			"role_id without secret_id": {env[vault.RoleIDEnv("clusters")], ""},
		} {
			c := client(t, env[vault.AddrEnv])
			sec, err := c.Logical().WriteWithContext(ctx, "auth/approle/login", map[string]any{"role_id": creds[0], "secret_id": creds[1]})
			if err == nil {
				t.Errorf("%s: logged in (%v), want an error", name, sec != nil && sec.Auth != nil)
			}
		}
	})

	t.Run("root token only in its 0600 file", func(t *testing.T) {
		f := vault.RootTokenFile(s.State)
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", f, st.Mode().Perm())
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		root := strings.TrimSpace(string(b))
		for k, v := range env {
			if strings.Contains(v, root) {
				t.Errorf("root token published in %s", k)
			}
		}
		// It is the root token: the operators' file is worth having.
		if _, err := client(t, env[vault.AddrEnv], root).Sys().ListPoliciesWithContext(ctx); err != nil {
			t.Errorf("root token from %s: %v", f, err)
		}
	})
}

// TestStopLeavesNothingRunning: after the stack stops, no process of the
// vault process group runs and the port is closed.
func TestStopLeavesNothingRunning(t *testing.T) {
	s := devenvtest.Start(t, vault.Vault{})
	st, err := devenv.Status(s.State)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(st, func(p devenv.ProcStatus) bool { return p.Name == "vault" })
	if i < 0 || !st[i].Running {
		t.Fatalf("status = %+v, want vault running", st)
	}
	pid := st[i].PID
	addr := strings.TrimPrefix(s.Env()[vault.AddrEnv], "http://")

	s.Stop()

	// The stack started vault in its own process group, led by pid.
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d still has processes after Stop (kill: %v)", pid, err)
	}
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		_ = conn.Close()
		t.Errorf("%s still accepts connections after Stop", addr)
	}
	if st, _ := devenv.Status(s.State); len(st) != 0 {
		t.Errorf("status after Stop = %+v, want nothing recorded", st)
	}
}

func kvBody() map[string]any { return map[string]any{"data": map[string]any{"v": "1"}} }

// client returns a Vault client of addr with token (none by default),
// unaffected by the test process's own VAULT_* settings.
func client(t *testing.T, addr string, token ...string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.ClearNamespace()
	c.ClearToken()
	if len(token) > 0 {
		c.SetToken(token[0])
	}
	return c
}

// login logs in with an AppRole and returns a client holding its token.
func login(t *testing.T, env map[string]string, roleID, secretID string) *api.Client {
	t.Helper()
	c := client(t, env[vault.AddrEnv])
	sec, err := c.Logical().WriteWithContext(t.Context(), "auth/approle/login", map[string]any{"role_id": roleID, "secret_id": secretID})
	if err != nil {
		t.Fatalf("approle login: %v", err)
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		t.Fatalf("approle login returned no token: %+v", sec)
	}
	c.SetToken(sec.Auth.ClientToken)
	return c
}
