package secrets

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// devstack returns the clusters service's config for the devstack's Vault.
func devstack(t *testing.T) (testenv.Env, Config) {
	t.Helper()
	env := testenv.Get(t, "vault")
	return env, Config{Addr: env["VAULT_ADDR"], RoleID: env["VAULT_ROLE_ID_CLUSTERS"], SecretID: env["VAULT_SECRET_ID_CLUSTERS"]}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func open(t *testing.T, cfg Config, log *slog.Logger) *Vault {
	t.Helper()
	v, err := Open(t.Context(), cfg, log)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return v
}

// orgPath is a path no earlier run (of a long-lived devstack) has used.
func orgPath(kind string) string {
	return fmt.Sprintf("orgs/test-%s/%s/%s", strings.ToLower(rand.Text()[:10]), kind, strings.ToLower(rand.Text()[:8]))
}

func TestOpen(t *testing.T) {
	env, good := devstack(t)
	log := quiet()

	v := open(t, good, log)
	if err := v.Ping(t.Context()); err != nil {
		t.Errorf("Ping after login: %v", err)
	}

	refused := []struct {
		name string
		cfg  Config
	}{
		{name: "wrong secret id", cfg: Config{Addr: good.Addr, RoleID: good.RoleID, SecretID: "00000000-0000-0000-0000-000000000000"}},
		{name: "another service's secret id", cfg: Config{Addr: good.Addr, RoleID: good.RoleID, SecretID: env["VAULT_SECRET_ID_REGISTRY"]}},
		{name: "unknown role id", cfg: Config{Addr: good.Addr, RoleID: "00000000-0000-0000-0000-000000000000", SecretID: good.SecretID}},
		{name: "token vault does not know", cfg: Config{Addr: good.Addr, Auth: AuthToken, Token: "hvs.not-a-token-vault-issued"}},
	}
	for _, tc := range refused {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			_, err := Open(t.Context(), tc.cfg, log)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if errors.Is(err, ErrUnavailable) {
				t.Errorf("refused credentials reported as Vault unavailable: %v", err)
			}
			noSecrets(t, err.Error(), tc.cfg.SecretID, tc.cfg.Token)
		})
	}
}

// TestOpenRefusesBadConfig needs no Vault: these configs cannot work.
func TestOpenRefusesBadConfig(t *testing.T) {
	const addr = "http://127.0.0.1:1"
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "no address", cfg: Config{RoleID: "r", SecretID: "s3cr3t"}, want: "address"},
		{name: "approle without role id", cfg: Config{Addr: addr, SecretID: "s3cr3t"}, want: "role id"},
		{name: "approle without secret id", cfg: Config{Addr: addr, RoleID: "r"}, want: "secret id"},
		{name: "unknown auth", cfg: Config{Addr: addr, Auth: "ldap"}, want: "unknown vault auth"},
		{name: "kubernetes without role", cfg: Config{Addr: addr, Auth: AuthKubernetes}, want: "role"},
		{name: "token without token", cfg: Config{Addr: addr, Auth: AuthToken}, want: "token"},
		{name: "kubernetes token file missing", cfg: Config{Addr: addr, Auth: AuthKubernetes, KubernetesRole: "clusters", KubernetesTokenPath: filepath.Join(t.TempDir(), "token")}, want: "service account token"},
		{name: "ca cert missing", cfg: Config{Addr: addr, RoleID: "r", SecretID: "s3cr3t", CACert: filepath.Join(t.TempDir(), "ca.pem")}, want: "ca cert"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(t.Context(), tc.cfg, quiet())
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if errors.Is(err, ErrUnavailable) {
				t.Errorf("a bad config reported as Vault unavailable: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			noSecrets(t, err.Error(), "s3cr3t")
		})
	}
}

