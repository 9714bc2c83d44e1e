package localrun

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"syscall"
	"time"
)

// process is one of the stack's processes, with what it takes to start it
// again after Kill.
type process struct {
	name, path string
	args, env  []string
	out        io.Writer
	cur        *run // guarded by Stack.mu
}

// run is one start of a process.
type run struct {
	cmd    *exec.Cmd
	done   chan struct{} // closed once it has exited
	err    error         // why it exited, set before done closes
	killed bool          // Kill ended it: not reported on Exited; guarded by Stack.mu
}

// launch starts p, and reports its exit on s.exited unless Kill caused
// it. The caller holds s.mu.
func (s *Stack) launch(p *process) error {
	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.Env = p.env
	// Own process group: the stack, not the terminal, decides when they stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start slipway-%s: %w", p.name, err)
	}
	r := &run{cmd: cmd, done: make(chan struct{})}
	p.cur = r
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		r.err = cmd.Wait()
		close(r.done)
		s.mu.Lock()
		killed := r.killed
		s.mu.Unlock()
		if killed {
			return
		}
		// A restarted process can exit more times than the channel holds;
		// the first exits are the ones worth reporting.
		select {
		case s.exited <- fmt.Errorf("slipway-%s exited: %w", p.name, r.err):
		default:
		}
	}()
	return nil
}

// process returns the process named name ("releases"). The caller holds
// s.mu.
func (s *Stack) process(name string) (*process, error) {
	for _, p := range s.procs {
		if p.name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("localrun: no process %q", name)
}

// Pid is the process id of the running process named name ("releases"),
// for what a benchmark reads of it (its peak RSS in /proc).
func (s *Stack) Pid(name string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.process(name)
	if err != nil {
		return 0, err
	}
	if p.cur == nil || p.cur.cmd.Process == nil {
		return 0, fmt.Errorf("localrun: %s is not running", name)
	}
	return p.cur.cmd.Process.Pid, nil
}

// Kill sends SIGKILL to the process named name ("releases"), as a crash
// would end it, and returns once it has exited. Its exit is not reported
// on Exited. Restart starts it again.
func (s *Stack) Kill(name string) error {
	s.mu.Lock()
	p, err := s.process(name)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	r := p.cur
	if s.stopped || r == nil || exited(r) {
		s.mu.Unlock()
		return fmt.Errorf("localrun: kill slipway-%s: not running", name)
	}
	r.killed = true
	err = r.cmd.Process.Kill()
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("localrun: kill slipway-%s: %w", name, err)
	}
	<-r.done
	return nil
}

// Restart starts the process named name again, with the arguments and
// environment it first ran with, once it has exited (after Kill, or on its
// own), and returns when it is ready (its /readyz answers 200).
func (s *Stack) Restart(ctx context.Context, name string) error {
	var admin string
	for _, c := range s.Components {
		if c.Name == name {
			admin = c.AdminAddr
		}
	}
	s.mu.Lock()
	p, err := s.process(name)
	switch {
	case err != nil:
	case s.stopped:
		err = fmt.Errorf("localrun: restart slipway-%s: the stack is stopped", name)
	case p.cur != nil && !exited(p.cur):
		err = fmt.Errorf("localrun: restart slipway-%s: still running", name)
	default:
		err = s.launch(p)
	}
	var r *run
	if err == nil {
		r = p.cur
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get("http://" + admin + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-r.done:
			if r.err == nil {
				return fmt.Errorf("slipway-%s exited before it was ready", name)
			}
			return fmt.Errorf("slipway-%s exited before it was ready: %w", name, r.err)
		case <-ctx.Done():
			return fmt.Errorf("slipway-%s not ready on %s: %w", name, admin, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func exited(r *run) bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}
