// Package devenv runs the real environment Slipway is developed and tested
// against — Kubernetes control planes with simulated nodes, Vault,
// PostgreSQL, an OCI registry, a chart repository — from binaries built once
// into a cache keyed by component and version, with every process's log,
// pid and endpoints under one state folder.
package devenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
)

// CacheRoot is where component builds are kept, shared by every checkout:
// $SLIPWAY_CACHE/devstack, or ~/.cache/slipway/devstack.
func CacheRoot() string {
	if c := os.Getenv("SLIPWAY_CACHE"); c != "" {
		return filepath.Join(c, "devstack")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "slipway", "devstack")
	}
	return filepath.Join(os.TempDir(), "slipway-cache", "devstack")
}

// Ensure returns the cache folder of name@version, running build into a
// fresh folder first when it is not there yet. Builds are serialised by a
// file lock, so concurrent test binaries build a component once; a failed
// or interrupted build leaves nothing behind.
func Ensure(ctx context.Context, name, version string, build func(ctx context.Context, dir string) error) (string, error) {
	root := CacheRoot()
	dir := filepath.Join(root, name+"@"+version)
	done := filepath.Join(dir, ".complete")
	if _, err := os.Stat(done); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("create cache %s: %w", root, err)
	}
	lock, err := os.OpenFile(filepath.Join(root, name+"@"+version+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("lock %s build: %w", name, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s build: %w", name, err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if _, err := os.Stat(done); err == nil {
		return dir, nil // built by another process while we waited
	}
	tmp, err := os.MkdirTemp(root, name+"@"+version+".building-")
	if err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	if err := build(ctx, tmp); err != nil {
		return "", fmt.Errorf("build %s@%s: %w", name, version, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return "", err
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	return dir, nil
}

// GoInstall caches `go install pkg@version` (outside any workspace) and
// returns the path of the installed binary.
func GoInstall(ctx context.Context, name, pkg, version string) (string, error) {
	dir, err := Ensure(ctx, name, version, func(ctx context.Context, dir string) error {
		cmd := exec.CommandContext(ctx, "go", "install", pkg+"@"+version)
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOBIN="+dir, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go install %s@%s: %w\n%s", pkg, version, err, Tail(out))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	if _, err := os.Stat(bin); err != nil {
		return "", errors.Join(fmt.Errorf("%s not in %s", filepath.Base(pkg), dir), err)
	}
	return bin, nil
}

// HelperModule finds the build helper module tools/devstack/builds/<name>
// (kept outside go.work): next to this package's source in a checkout, or
// else above the working folder, so builds work from anywhere in a checkout.
func HelperModule(name string) (string, error) {
	rel := filepath.Join("tools", "devstack", "builds", name)
	var tries []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		// file is <checkout>/tools/internal/devenv/cache.go.
		tries = append(tries, filepath.Join(filepath.Dir(file), "..", "..", "..", rel))
	}
	wd, err := os.Getwd()
	if err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			tries = append(tries, filepath.Join(d, rel))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, dir := range tries {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Clean(dir), nil
		}
	}
	return "", fmt.Errorf("helper module %s not found next to the source or above %s: run from a Slipway checkout", rel, wd)
}

// Tail keeps the end of a build log, where the error is.
func Tail(b []byte) string {
	const max = 4000
	if len(b) > max {
		return "..." + string(b[len(b)-max:])
	}
	return string(b)
}

// BuildSource builds a single-file, standard-library-only Go program (its
// main.go, usually embedded) once per content into the cache, and returns
// the binary. Helper processes are built this way so they build from any
// working folder and outlive the command that started them.
func BuildSource(ctx context.Context, name string, mainGo []byte) (string, error) {
	sum := sha256.Sum256(mainGo)
	dir, err := Ensure(ctx, name, hex.EncodeToString(sum[:8]), func(ctx context.Context, dir string) error {
		src := filepath.Join(dir, "src")
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		defer os.RemoveAll(src)
		if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module "+name+"\n\ngo 1.26\n"), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(src, "main.go"), mainGo, 0o644); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, name), ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", name, err, Tail(out))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}
