package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
)

// Versions of what a cluster runs. KubernetesVersion must match the
// k8s.io/kubernetes requirement (and the v0.x staging replaces) of the
// helper module in tools/devstack/builds/kubernetes.
const (
	KubernetesVersion = "v1.31.4"
	KwokVersion       = "v0.6.1"
)

// controlPlane names the commands built from k8s.io/kubernetes.
var controlPlane = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// binaries are the paths of the programs a cluster runs.
type binaries struct {
	etcd, apiserver, controllerManager, scheduler, kwok string
}

// Build builds (once, into the cache) every program a cluster runs,
// metrics-server included, and checks that etcd is installed.
func Build(ctx context.Context) error {
	if _, err := findBinaries(ctx); err != nil {
		return err
	}
	_, err := metricsServerBinary(ctx)
	return err
}

// findBinaries builds (once, into the cache) or finds every program.
func findBinaries(ctx context.Context) (binaries, error) {
	var b binaries
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		return b, errors.New("etcd not found on PATH: install Debian's etcd-server package (apt-get install etcd-server)")
	}
	b.etcd = etcd
	dir, err := devenv.Ensure(ctx, "kubernetes", KubernetesVersion, buildControlPlane)
	if err != nil {
		return b, err
	}
	b.apiserver = filepath.Join(dir, "kube-apiserver")
	b.controllerManager = filepath.Join(dir, "kube-controller-manager")
	b.scheduler = filepath.Join(dir, "kube-scheduler")
	if b.kwok, err = devenv.GoInstall(ctx, "kwok", "sigs.k8s.io/kwok/cmd/kwok", KwokVersion); err != nil {
		return b, err
	}
	return b, nil
}

// buildControlPlane builds the three control-plane commands into dir from
// the helper module, outside the workspace: its replace lines pin the
// staging modules to v0.31.4, which would break the rest of Slipway's
// build list if go.work saw them.
func buildControlPlane(ctx context.Context, dir string) error {
	src, err := devenv.HelperModule("kubernetes")
	if err != nil {
		return err
	}
	const v = "k8s.io/component-base/version"
	major, minor, _ := strings.Cut(strings.TrimPrefix(KubernetesVersion, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	// Without these the servers report v0.0.0-master, which Helm's
	// kubeVersion checks and discovery clients then see.
	ldflags := strings.Join([]string{
		"-s", "-w",
		"-X", v + ".gitVersion=" + KubernetesVersion,
		"-X", v + ".gitMajor=" + major,
		"-X", v + ".gitMinor=" + minor,
		"-X", v + ".gitTreeState=clean",
	}, " ")
	args := []string{"build", "-ldflags=" + ldflags, "-o", dir + string(filepath.Separator)}
	for _, c := range controlPlane {
		args = append(args, "k8s.io/kubernetes/cmd/"+c)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", strings.Join(controlPlane, ", "), err, devenv.Tail(out))
	}
	return nil
}
