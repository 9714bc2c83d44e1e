package secrets

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/slipwayhq/slipway/pkg/testenv"
)

// clustersPolicyFile is the policy the devstack gives the clusters
// service; the test reads the file itself (the module may not import
// tools/), so that it always exercises the policy that ships.
const clustersPolicyFile = "../../../../tools/internal/devenv/vault/policies/clusters.hcl"

// devVault is a Vault dev server of one test's own, which it may stop,
// seal or restart without disturbing the devstack the other tests share.
type devVault struct {
	t         *testing.T
	bin       string
	listen    string // 127.0.0.1:port
	addr      string // http(s)://127.0.0.1:port
	rootToken string
	root      *vault.Client
	// caCert is the CA of the server's certificate, with -dev-tls.
	caCert string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	unseal string
	out    strings.Builder
}

// vaultBinary finds the vault that tools/internal/devenv/vault builds, in
// its cache (devenv.CacheRoot: $SLIPWAY_CACHE/devstack or
// ~/.cache/slipway/devstack, one vault@<version> folder per build).
func vaultBinary(t *testing.T) string {
	t.Helper()
	root := filepath.Join(os.Getenv("SLIPWAY_CACHE"), "devstack")
	if os.Getenv("SLIPWAY_CACHE") == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatalf("no home folder to find the vault cache in: %v", err)
		}
		root = filepath.Join(home, ".cache", "slipway", "devstack")
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "vault@*"))
	var bins []string
	for _, dir := range dirs {
		if strings.Contains(filepath.Base(dir), ".building-") {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "vault")); err == nil {
			bins = append(bins, filepath.Join(dir, "vault"))
		}
	}
	if len(bins) == 0 {
		msg := fmt.Sprintf("no vault binary in %s/vault@*/ (build it with `go run ./tools/devstack build`)", root)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; CI=true, so this fails instead of skipping")
		}
		t.Skip(msg)
	}
	slices.Sort(bins)
	return bins[len(bins)-1]
}

func startDevVault(t *testing.T) *devVault { return startDevVaultTLS(t, false) }

// startDevVaultTLS starts a server that, with useTLS, serves HTTPS with a
// certificate of a CA it generates (-dev-tls).
func startDevVaultTLS(t *testing.T, useTLS bool) *devVault {
	t.Helper()
	port := freePortPair(t)
	d := &devVault{t: t, bin: vaultBinary(t), listen: fmt.Sprintf("127.0.0.1:%d", port), rootToken: rand.Text()}
	d.addr = "http://" + d.listen
	if useTLS {
		d.addr = "https://" + d.listen
		d.caCert = filepath.Join(t.TempDir(), "vault-ca.pem")
	}
	t.Cleanup(func() {
		d.kill()
		if t.Failed() {
			t.Logf("vault dev server output:\n%s", d.output())
		}
	})
	d.start()
	return d
}

// start runs the server and waits until it is unsealed and its KV v2
// mount answers.
func (d *devVault) start() {
	t := d.t
	t.Helper()
	// The root token goes in the environment rather than the arguments,
	// which any local user can read; VAULT_* of the caller are dropped so
	// that they cannot change how the server starts.
	args := []string{"server", "-dev", "-dev-no-store-token"}
	if d.caCert != "" {
		args = append(args, "-dev-tls", "-dev-tls-cert-dir="+filepath.Dir(d.caCert))
	}
	cmd := exec.Command(d.bin, args...)
	cmd.Dir = t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "VAULT_DEV_ROOT_TOKEN_ID="+d.rootToken, "VAULT_DEV_LISTEN_ADDRESS="+d.listen)
	// A test binary killed by its timeout takes its servers with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", d.bin, err)
	}
	_ = w.Close()
	exited := make(chan struct{})
	unsealed := make(chan struct{})
	d.mu.Lock()
	d.cmd, d.exited, d.unseal = cmd, exited, ""
	d.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			if key, ok := strings.CutPrefix(strings.TrimSpace(line), "Unseal Key: "); ok && d.unseal == "" {
				d.unseal = key
				close(unsealed)
			}
			if !strings.Contains(line, "Unseal Key:") && !strings.Contains(line, "Root Token:") {
				d.out.WriteString(line + "\n")
			}
			d.mu.Unlock()
		}
		_ = r.Close()
	}()
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case <-unsealed:
	case <-exited:
		t.Fatalf("vault dev server exited at start:\n%s", d.output())
	case <-time.After(time.Minute):
		t.Fatalf("vault dev server printed no unseal key within a minute:\n%s", d.output())
	}
	// Made now: with -dev-tls, the CA exists only once the server started.
	cfg := vault.DefaultConfig()
	cfg.Address = d.addr
	cfg.MaxRetries = 0
	if err := cfg.ConfigureTLS(&vault.TLSConfig{CACert: d.caCert}); err != nil {
		t.Fatal(err)
	}
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.ClearNamespace()
	c.SetToken(d.rootToken)
	d.root = c
	eventually(t, time.Minute, "vault dev server ready", d.ready)
}

