// Command podroute holds a devstack cluster's host-local pod route: started
// once `ip route add local CIDR dev lo` has made the cluster's pod addresses
// the host's own, it waits, and on SIGTERM or SIGINT deletes that route and
// exits, so that the stack's ordinary stop (its recorded processes, from this
// process or another) also takes the route away.
//
//	podroute 10.213.0.0/22
//
// It imports only the standard library, so it builds on its own, outside
// any module.
package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: podroute CIDR")
		os.Exit(2)
	}
	cidr, err := netip.ParsePrefix(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "podroute:", err)
		os.Exit(2)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	fmt.Printf("podroute: holding local route %s\n", cidr)
	<-sigs
	out, err := exec.Command("ip", "route", "del", "local", cidr.String(), "dev", "lo").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "No such process") {
		fmt.Fprintf(os.Stderr, "podroute: ip route del local %s dev lo: %v: %s\n", cidr, err, out)
		os.Exit(1)
	}
	fmt.Printf("podroute: removed local route %s\n", cidr)
}