// TestOpenWhileUnreachable: a Vault that is not there yet must not stop the
// service from starting; calls fail with ErrUnavailable meanwhile.
func TestOpenWhileUnreachable(t *testing.T) {
	v := open(t, Config{Addr: "http://127.0.0.1:1", RoleID: "r", SecretID: "s3cr3t"}, quiet())
	for _, c := range ops(orgPath("clusters")) {
		t.Run(c.name, func(t *testing.T) {
			err := c.call(t.Context(), v)
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("got %v, want ErrUnavailable", err)
			}
			noSecrets(t, err.Error(), "s3cr3t", "v4lue")
		})
	}
}

// ops are the calls every fault must fail with ErrUnavailable.
func ops(path string) []struct {
	name string
	call func(ctx context.Context, v *Vault) error
} {
	return []struct {
		name string
		call func(ctx context.Context, v *Vault) error
	}{
		{"get", func(ctx context.Context, v *Vault) error { _, _, err := v.Get(ctx, path); return err }},
		{"put", func(ctx context.Context, v *Vault) error {
			_, err := v.Put(ctx, path, map[string]string{"k": "v4lue"}, 0)
			return err
		}},
		{"destroy", func(ctx context.Context, v *Vault) error { return v.Destroy(ctx, path) }},
		{"ping", func(ctx context.Context, v *Vault) error { return v.Ping(ctx) }},
	}
}

func TestKV(t *testing.T) {
	_, cfg := devstack(t)
	v := open(t, cfg, quiet())
	ctx := t.Context()
	path := orgPath("clusters")
	first := map[string]string{"kubeconfig": "apiVersion: v1\nkind: Config\n", "token": "first-s3cr3t"}
	second := map[string]string{"kubeconfig": "apiVersion: v1\nkind: Config\n", "token": "second-s3cr3t"}

	if _, _, err := v.Get(ctx, path); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a new path: %v, want ErrNotFound", err)
	}
	v1, err := v.Put(ctx, path, first, 0)
	if err != nil || v1 != 1 {
		t.Fatalf("Put(cas 0) of a new path = %d, %v; want version 1", v1, err)
	}
	v2, err := v.Put(ctx, path, second, v1)
	if err != nil || v2 != 2 {
		t.Fatalf("Put(cas %d) = %d, %v; want version 2", v1, v2, err)
	}
	got, ver, err := v.Get(ctx, path)
	if err != nil || ver != 2 || !equal(got, second) {
		t.Fatalf("Get = %v, %d, %v; want the second data at version 2", got, ver, err)
	}

	for _, tc := range []struct {
		name string
		cas  int64
	}{
		{name: "stale version", cas: v1},
		{name: "future version", cas: 7},
		{name: "cas 0 on an existing path", cas: 0},
	} {
		t.Run("conflict/"+tc.name, func(t *testing.T) {
			_, err := v.Put(ctx, path, map[string]string{"token": "third-s3cr3t"}, tc.cas)
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("Put(cas %d) at version 2: %v, want ErrConflict", tc.cas, err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "put") {
				t.Errorf("error %q names neither the operation nor the path", err)
			}
			noSecrets(t, err.Error(), "third-s3cr3t")
		})
	}
	if _, ver, _ := v.Get(ctx, path); ver != 2 {
		t.Errorf("a refused write changed the version to %d", ver)
	}

	if err := v.Destroy(ctx, path); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if _, _, err := v.Get(ctx, path); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Destroy: %v, want ErrNotFound", err)
	}
	// Every version and the metadata are gone: the path starts over.
	if ver, err := v.Put(ctx, path, first, 0); err != nil || ver != 1 {
		t.Fatalf("Put(cas 0) after Destroy = %d, %v; want version 1", ver, err)
	}
	if err := v.Destroy(ctx, path); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if err := v.Destroy(ctx, path); err != nil {
		t.Errorf("Destroy of a destroyed path: %v", err)
	}
	if err := v.Destroy(ctx, orgPath("credentials")); err != nil {
		t.Errorf("Destroy of a path never written: %v", err)
	}
}