func (d *devVault) ready() error {
	ctx, cancel := context.WithTimeout(d.t.Context(), 2*time.Second)
	defer cancel()
	h, err := d.root.Sys().HealthWithContext(ctx)
	if err != nil {
		return err
	}
	if !h.Initialized || h.Sealed || h.Standby {
		return fmt.Errorf("initialized %t, sealed %t, standby %t", h.Initialized, h.Sealed, h.Standby)
	}
	_, err = d.root.Logical().ReadWithContext(ctx, "secret/config")
	return err
}

func (d *devVault) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

func (d *devVault) signal(sig syscall.Signal) {
	d.t.Helper()
	d.mu.Lock()
	p := d.cmd.Process
	d.mu.Unlock()
	if err := p.Signal(sig); err != nil {
		d.t.Fatalf("signal %s to vault: %v", sig, err)
	}
	if sig != syscall.SIGSTOP {
		return
	}
	// The stop is asynchronous: on a loaded machine the server can still
	// answer a few requests after Signal returns. Wait until every thread
	// is stopped, so that what the test measures is a hung Vault.
	deadline := time.Now().Add(5 * time.Second)
	for !testenv.Stopped(p.Pid) {
		if time.Now().After(deadline) {
			d.t.Fatalf("vault (pid %d) not stopped 5 s after SIGSTOP", p.Pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// kill stops the server for good (SIGKILL works on a stopped process too).
func (d *devVault) kill() {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

func (d *devVault) seal() {
	d.t.Helper()
	if err := d.root.Sys().SealWithContext(d.t.Context()); err != nil {
		d.t.Fatalf("seal vault: %v", err)
	}
}

func (d *devVault) unsealNow() {
	d.t.Helper()
	d.mu.Lock()
	key := d.unseal
	d.mu.Unlock()
	st, err := d.root.Sys().UnsealWithContext(d.t.Context(), key)
	if err != nil {
		d.t.Fatalf("unseal vault: %v", err)
	}
	if st.Sealed {
		d.t.Fatalf("vault still sealed after its unseal key: %+v", st)
	}
}

type roleOpts struct {
	ttl, maxTTL string // default 1h, as the devstack's roles
	tokenType   string // default service
	// Fixed ids let a restarted server accept the login the service has.
	roleID, secretID string
}

// appRole sets up the clusters AppRole as tools/internal/devenv/vault does
// (its own policy only, no default policy) and returns role and secret id.
func (d *devVault) appRole(o roleOpts) Config {
	t := d.t
	t.Helper()
	ctx := t.Context()
	c := d.root
	auths, err := c.Sys().ListAuthWithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := auths["approle/"]; !ok {
		if err := c.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
			t.Fatalf("enable approle: %v", err)
		}
	}
	policy, err := os.ReadFile(clustersPolicyFile)
	if err != nil {
		t.Fatalf("read the clusters policy: %v", err)
	}
	if err := c.Sys().PutPolicyWithContext(ctx, "slipway-clusters", string(policy)); err != nil {
		t.Fatalf("write policy: %v", err)
	}
	role := "auth/approle/role/slipway-clusters"
	_, err = c.Logical().WriteWithContext(ctx, role, map[string]any{
		"token_policies":          []string{"slipway-clusters"},
		"token_no_default_policy": true,
		"token_ttl":               cmp.Or(o.ttl, "1h"),
		"token_max_ttl":           cmp.Or(o.maxTTL, "1h"),
		"token_type":              cmp.Or(o.tokenType, "service"),
		"secret_id_ttl":           "0",
		"secret_id_num_uses":      0,
	})
	if err != nil {
		t.Fatalf("write role: %v", err)
	}
	if o.roleID != "" {
		if _, err := c.Logical().WriteWithContext(ctx, role+"/role-id", map[string]any{"role_id": o.roleID}); err != nil {
			t.Fatalf("set role_id: %v", err)
		}
	}
	sec, err := c.Logical().ReadWithContext(ctx, role+"/role-id")
	if err != nil {
		t.Fatalf("read role_id: %v", err)
	}
	roleID, _ := sec.Data["role_id"].(string)
	if o.secretID != "" {
		_, err = c.Logical().WriteWithContext(ctx, role+"/custom-secret-id", map[string]any{"secret_id": o.secretID})
	} else {
		sec, err = c.Logical().WriteWithContext(ctx, role+"/secret-id", nil)
	}
	if err != nil {
		t.Fatalf("issue secret_id: %v", err)
	}
	secretID := o.secretID
	if secretID == "" {
		secretID, _ = sec.Data["secret_id"].(string)
	}
	if roleID == "" || secretID == "" {
		t.Fatal("approle set up without role_id or secret_id")
	}
	return Config{Addr: d.addr, RoleID: roleID, SecretID: secretID}
}

// freePortPair returns a free loopback port whose successor is free too:
// Vault serves cluster requests on the next port.
func freePortPair(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		if err != nil {
			continue
		}
		_ = l2.Close()
		return port
	}
	t.Fatal("no two consecutive free loopback ports")
	return 0
}
