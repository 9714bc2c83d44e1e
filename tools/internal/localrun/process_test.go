package localrun

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// helperAddrEnv makes the test binary a stand-in process: it serves
// /readyz there until it is killed.
const helperAddrEnv = "LOCALRUN_HELPER_ADMIN_ADDR"

func TestHelperProcess(t *testing.T) {
	addr := os.Getenv(helperAddrEnv)
	if addr == "" {
		t.Skip("run by TestKillRestart as a stand-in process")
	}
	srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), ReadHeaderTimeout: time.Second}
	t.Fatal(srv.ListenAndServe())
}

// TestKillRestart kills one process as a crash would, which Exited does
// not report, and starts it again with the same arguments; Stop then ends
// the new one.
func TestKillRestart(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	s := &Stack{Components: []Component{{Name: "probe", AdminAddr: addr}}, exited: make(chan error, 5)}
	s.procs = []*process{{name: "probe", path: os.Args[0], args: []string{"-test.run=^TestHelperProcess$"},
		env: append(os.Environ(), helperAddrEnv+"="+addr), out: io.Discard}}
	t.Cleanup(s.Stop)
	s.mu.Lock()
	err = s.launch(s.procs[0])
	s.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Restart(ctx, "probe"); err == nil || !strings.Contains(err.Error(), "still running") {
		t.Errorf("Restart of a running process = %v, want still running", err)
	}
	if err := s.Kill("nope"); err == nil {
		t.Error("Kill of an unknown process succeeded")
	}
	first := s.procs[0].cur
	if err := s.Kill("probe"); err != nil {
		t.Fatal(err)
	}
	if !exited(first) {
		t.Fatal("Kill returned before the process exited")
	}
	if err := s.Kill("probe"); err == nil {
		t.Error("Kill of a killed process succeeded")
	}
	if err := s.Restart(ctx, "probe"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatalf("restarted process: %v", err)
	}
	_ = resp.Body.Close()
	select {
	case err := <-s.Exited():
		t.Errorf("Exited reported a kill: %v", err)
	default:
	}
	s.Stop()
	if !exited(s.procs[0].cur) {
		t.Error("Stop left the restarted process running")
	}
	if err := s.Restart(ctx, "probe"); err == nil {
		t.Error("Restart after Stop succeeded")
	}
}
