package postgres

import (
	"context"
	"crypto/sha256"
	_ "embed" // pgrun's source
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
)

// pgrunSource is built on its own (standard library only), so that it
// builds wherever this package runs, whatever the working folder.
//
//go:embed cmd/pgrun/main.go
var pgrunSource []byte

// pgrunBinary builds cmd/pgrun once per source version into the cache and
// returns its path. devenv.Stack.Start sets the process attributes itself,
// so a root stack cannot hand postgres a Credential directly; pgrun, which
// stays postgres's parent, keeps the recorded pid and binary true.
func pgrunBinary(ctx context.Context) (string, error) {
	sum := sha256.Sum256(pgrunSource)
	dir, err := devenv.Ensure(ctx, "pgrun", hex.EncodeToString(sum[:8]), func(ctx context.Context, dir string) error {
		src := filepath.Join(dir, "src")
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		defer os.RemoveAll(src)
		if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module pgrun\n\ngo 1.26\n"), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(src, "main.go"), pgrunSource, 0o644); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, "pgrun"), ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build pgrun: %w\n%s", err, out)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "pgrun"), nil
}