func TestKVRefuses(t *testing.T) {
	_, cfg := devstack(t)
	v := open(t, cfg, quiet())
	ctx := t.Context()
	data := map[string]string{"token": "s3cr3t-value"}

	// The policy gives the service orgs/<org>/... and nothing else.
	for _, path := range []string{"shared/x", "orgs/acme", "platform/orgs/acme/clusters/c1"} {
		t.Run("policy/"+path, func(t *testing.T) {
			for _, c := range []struct {
				op  string
				err error
			}{
				{"put", func() error { _, err := v.Put(ctx, path, data, 0); return err }()},
				{"get", func() error { _, _, err := v.Get(ctx, path); return err }()},
				{"destroy", v.Destroy(ctx, path)},
			} {
				if !errors.Is(c.err, ErrForbidden) || errors.Is(c.err, ErrUnavailable) {
					t.Errorf("%s %s: %v, want ErrForbidden (and not ErrUnavailable)", c.op, path, c.err)
					continue
				}
				noSecrets(t, c.err.Error(), "s3cr3t-value")
			}
		})
	}
	// A denial is the policy's answer, not a reason to log out.
	if err := v.Ping(ctx); err != nil {
		t.Errorf("Ping after denials: %v", err)
	}

	for _, path := range []string{"", "/orgs/acme/clusters/c1", "orgs/acme/clusters/", "orgs/acme/../../sys/policy", "orgs//clusters/c1"} {
		t.Run(fmt.Sprintf("path %q", path), func(t *testing.T) {
			_, err := v.Put(ctx, path, data, 0)
			if err == nil || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrForbidden) {
				t.Errorf("Put: %v, want a refused path", err)
			}
			if _, _, err := v.Get(ctx, path); err == nil {
				t.Error("Get of a bad path succeeded")
			}
		})
	}
	if _, err := v.Put(ctx, orgPath("clusters"), data, -1); err == nil {
		t.Error("Put with a negative cas succeeded")
	}
}

