// Package devenvtest starts parts of the real environment for a test.
package devenvtest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
)

// Start builds (once, into the cache) and starts comps in a fresh state
// folder, stopping them when the test ends. A component that cannot start
// fails the test under CI=true and skips it otherwise.
func Start(t testing.TB, comps ...devenv.Component) *devenv.Stack {
	t.Helper()
	s, err := devenv.NewStack(t.TempDir(), testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	// Cold builds of Kubernetes or Vault take minutes on 2 cores.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	for _, c := range comps {
		if err := c.Start(ctx, s); err != nil {
			Require(t, err, c.Name())
		}
	}
	return s
}

// Require stops the test when a real dependency could not start: fails
// under CI=true, skips otherwise.
func Require(t testing.TB, err error, what string) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s could not start (CI=true, so this fails instead of skipping): %v", what, err)
	}
	t.Skipf("%s could not start: %v", what, err)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// GroupMembers lists every live process in the process groups of the
// processes the stack in state records (each leads its group), so a test can
// prove a component's children went with it.
func GroupMembers(t testing.TB, state string) []int {
	t.Helper()
	st, err := devenv.Status(state)
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int]bool{}
	for _, p := range st {
		leaders[p.PID] = true
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var pids []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fields) < 3 || fields[0] == "Z" {
			continue
		}
		if pgrp, _ := strconv.Atoi(fields[2]); leaders[pgrp] {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			pids = append(pids, pid)
		}
	}
	return pids
}
