package devenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
)

func TestEnsureBuildsOnce(t *testing.T) {
	t.Setenv("SLIPWAY_CACHE", t.TempDir())
	var builds atomic.Int32
	build := func(_ context.Context, dir string) error {
		builds.Add(1)
		return os.WriteFile(filepath.Join(dir, "bin"), []byte("x"), 0o755)
	}
	for range 3 {
		dir, err := Ensure(context.Background(), "thing", "v1", build)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "bin")); err != nil {
			t.Fatal(err)
		}
	}
	if builds.Load() != 1 {
		t.Errorf("built %d times, want once", builds.Load())
	}
	if _, err := Ensure(context.Background(), "thing", "v2", func(context.Context, string) error { return os.ErrInvalid }); err == nil {
		t.Fatal("a failed build succeeded")
	}
	if _, err := os.Stat(filepath.Join(CacheRoot(), "thing@v2")); !os.IsNotExist(err) {
		t.Errorf("a failed build left %s behind", filepath.Join(CacheRoot(), "thing@v2"))
	}
}

// TestDownStopsOnlyWhatUpStarted: `down`, run from another process than
// the one that started them, stops every recorded process and nothing else.
func TestDownStopsOnlyWhatUpStarted(t *testing.T) {
	state := t.TempDir()
	s, err := NewStack(state, nil)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, name := range []string{"a", "b"} {
		p, err := s.Start(name, exec.Command("sleep", "300"))
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, p.Cmd.Process.Pid)
	}
	s.SetEnv("A_ADDR", "127.0.0.1:1")
	if _, err := s.WriteEnv(); err != nil {
		t.Fatal(err)
	}
	bystander := exec.Command("sleep", "300")
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bystander.Process.Kill(); _, _ = bystander.Process.Wait() })

	st, err := Status(state)
	if err != nil || len(st) != 2 || !st[0].Running || !st[1].Running {
		t.Fatalf("status = %+v, %v; want a and b running", st, err)
	}
	env, err := ReadEnv(state)
	if err != nil || env["A_ADDR"] != "127.0.0.1:1" {
		t.Fatalf("env = %v, %v", env, err)
	}
	stopped, err := Down(state)
	if err != nil || len(stopped) != 2 {
		t.Fatalf("Down = %v, %v; want a and b", stopped, err)
	}
	for _, pid := range pids {
		if Alive(pid) {
			t.Errorf("pid %d still running after down", pid)
		}
	}
	if !Alive(bystander.Process.Pid) {
		t.Error("down stopped a process it did not start")
	}
	if _, err := ReadEnv(state); !os.IsNotExist(err) {
		t.Errorf("env file left after down: %v", err)
	}
	if st, _ := Status(state); len(st) != 0 {
		t.Errorf("status after down = %+v, want nothing recorded", st)
	}
}

func TestHelperModule(t *testing.T) {
	for _, name := range []string{"kubernetes", "vault"} {
		dir, err := HelperModule(name)
		if err != nil {
			t.Fatalf("HelperModule(%s): %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil || filepath.Base(dir) != name {
			t.Errorf("HelperModule(%s) = %s, %v", name, dir, err)
		}
	}
	if _, err := HelperModule("nope"); err == nil {
		t.Error("found a helper module that does not exist")
	}
}