// TestGetNonString: values another writer stored as non-strings are an
// error naming the field, never the value.
func TestGetNonString(t *testing.T) {
	_, cfg := devstack(t)
	v := open(t, cfg, quiet())
	path := orgPath("credentials")
	_, err := v.client.Logical().WriteWithContext(t.Context(), "secret/data/"+path, map[string]any{
		"data": map[string]any{"port": 6443, "token": "s3cr3t-value"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Destroy(context.Background(), path) })
	_, _, err = v.Get(t.Context(), path)
	if err == nil || !strings.Contains(err.Error(), `"port"`) {
		t.Fatalf("Get: %v, want an error naming the field", err)
	}
	noSecrets(t, err.Error(), "6443", "s3cr3t-value")
}

// TestTokenAuth uses a token the service's own AppRole issued, so that the
// test needs no root token.
func TestTokenAuth(t *testing.T) {
	_, cfg := devstack(t)
	login := open(t, cfg, quiet())
	token := login.client.Token()

	v := open(t, Config{Addr: cfg.Addr, Auth: AuthToken, Token: token}, quiet())
	path := orgPath("credentials")
	if _, err := v.Put(t.Context(), path, map[string]string{"password": "pw"}, 0); err != nil {
		t.Fatalf("Put with token auth: %v", err)
	}
	got, _, err := v.Get(t.Context(), path)
	if err != nil || got["password"] != "pw" {
		t.Fatalf("Get with token auth = %v, %v", got, err)
	}
	if err := v.Destroy(t.Context(), path); err != nil {
		t.Fatalf("Destroy with token auth: %v", err)
	}
	if err := v.Ping(t.Context()); err != nil {
		t.Fatalf("Ping with token auth: %v", err)
	}
}

// TestConcurrentCalls runs many callers at once on one client (run with
// -race to check the shared state).
func TestConcurrentCalls(t *testing.T) {
	_, cfg := devstack(t)
	v := open(t, cfg, quiet())
	concurrently(t, v, 8, 10)
}

// concurrently has workers each write, read and destroy their own path
// rounds times; every call must succeed.
func concurrently(t *testing.T, v *Vault, workers, rounds int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			path := orgPath(fmt.Sprintf("worker-%d", w))
			var version int64
			for i := range rounds {
				want := map[string]string{"round": fmt.Sprint(i)}
				var err error
				if version, err = v.Put(context.Background(), path, want, version); err != nil {
					errs <- err
					return
				}
				got, gotVersion, err := v.Get(context.Background(), path)
				if err != nil {
					errs <- err
					return
				}
				if gotVersion != version || !equal(got, want) {
					errs <- fmt.Errorf("worker %d round %d: read %v at %d, wrote %v at %d", w, i, got, gotVersion, want, version)
					return
				}
			}
			errs <- v.Destroy(context.Background(), path)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestRegisterFlags(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	want := Config{Mount: "secret", Auth: AuthAppRole, KubernetesTokenPath: DefaultKubernetesTokenPath, KubernetesMountPath: "kubernetes", Timeout: 1500 * time.Millisecond}
	if c != want {
		t.Errorf("defaults = %+v, want %+v", c, want)
	}

	fs = flag.NewFlagSet("test", flag.ContinueOnError)
	c = Config{}
	c.RegisterFlags(fs)
	err := fs.Parse([]string{
		"--vault-addr=https://vault:8200", "--vault-auth=kubernetes", "--vault-role-id=r", "--vault-secret-id=s",
		"--vault-kubernetes-role=clusters", "--vault-kubernetes-token-path=/tok", "--vault-kubernetes-mount=k8s",
		"--vault-token=t", "--vault-ca-cert=/ca.pem", "--vault-mount=kv", "--vault-timeout=1s",
	})
	if err != nil {
		t.Fatal(err)
	}
	want = Config{Addr: "https://vault:8200", Mount: "kv", Auth: AuthKubernetes, RoleID: "r", SecretID: "s",
		KubernetesRole: "clusters", KubernetesTokenPath: "/tok", KubernetesMountPath: "k8s", Token: "t", CACert: "/ca.pem", Timeout: time.Second}
	if c != want {
		t.Errorf("parsed = %+v, want %+v", c, want)
	}
	fs.VisitAll(func(f *flag.Flag) {
		if len(f.Usage) < 20 {
			t.Errorf("--%s has no real usage text: %q", f.Name, f.Usage)
		}
	})
}

// TestConfigHidesSecrets: a Config logged or printed by mistake shows no
// secret id and no token.
func TestConfigHidesSecrets(t *testing.T) {
	c := Config{Addr: "https://vault:8200", RoleID: "role", SecretID: "s3cr3t-id", Token: "hvs.s3cr3t-token"}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "vault", c)
	out := buf.String() + fmt.Sprintf("%v %+v %s", c, c, c)
	if !strings.Contains(out, "https://vault:8200") {
		t.Errorf("the address is missing from %q", out)
	}
	noSecrets(t, out, c.SecretID, c.Token)
}

func TestBackoff(t *testing.T) {
	for n := range 40 {
		bound := min(backoffCap, backoffBase<<min(n, 16))
		for range 50 {
			if d := backoff(n); d <= 0 || d > bound {
				t.Fatalf("backoff(%d) = %s, want in (0, %s]", n, d, bound)
			}
		}
	}
}

func noSecrets(t *testing.T, s string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			t.Errorf("%q reveals a secret", s)
		}
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// eventually polls check until it passes or timeout.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %s (last: %v)", what, timeout, err)
		case <-tick.C:
		}
	}
}

// logRecorder keeps the messages logged, for tests of what KeepLoggedIn did.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
	all  bytes.Buffer
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	fmt.Fprintf(&r.all, "%s %s", rec.Level, rec.Message)
	rec.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&r.all, " %s=%v", a.Key, a.Value); return true })
	r.all.WriteByte('\n')
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

func (r *logRecorder) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

func (r *logRecorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.all.String()
}
