package secrets

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/slipwayhq/slipway/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestAppRoleLogin(t *testing.T) {
	env := testenv.Get(t, "vault")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	good := Config{Addr: env["VAULT_ADDR"], RoleID: env["VAULT_ROLE_ID_CLUSTERS"], SecretID: env["VAULT_SECRET_ID_CLUSTERS"]}

	v, err := Open(ctx, good, log)
	if err != nil {
		t.Fatalf("login with the clusters AppRole: %v", err)
	}
	if err := v.Ping(ctx); err != nil {
		t.Errorf("Ping after login: %v", err)
	}

	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "wrong secret id", cfg: Config{Addr: good.Addr, RoleID: good.RoleID, SecretID: "00000000-0000-0000-0000-000000000000"}},
		{name: "another service's secret id", cfg: Config{Addr: good.Addr, RoleID: good.RoleID, SecretID: env["VAULT_SECRET_ID_REGISTRY"]}},
		{name: "missing secret id", cfg: Config{Addr: good.Addr, RoleID: good.RoleID}},
		{name: "unreachable vault", cfg: Config{Addr: "http://127.0.0.1:1", RoleID: good.RoleID, SecretID: good.SecretID}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(ctx, tc.cfg, log)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if tc.cfg.SecretID != "" && strings.Contains(err.Error(), tc.cfg.SecretID) {
				t.Errorf("error reveals the secret id: %v", err)
			}
		})
	}
}
