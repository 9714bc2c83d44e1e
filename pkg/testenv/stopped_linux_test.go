package testenv

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestStopped(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if Stopped(cmd.Process.Pid) {
		t.Fatal("a running process counts as stopped")
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !Stopped(cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("not stopped 5 s after SIGSTOP")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if Stopped(1 << 30) {
		t.Error("a missing process counts as stopped")
	}
}
