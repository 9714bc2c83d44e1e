//go:build unix

package server

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestGroupStopsOnSignal sends SIGTERM to the test process itself. The test
// subscribes to SIGTERM first, so the signal never takes the default action
// (exit), and it sends one signal at a time, waiting for each to be
// delivered, so none is still in flight when it unsubscribes.
func TestGroupStopsOnSignal(t *testing.T) {
	delivered := make(chan os.Signal, 1)
	signal.Notify(delivered, syscall.SIGTERM)
	defer signal.Stop(delivered)

	g := NewGroup(discardLogger())
	addr, err := g.ServeHTTP("admin", "127.0.0.1:0", AdminHandler(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(context.Background()) }()

	// The group subscribes when its signal actor starts; signals sent
	// before that only reach the test, so keep sending until Run returns.
	deadline := time.After(10 * time.Second)
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-delivered:
		case <-deadline:
			t.Fatal("SIGTERM never delivered")
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run after SIGTERM = %v, want nil", err)
			}
			assertClosed(t, "admin", addr)
			return
		case <-poll.C:
		case <-deadline:
			t.Fatal("Group.Run did not return after SIGTERM")
		}
	}
}
