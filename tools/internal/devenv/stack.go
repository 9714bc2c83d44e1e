package devenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// EnvFile is the name, in the state folder, of the file `up` writes: one
// KEY=value line per endpoint or credential of the running environment.
const EnvFile = "devstack.env"

// Component is one part of the environment.
type Component interface {
	// Name is short and unique: "kube", "vault", "postgres".
	Name() string
	// Start builds what it needs (through Ensure), starts its processes
	// with s.Start, waits until they serve, and publishes its endpoints
	// with s.SetEnv.
	Start(ctx context.Context, s *Stack) error
}

// Stack is a running environment rooted at a state folder.
type Stack struct {
	State string    // absolute state folder: logs/, pids/, data of each component
	Out   io.Writer // progress lines

	mu    sync.Mutex
	env   map[string]string
	procs []*Proc
}

// NewStack returns an empty stack in state.
func NewStack(state string, out io.Writer) (*Stack, error) {
	abs, err := filepath.Abs(state)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"logs", "pids"} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o755); err != nil {
			return nil, fmt.Errorf("create state folder: %w", err)
		}
	}
	if out == nil {
		out = io.Discard
	}
	return &Stack{State: abs, Out: out, env: map[string]string{}}, nil
}

// Dir returns (creating it) a folder of the state, for a component's data.
func (s *Stack) Dir(parts ...string) (string, error) {
	d := filepath.Join(append([]string{s.State}, parts...)...)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", d, err)
	}
	return d, nil
}

// Proc is a process the stack started.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Exited is closed when the process exits.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// Err is the process's exit error, once Exited is closed.
func (p *Proc) Err() error { return p.err }

// Start runs cmd as the stack's process name: output to logs/<name>.log,
// its pid and binary recorded in pids/<name>.pid so `down` can stop it (and
// only it) from another process. It runs in its own process group.
func (s *Stack) Start(name string, cmd *exec.Cmd) (*Proc, error) {
	log, err := os.OpenFile(filepath.Join(s.State, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true // keeps a caller's Credential, for instance
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid))
	rec := strconv.Itoa(cmd.Process.Pid) + "\n" + exe + "\n"
	if err := os.WriteFile(filepath.Join(s.State, "pids", name+".pid"), []byte(rec), 0o600); err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("record %s pid: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = log.Close()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	fmt.Fprintf(s.Out, "started %s (pid %d, log %s)\n", name, cmd.Process.Pid, filepath.Join(s.State, "logs", name+".log"))
	return p, nil
}

// SetEnv publishes one endpoint or credential of the environment.
func (s *Stack) SetEnv(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.env[key] = value
}

// Env returns a copy of the published variables.
func (s *Stack) Env() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.env))
	for k, v := range s.env {
		out[k] = v
	}
	return out
}

// WriteEnv writes the env file (mode 0600: it holds credentials).
func (s *Stack) WriteEnv() (string, error) {
	env := s.Env()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, env[k])
	}
	p := filepath.Join(s.State, EnvFile)
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("write env file: %w", err)
	}
	return p, nil
}

// ReadEnv reads the env file of a running stack.
func ReadEnv(state string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(state, EnvFile))
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k != "" {
			env[k] = v
		}
	}
	return env, nil
}

// Stop stops every process the stack started, newest first.
func (s *Stack) Stop() {
	s.mu.Lock()
	procs := append([]*Proc(nil), s.procs...)
	s.procs = nil
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		stop(procs[i].Cmd.Process.Pid, procs[i].done)
		_ = os.Remove(filepath.Join(s.State, "pids", procs[i].Name+".pid"))
	}
	_ = os.Remove(filepath.Join(s.State, EnvFile))
}

// stop sends SIGTERM to the process group, then SIGKILL after 10 s.
func stop(pid int, done <-chan struct{}) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	if done == nil {
		done = pollExit(pid)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	}
}

func pollExit(pid int) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		for Alive(pid) {
			time.Sleep(50 * time.Millisecond)
		}
		close(ch)
	}()
	return ch
}

// Alive reports whether pid runs (a zombie counts as gone).
func Alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// A zombie is gone for our purposes.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fields) == 0 || fields[0] != "Z"
}

// ProcStatus is one recorded process and whether it still runs.
type ProcStatus struct {
	Name    string
	PID     int
	Running bool
}

// recorded reads the pid files of a state folder. A pid whose binary is no
// longer the recorded one (reused by another program) counts as not running.
func recorded(state string) ([]ProcStatus, error) {
	files, err := filepath.Glob(filepath.Join(state, "pids", "*.pid"))
	if err != nil {
		return nil, err
	}
	var out []ProcStatus
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(string(b), "\n")
		pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
		if err != nil {
			continue
		}
		st := ProcStatus{Name: strings.TrimSuffix(filepath.Base(f), ".pid"), PID: pid}
		if Alive(pid) {
			exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
			st.Running = len(lines) < 2 || lines[1] == "" || exe == lines[1]
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Status lists the processes a state folder records.
func Status(state string) ([]ProcStatus, error) { return recorded(state) }

// Down stops the processes a state folder records (started by another
// `up`), and only those, and removes the env file.
func Down(state string) ([]string, error) {
	procs, err := recorded(state)
	if err != nil {
		return nil, err
	}
	var stopped []string
	var wg sync.WaitGroup
	for _, p := range procs {
		if p.Running {
			stopped = append(stopped, p.Name)
			wg.Go(func() { stop(p.PID, nil) })
		}
	}
	wg.Wait()
	for _, p := range procs {
		_ = os.Remove(filepath.Join(state, "pids", p.Name+".pid"))
	}
	if err := os.Remove(filepath.Join(state, EnvFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return stopped, err
	}
	return stopped, nil
}

// WaitFor polls check until it returns nil, the process exits, or ctx ends.
func WaitFor(ctx context.Context, what string, p *Proc, check func(ctx context.Context) error) error {
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		var exited <-chan struct{}
		if p != nil {
			exited = p.done
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited (%v) before it was ready: %v", what, p.err, last)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last: %v)", what, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// FreePort returns a loopback TCP port nothing listens on right now, picked
// at random from PortBand. Ports the kernel hands out itself (":0") lie in its
// ephemeral range, where any outgoing connection may take one between this
// check and the child's bind; the band lies below that range.
func FreePort() (int, error) {
	lo, hi := PortBand()
	for try := 0; try < 100; try++ {
		p := lo + rand.IntN(hi-lo)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			_ = l.Close()
			return p, nil
		}
	}
	return 0, errors.New("no free port below the ephemeral range")
}

// PortBand is the range [lo, hi) FreePort picks from: the upper part of the
// ports below the kernel's ephemeral range (localrun keeps the lower part for
// whole stacks, so the two never race for one port).
func PortBand() (lo, hi int) {
	hi = 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 24000 {
				hi = n
			}
		}
	}
	return 20000, hi
}
