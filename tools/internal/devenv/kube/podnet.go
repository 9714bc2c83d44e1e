package kube

import (
	"context"
	_ "embed" // podroute's source
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
)

// Pod addresses. kwok gives pods addresses with no network behind them, so
// the apiserver's pod and service proxies would connect to nothing. Each
// cluster takes instead a block of PodPool that the kernel treats as the
// host's own (`ip route add local BLOCK dev lo`): a server listening on
// 0.0.0.0:PORT answers at every pod IP of the cluster, so a test plays a
// pod's application in its own process. The apiserver refuses to proxy to
// loopback and link-local addresses, not to these.
//
// Blocks are claimed in turn, first free first: adding a route that exists
// fails, so two stacks starting at once never share one. The route lives as
// long as the cluster's podroute process, which deletes it when stopped.
const (
	PodPool      = "10.213.0.0/16"
	podBlockBits = 22 // 1,024 addresses a cluster: kwok hands them out from the first, reusing freed ones
)

// EnvPodCIDR is the env var holding cluster id's pod CIDR (host-local).
func EnvPodCIDR(id string) string { return "KUBE_" + envID(id) + "_POD_CIDR" }

// podrouteSource is built on its own (standard library only), like pgrun.
//
//go:embed cmd/podroute/main.go
var podrouteSource []byte

// errRouteExists: another cluster (of this stack or another) holds the block.
var errRouteExists = errors.New("route exists")

// claimPodCIDR routes the first free block of PodPool to the host and starts
// the process that removes the route when the stack stops. Without the
// right to add routes it uses a block that is already host-local (an
// administrator's route over the pool, shared and never removed), else it
// fails saying what to run.
func claimPodCIDR(ctx context.Context, s *devenv.Stack, proc string) (netip.Prefix, error) {
	ip, err := exec.LookPath("ip")
	if err != nil {
		return netip.Prefix{}, errors.New("ip not found on PATH: install Debian's iproute2 package (apt-get install iproute2)")
	}
	holder, err := devenv.BuildSource(ctx, "podroute", podrouteSource)
	if err != nil {
		return netip.Prefix{}, err
	}
	pool := netip.MustParsePrefix(PodPool)
	for block := range blocks(pool, podBlockBits) {
		err := addLocalRoute(ctx, ip, block)
		if errors.Is(err, errRouteExists) {
			continue
		}
		if err != nil {
			if local, _ := isLocal(ctx, ip, block.Addr()); local {
				return block, nil // someone made the pool host-local for us
			}
			return netip.Prefix{}, fmt.Errorf("make the pod addresses %s host-local: %w; "+
				"run devstack as root (or with CAP_NET_ADMIN), or once as root: ip route add local %s dev lo", block, err, pool)
		}
		if _, err := s.Start(proc, exec.Command(holder, block.String())); err != nil {
			_ = exec.Command(ip, "route", "del", "local", block.String(), "dev", "lo").Run()
			return netip.Prefix{}, err
		}
		return block, nil
	}
	return netip.Prefix{}, fmt.Errorf("every /%d block of %s is routed already (ip route show table local: a stack killed with SIGKILL leaves its route; ip route del local BLOCK dev lo)", podBlockBits, pool)
}

// blocks yields pool's sub-prefixes of the given length, in order.
func blocks(pool netip.Prefix, bits int) func(yield func(netip.Prefix) bool) {
	return func(yield func(netip.Prefix) bool) {
		a := pool.Masked().Addr()
		for pool.Contains(a) {
			b := netip.PrefixFrom(a, bits)
			if !yield(b) {
				return
			}
			// The next block starts after this one's last address.
			last := a.As4()
			n := uint32(last[0])<<24 | uint32(last[1])<<16 | uint32(last[2])<<8 | uint32(last[3])
			n += 1 << (32 - bits)
			if n == 0 {
				return
			}
			a = netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		}
	}
}

func addLocalRoute(ctx context.Context, ip string, block netip.Prefix) error {
	out, err := exec.CommandContext(ctx, ip, "route", "add", "local", block.String(), "dev", "lo").CombinedOutput()
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(string(out))
	if strings.Contains(msg, "File exists") {
		return errRouteExists
	}
	return fmt.Errorf("ip route add local %s dev lo: %v: %s", block, err, msg)
}

// isLocal reports whether the kernel delivers packets to a to this host.
func isLocal(ctx context.Context, ip string, a netip.Addr) (bool, error) {
	out, err := exec.CommandContext(ctx, ip, "-o", "route", "get", a.String()).Output()
	if err != nil {
		return false, err
	}
	return strings.HasPrefix(strings.TrimSpace(string(out)), "local "), nil
}
