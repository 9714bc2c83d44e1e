package vault

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
)

// Version is the Vault server the environment builds and runs. v1.21.4 does
// not build from the module proxy: its in-tree sdk matches no published
// github.com/hashicorp/vault/sdk.
const Version = "v1.21.0"

// buildModule is the helper module, relative to the repository root, that
// pins Vault and the replace lines of Vault's own go.mod. It stays out of
// go.work so those pins never reach Slipway's build list.
const buildModule = "tools/devstack/builds/vault"

// Binary returns the path of the vault binary, building it into the cache
// the first time (about 7 minutes on 2 cores).
func Binary(ctx context.Context, progress io.Writer) (string, error) {
	dir, err := devenv.Ensure(ctx, "vault", Version, func(ctx context.Context, dir string) error {
		mod, err := findBuildModule()
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
			return fmt.Errorf("go build github.com/hashicorp/vault in %s: %w\n%s", mod, err, tail(out))
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

// findBuildModule locates the helper module: next to this source file in a
// checkout, or else in the repository above the working directory.
func findBuildModule() (string, error) {
	var candidates []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		// file is <root>/tools/internal/devenv/vault/build.go.
		root := filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
		candidates = append(candidates, filepath.Join(root, buildModule))
	}
	wd, err := os.Getwd()
	if err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			candidates = append(candidates, filepath.Join(d, buildModule))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c, "go.mod")); err == nil {
			return filepath.Clean(c), nil
		}
	}
	return "", fmt.Errorf("helper module %s not found next to the source or above %s", buildModule, wd)
}

// tail keeps the end of a build log, where the error is.
func tail(b []byte) string {
	const max = 4000
	if len(b) > max {
		return "..." + string(b[len(b)-max:])
	}
	return string(b)
}
