package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// TestStartsWhatIsMissing starts PostgreSQL through devstack (no running
// devstack has it here) and talks to it for real.
func TestStartsWhatIsMissing(t *testing.T) {
	t.Setenv(StateEnv, t.TempDir()) // no env file: nothing to reuse
	env := Get(t, "postgres")
	conn, err := pgx.Connect(context.Background(), env["POSTGRES_DSN_REGISTRY"])
	if err != nil {
		t.Fatalf("connect to the started PostgreSQL: %v", err)
	}
	defer conn.Close(context.Background())
	var one int
	if err := conn.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
	// A second Get of the same parts reuses the same environment.
	if again := Get(t, "postgres"); again["POSTGRES_ADDR"] != env["POSTGRES_ADDR"] {
		t.Errorf("second Get started another PostgreSQL: %s vs %s", again["POSTGRES_ADDR"], env["POSTGRES_ADDR"])
	}
}

// TestReusesRunningDevstack takes the endpoints of a running devstack as
// they are, when it has every part asked for.
func TestReusesRunningDevstack(t *testing.T) {
	state := t.TempDir()
	t.Setenv(StateEnv, state)
	if err := os.WriteFile(filepath.Join(state, "devstack.env"), []byte("VAULT_ADDR=http://127.0.0.1:1\nOCI_REGISTRY=127.0.0.1:2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env, ok := running([]string{"vault", "registry"})
	if !ok || env["VAULT_ADDR"] != "http://127.0.0.1:1" {
		t.Fatalf("running = %v, %v; want the env file", env, ok)
	}
	if _, ok := running([]string{"vault", "kube"}); ok {
		t.Error("a devstack without kube was reused for a test needing kube")
	}
}
