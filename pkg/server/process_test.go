package server

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/identity"
)

// publicKeyFile writes a fresh identity key pair and returns the public key's path.
func publicKeyFile(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	pub := filepath.Join(dir, "identity.pub.pem")
	if _, err := identity.LoadOrCreateKeyPair(filepath.Join(dir, "identity.pem"), pub); err != nil {
		t.Fatal(err)
	}
	return pub
}

func parseFlags(t *testing.T, args ...string) *Flags {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	f := RegisterFlags(fs, ":9090", ":9091")
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRegisterFlags(t *testing.T) {
	got := *parseFlags(t)
	want := Flags{GRPCAddr: ":9090", AdminAddr: ":9091", LogLevel: "info"}
	if got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
	got = *parseFlags(t, "-listen-grpc", "127.0.0.1:1", "-listen-admin", "127.0.0.1:2", "-log-level", "debug", "-identity-public-keys", "a.pem,b.pem")
	want = Flags{GRPCAddr: "127.0.0.1:1", AdminAddr: "127.0.0.1:2", LogLevel: "debug", IdentityKeys: "a.pem,b.pem"}
	if got != want {
		t.Errorf("parsed = %+v, want %+v", got, want)
	}
}

func TestNewProcessErrors(t *testing.T) {
	key := publicKeyFile(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "no identity keys", args: nil, wantErr: "--identity-public-keys is required"},
		{name: "unknown log level", args: []string{"-log-level", "verbose", "-identity-public-keys", key}, wantErr: `log level "verbose"`},
		{name: "missing key file", args: []string{"-identity-public-keys", missing}, wantErr: "missing.pem"},
		{name: "one of two key files missing", args: []string{"-identity-public-keys", key + "," + missing}, wantErr: "missing.pem"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewProcess(testContext(t), "releases", "test", parseFlags(t, tc.args...))
			if err == nil {
				t.Fatalf("NewProcess = %+v, want an error", p)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("NewProcess error = %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestProcessRun(t *testing.T) {
	f := parseFlags(t, "-listen-grpc", "127.0.0.1:0", "-listen-admin", "127.0.0.1:0", "-log-level", "error", "-identity-public-keys", publicKeyFile(t))
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	p, err := NewProcess(testContext(t), "releases", "v1.2.3", f)
	if err != nil {
		t.Fatalf("NewProcess: %v", err)
	}
	if p.Name != "releases" || p.GRPC == nil || p.Group == nil || p.Telemetry.Version() != "v1.2.3" {
		t.Fatalf("NewProcess = %+v", p)
	}
	ctx, cancel := context.WithCancel(testContext(t))
	cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run(cancelled ctx) = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Process.Run did not return after its context was cancelled")
	}
}

func TestProcessRunTakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	f := parseFlags(t, "-listen-grpc", "127.0.0.1:0", "-listen-admin", taken.Addr().String(), "-log-level", "error", "-identity-public-keys", publicKeyFile(t))
	p, err := NewProcess(testContext(t), "releases", "test", f)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Run(testContext(t))
	if err == nil || !strings.Contains(err.Error(), taken.Addr().String()) {
		t.Fatalf("Run with a taken admin port = %v, want an error naming %s", err, taken.Addr())
	}
}

func TestServiceMain(t *testing.T) {
	dir := t.TempDir()
	pub := filepath.Join(dir, "id.pub.pem")
	if _, err := identity.LoadOrCreateKeyPair(filepath.Join(dir, "id.pem"), pub); err != nil {
		t.Fatal(err)
	}
	args := []string{"--identity-public-keys", pub, "--listen-grpc", "127.0.0.1:0", "--listen-admin", "127.0.0.1:0"}

	t.Run("runs setup, serves, cleans up", func(t *testing.T) {
		var extra string
		cleaned := false
		ctx, cancel := context.WithCancel(context.Background())
		svc := Service{
			Name: "probe", Summary: "probe", Version: "test",
			Flags: func(fs *flag.FlagSet) { fs.StringVar(&extra, "extra", "", "") },
			Setup: func(_ context.Context, p *Process) ([]Check, func() error, error) {
				if p.Name != "probe" || p.GRPC == nil {
					t.Errorf("Setup got process %+v", p)
				}
				cancel() // stop as soon as it runs
				return nil, func() error { cleaned = true; return nil }, nil
			},
		}
		t.Setenv("SLIPWAY_PROBE_EXTRA", "from-env")
		if err := svc.Main(ctx, args); err != nil {
			t.Fatalf("Main = %v", err)
		}
		if extra != "from-env" || !cleaned {
			t.Errorf("extra = %q (want from-env), cleaned = %v (want true)", extra, cleaned)
		}
	})
	t.Run("setup error is returned", func(t *testing.T) {
		boom := errors.New("open store: boom")
		err := Service{Name: "probe", Setup: func(context.Context, *Process) ([]Check, func() error, error) {
			return nil, nil, boom
		}}.Main(context.Background(), args)
		if !errors.Is(err, boom) {
			t.Fatalf("Main = %v, want the setup error", err)
		}
	})
	t.Run("help is not an error", func(t *testing.T) {
		called := false
		err := Service{Name: "probe", Setup: func(context.Context, *Process) ([]Check, func() error, error) {
			called = true
			return nil, nil, nil
		}}.Main(context.Background(), []string{"--help"})
		if err != nil || called {
			t.Fatalf("Main(--help) = %v, setup called %v; want nil and not called", err, called)
		}
	})
}

// TestServiceKeys: --service-key gives the process a caller whose identity
// a process trusting it with --identity-service-keys accepts as the
// service, and one that does not trust it refuses.
func TestServiceKeys(t *testing.T) {
	gateway := publicKeyFile(t)
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "releases.pem"), filepath.Join(dir, "releases.pub.pem")
	if _, err := identity.LoadOrCreateKeyPair(priv, pub); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	releases, err := NewProcess(ctx, "releases", "test", parseFlags(t, "--identity-public-keys", gateway, "--service-key", priv))
	if err != nil {
		t.Fatal(err)
	}
	if releases.Caller == nil || releases.Caller.Service() != "releases" {
		t.Fatalf("caller = %v, want one for releases", releases.Caller)
	}
	callCtx, err := releases.Caller.Context(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	token, _ := identity.TokenFromContext(callCtx)

	trusting := parseFlags(t, "--identity-public-keys", gateway, "--identity-service-keys", "releases="+pub)
	v, err := identity.NewVerifier(mustLoad(t, gateway)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := trustServices(v, trusting.ServiceKeys); err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(token)
	if err != nil || id.Service != "releases" || id.Org != "acme" {
		t.Fatalf("trusting verifier: %+v, %v", id, err)
	}
	plain, err := identity.NewVerifier(mustLoad(t, gateway)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Verify(token); err == nil {
		t.Fatal("a verifier without --identity-service-keys accepted a service identity")
	}
	for _, bad := range []string{"releases", "=x", "releases=" + filepath.Join(dir, "missing.pem"), "Releases=" + pub} {
		if err := trustServices(plain, bad); err == nil {
			t.Errorf("trustServices(%q) accepted", bad)
		}
	}
}

func mustLoad(t *testing.T, path string) []ed25519.PublicKey {
	t.Helper()
	keys, err := identity.LoadPublicKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
