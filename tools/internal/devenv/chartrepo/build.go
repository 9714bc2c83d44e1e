package chartrepo

import (
	"context"
	"crypto/sha256"
	_ "embed" // chartserve's source
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
)

// serverSource is built on its own (standard library only), so that it
// builds wherever this package runs, whatever the working folder.
//
//go:embed cmd/chartserve/main.go
var serverSource []byte

// serverBinary builds cmd/chartserve once per source version into the cache
// and returns its path. The server is a process of its own, not a goroutine
// of `devstack up`, so that it outlives `up --detach` and is stopped like
// every other component.
func serverBinary(ctx context.Context) (string, error) {
	sum := sha256.Sum256(serverSource)
	dir, err := devenv.Ensure(ctx, "chartserve", hex.EncodeToString(sum[:8]), func(ctx context.Context, dir string) error {
		src := filepath.Join(dir, "src")
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		defer os.RemoveAll(src)
		if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module chartserve\n\ngo 1.26\n"), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(src, "main.go"), serverSource, 0o644); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, "chartserve"), ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build chartserve: %w\n%s", err, out)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "chartserve"), nil
}
