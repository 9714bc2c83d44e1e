package vault

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
)

// Version is the Vault server the environment builds and runs. v1.21.4 does
// not build from the module proxy: its in-tree sdk matches no published
// github.com/hashicorp/vault/sdk.
const Version = "v1.21.0"

// Binary returns the path of the vault binary, building it into the cache
// the first time (about 7 minutes on 2 cores).
func Binary(ctx context.Context, progress io.Writer) (string, error) {
	dir, err := devenv.Ensure(ctx, "vault", Version, func(ctx context.Context, dir string) error {
		mod, err := devenv.HelperModule("vault")
		if err != nil {
			return err
		}
		fmt.Fprintf(progress, "building vault %s from %s (once per cache; about 7 minutes on 2 cores)\n", Version, mod)
		start := time.Now()
		// Static and stripped, as Vault's own releases are: no C toolchain
		// needed, and the cached binary is a good deal smaller.
		cmd := exec.CommandContext(ctx, "go", "build", "-buildvcs=false", "-ldflags=-s -w",
			"-o", filepath.Join(dir, "vault"), "github.com/hashicorp/vault")
		cmd.Dir = mod
		cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build github.com/hashicorp/vault in %s: %w\n%s", mod, err, devenv.Tail(out))
		}
		fmt.Fprintf(progress, "built vault %s in %s\n", Version, time.Since(start).Round(time.Second))
		return nil
	})
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "vault")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("vault binary missing from cache %s: %w", dir, err)
	}
	return bin, nil
}
