package podlogs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeLog is one container's log as an API server would serve it: a tail
// of what was written (within since), then, following, each line
// appended, until end.
type fakeLog struct {
	mu      sync.Mutex
	lines   []string // in CRI order: time, a space, the text
	times   []time.Time
	opens   int
	live    map[chan string]bool
	ended   bool
	openErr error
}

func newFakeLog(n int, start time.Time, step time.Duration) *fakeLog {
	f := &fakeLog{live: map[chan string]bool{}}
	for i := range n {
		f.write(start.Add(time.Duration(i)*step), "line "+strconv.Itoa(i+1))
	}
	return f
}

func (f *fakeLog) write(at time.Time, text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw := at.UTC().Format(time.RFC3339Nano) + " " + text
	f.lines, f.times = append(f.lines, raw), append(f.times, at)
	for ch := range f.live {
		ch <- raw
	}
}

func (f *fakeLog) append(text string) { f.write(time.Now(), text) }

// end ends every stream open, as a container that stopped.
func (f *fakeLog) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ended = true
	for ch := range f.live {
		close(ch)
		delete(f.live, ch)
	}
}

func (f *fakeLog) counts() (opens, live int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opens, len(f.live)
}

func (f *fakeLog) open(ctx context.Context, _ Target, o Options) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opens++
	if f.openErr != nil {
		return nil, f.openErr
	}
	var initial []string
	for i, l := range f.lines {
		if o.Since == 0 || !f.times[i].Before(time.Now().Add(-o.Since)) {
			initial = append(initial, l)
		}
	}
	if o.Tail > 0 && len(initial) > o.Tail {
		initial = initial[len(initial)-o.Tail:]
	}
	ch := make(chan string, 10_000)
	if o.Follow && !o.Previous && !f.ended {
		f.live[ch] = true
	} else {
		close(ch)
	}
	pr, pw := io.Pipe()
	go func() {
		for _, l := range initial {
			if _, err := io.WriteString(pw, l+"\n"); err != nil {
				return
			}
		}
		for {
			select {
			case l, ok := <-ch:
				if !ok {
					_ = pw.Close()
					return
				}
				if _, err := io.WriteString(pw, l+"\n"); err != nil {
					return
				}
			case <-ctx.Done():
				_ = pw.CloseWithError(ctx.Err())
				f.mu.Lock()
				delete(f.live, ch)
				f.mu.Unlock()
				return
			}
		}
	}()
	return pr, nil
}

// follower is one Stream of the fake log's container.
type follower struct {
	mu     sync.Mutex
	lines  []string
	cancel context.CancelFunc
	done   chan error
}

var target = Target{Namespace: "ns", Pod: "p", Container: "c"}

func follow(src Source, o Options, limits Limits, send func()) *follower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{cancel: cancel, done: make(chan error, 1)}
	o.Follow = true
	go func() {
		f.done <- Stream(ctx, src, []Target{target}, o, limits, nil, func(b []Line) error {
			if send != nil {
				send()
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			for _, l := range b {
				f.lines = append(f.lines, l.Line)
			}
			return nil
		})
	}()
	return f
}

func (f *follower) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.lines)
}

// await waits until f has exactly want.
func (f *follower) await(t *testing.T, what string, want ...string) {
	t.Helper()
	waitFor(t, what, func() error {
		got := f.got()
		if len(got) > len(want) || !slices.Equal(got, want[:len(got)]) {
			t.Fatalf("%s: lines %q, want %q", what, got, want)
		}
		if len(got) < len(want) {
			return fmt.Errorf("lines %q", got)
		}
		return nil
	})
}

// stop cancels f and returns how its Stream ended.
func (f *follower) stop(t *testing.T) error {
	t.Helper()
	f.cancel()
	select {
	case err := <-f.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("stream still running 30 s after it was cancelled")
		return nil
	}
}

func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func lineTexts(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, "line "+strconv.Itoa(i))
	}
	return out
}

func testOptions() SharedOptions {
	return SharedOptions{Linger: time.Millisecond, Quiet: 20 * time.Millisecond}
}

// TestSharedJoin: followers of one container whose tails the shared
// stream's lines hold share its one read; each gets its tail, then every
// appended line in order once; one whose tail they do not hold reads its
// own.
func TestSharedJoin(t *testing.T) {
	log := newFakeLog(10, time.Now().Add(-time.Minute), time.Millisecond)
	s := NewShared(testOptions())
	src := s.Source("org-a/cluster-1", log.open)

	a := follow(src, Options{Tail: 3}, Limits{}, nil)
	a.await(t, "opener's tail", lineTexts(8, 10)...)
	b := follow(src, Options{Tail: 2}, Limits{}, nil)
	b.await(t, "tail from the shared lines", lineTexts(9, 10)...)
	c := follow(src, Options{Tail: 5}, Limits{}, nil)
	c.await(t, "tail longer than the shared lines", lineTexts(6, 10)...)
	if opens, _ := log.counts(); opens != 2 {
		t.Errorf("%d streams opened, want 2 (a and b share one, c reads its own)", opens)
	}
	for i := 11; i <= 20; i++ {
		log.append("line " + strconv.Itoa(i))
	}
	a.await(t, "a follows", lineTexts(8, 20)...)
	b.await(t, "b follows", lineTexts(9, 20)...)
	c.await(t, "c follows", lineTexts(6, 20)...)
	d := follow(src, Options{Tail: 4}, Limits{}, nil)
	d.await(t, "a later follower's tail", lineTexts(17, 20)...)
	all := map[string]*follower{"a": a, "b": b, "c": c, "d": d}
	before := map[string][]string{}
	for name, f := range all {
		before[name] = f.got()
	}
	log.append("line 21")
	for name, f := range all {
		f.await(t, name+" has line 21", append(before[name], "line 21")...)
		if err := f.stop(t); !errors.Is(err, context.Canceled) {
			t.Errorf("%s ended with %v, want context.Canceled", name, err)
		}
	}
	if opens, _ := log.counts(); opens != 2 {
		t.Errorf("%d streams opened, want 2", opens)
	}
}

// TestSharedSince: a follower's since is met from the shared lines when
// they reach back past it, or when they hold the whole log.
func TestSharedSince(t *testing.T) {
	now := time.Now()
	// line i+1 written 10-i minutes ago.
	log := newFakeLog(10, now.Add(-10*time.Minute), time.Minute)
	s := NewShared(testOptions())
	src := s.Source("org-a/cluster-1", log.open)

	a := follow(src, Options{Tail: 100}, Limits{}, nil)
	a.await(t, "whole log", lineTexts(1, 10)...)
	b := follow(src, Options{Tail: 100, Since: 150 * time.Second}, Limits{}, nil)
	b.await(t, "since 150 s", lineTexts(9, 10)...)
	c := follow(src, Options{}, Limits{}, nil)
	c.await(t, "whole log, no tail", lineTexts(1, 10)...)
	if opens, _ := log.counts(); opens != 1 {
		t.Errorf("%d streams opened, want 1", opens)
	}
	for _, f := range []*follower{a, b, c} {
		f.stop(t)
	}
	waitFor(t, "the stream closes", func() error {
		if _, live := log.counts(); live != 0 {
			return fmt.Errorf("%d open", live)
		}
		return nil
	})

	// Opened with a since: a later follower's longer since needs its own.
	d := follow(src, Options{Tail: 100, Since: 330 * time.Second}, Limits{}, nil)
	d.await(t, "since 5.5 min", lineTexts(6, 10)...)
	e := follow(src, Options{Tail: 100, Since: 210 * time.Second}, Limits{}, nil)
	e.await(t, "since 3.5 min, from the shared lines", lineTexts(8, 10)...)
	if opens, _ := log.counts(); opens != 2 {
		t.Errorf("%d streams opened, want 2", opens)
	}
	f := follow(src, Options{Tail: 100, Since: time.Hour}, Limits{}, nil)
	f.await(t, "since 1 h, its own", lineTexts(1, 10)...)
	if opens, _ := log.counts(); opens != 3 {
		t.Errorf("%d streams opened, want 3", opens)
	}
	log.append("line 11")
	d.await(t, "d follows", append(lineTexts(6, 10), "line 11")...)
	e.await(t, "e follows", append(lineTexts(8, 10), "line 11")...)
	f.await(t, "f follows", lineTexts(1, 11)...)
	for _, f := range []*follower{d, e, f} {
		f.stop(t)
	}
}

// TestSharedSettle: a follower that joins a stream whose opener's tail is
// longer than the log waits until the stream has sent it, then takes its
// own tail from the whole log the stream holds.
func TestSharedSettle(t *testing.T) {
	log := newFakeLog(2, time.Now().Add(-time.Minute), time.Millisecond)
	s := NewShared(testOptions())
	src := s.Source("org-a/cluster-1", log.open)
	a := follow(src, Options{Tail: 5}, Limits{}, nil)
	b := follow(src, Options{Tail: 5}, Limits{}, nil)
	a.await(t, "a", lineTexts(1, 2)...)
	b.await(t, "b", lineTexts(1, 2)...)
	log.append("line 3")
	a.await(t, "a follows", lineTexts(1, 3)...)
	b.await(t, "b follows", lineTexts(1, 3)...)
	if opens, _ := log.counts(); opens != 1 {
		t.Errorf("%d streams opened, want 1", opens)
	}
	a.stop(t)
	b.stop(t)
}

// TestSharedSlowFollower: a follower that stops taking lines ends with
// ErrFellBehind once the shared stream no longer keeps its next line; the
// others get every line, and the stream keeps at most RingLines.
func TestSharedSlowFollower(t *testing.T) {
	log := newFakeLog(1, time.Now().Add(-time.Minute), time.Millisecond)
	o := testOptions()
	o.RingLines = 8
	s := NewShared(o)
	src := s.Source("org-a/cluster-1", log.open)
	fast := follow(src, Options{Tail: 1}, Limits{}, nil)
	fast.await(t, "fast's tail", "line 1")
	release := make(chan struct{})
	slow := follow(src, Options{Tail: 1}, Limits{}, func() { <-release })
	for i := 2; i <= 400; i++ {
		log.append("line " + strconv.Itoa(i))
		fast.await(t, "fast follows", lineTexts(1, i)...)
	}
	s.mu.Lock()
	for _, h := range s.hubs {
		h.mu.Lock()
		if len(h.lines) > o.RingLines {
			t.Errorf("the stream keeps %d lines, want at most %d", len(h.lines), o.RingLines)
		}
		h.mu.Unlock()
	}
	s.mu.Unlock()
	close(release)
	select {
	case err := <-slow.done:
		if !errors.Is(err, ErrFellBehind) {
			t.Errorf("slow follower ended with %v, want ErrFellBehind", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the slow follower did not end")
	}
	// It joined while lines were appended: its tail is one of them.
	got := slow.got()
	var first int
	if len(got) > 0 {
		first, _ = strconv.Atoi(strings.TrimPrefix(got[0], "line "))
	}
	if first == 0 || !slices.Equal(got, lineTexts(first, first+len(got)-1)) {
		t.Errorf("slow follower got %q, want lines in order", got)
	}
	log.append("line 401")
	fast.await(t, "fast still follows", lineTexts(1, 401)...)
	fast.stop(t)
}

// TestSharedLifetime: the stream closes once its last follower has left
// (after Linger), and when the log ends its followers end too; the next
// follower opens a new stream.
func TestSharedLifetime(t *testing.T) {
	log := newFakeLog(3, time.Now().Add(-time.Minute), time.Millisecond)
	o := testOptions()
	o.Linger = time.Hour
	s := NewShared(o)
	src := s.Source("org-a/cluster-1", log.open)

	a := follow(src, Options{Tail: 1}, Limits{}, nil)
	a.await(t, "a", "line 3")
	a.stop(t)
	b := follow(src, Options{Tail: 1}, Limits{}, nil)
	b.await(t, "b, within the linger", "line 3")
	if opens, live := log.counts(); opens != 1 || live != 1 {
		t.Errorf("opened %d, open %d; want one stream kept for b", opens, live)
	}
	log.end()
	select {
	case err := <-b.done:
		if err != nil {
			t.Errorf("b ended with %v at the log's end, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("b did not end with the log")
	}
	waitFor(t, "the ended stream is dropped", func() error {
		if n := s.open(); n != 0 {
			return fmt.Errorf("%d shared streams", n)
		}
		return nil
	})

	log = newFakeLog(3, time.Now().Add(-time.Minute), time.Millisecond)
	s = NewShared(testOptions()) // Linger 1 ms
	src = s.Source("org-a/cluster-1", log.open)
	c := follow(src, Options{Tail: 1}, Limits{}, nil)
	c.await(t, "c", "line 3")
	c.stop(t)
	waitFor(t, "the stream closes after its last follower left", func() error {
		if _, live := log.counts(); live != 0 || s.open() != 0 {
			return fmt.Errorf("%d open upstream, %d shared", live, s.open())
		}
		return nil
	})
	d := follow(src, Options{Tail: 1}, Limits{}, nil)
	d.await(t, "d", "line 3")
	if opens, _ := log.counts(); opens != 2 {
		t.Errorf("%d streams opened, want 2", opens)
	}
	s.Close()
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("d ended with %v on Close, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("d did not end on Close")
	}
}

// TestSharedScopes: followers of different scopes (organizations,
// credentials) never share a stream; reads that do not follow the current
// log never share either.
func TestSharedScopes(t *testing.T) {
	log := newFakeLog(3, time.Now().Add(-time.Minute), time.Millisecond)
	s := NewShared(testOptions())
	a := follow(s.Source("org-a/cluster-1", log.open), Options{Tail: 1}, Limits{}, nil)
	b := follow(s.Source("org-b/cluster-1", log.open), Options{Tail: 1}, Limits{}, nil)
	a.await(t, "a", "line 3")
	b.await(t, "b", "line 3")
	if opens, _ := log.counts(); opens != 2 {
		t.Errorf("%d streams opened, want one per scope", opens)
	}
	src := s.Source("org-a/cluster-1", log.open)
	for _, o := range []Options{{Tail: 1}, {Tail: 1, Follow: true, Previous: true}} {
		var got []string
		if err := Stream(context.Background(), src, []Target{target}, o, Limits{}, nil, func(b []Line) error {
			for _, l := range b {
				got = append(got, l.Line)
			}
			return nil
		}); err != nil || !slices.Equal(got, []string{"line 3"}) {
			t.Errorf("%+v: %q, %v", o, got, err)
		}
	}
	if opens, _ := log.counts(); opens != 4 {
		t.Errorf("%d streams opened, want 4 (the reads that do not follow read their own)", opens)
	}
	a.stop(t)
	b.stop(t)
}

// TestSharedOpenError: a stream that cannot open fails its followers as
// their own would have.
func TestSharedOpenError(t *testing.T) {
	log := newFakeLog(0, time.Now(), 0)
	log.openErr = fmt.Errorf("%w: p/c: waiting to start", ErrUnavailable)
	s := NewShared(testOptions())
	src := s.Source("org-a/cluster-1", log.open)
	a := follow(src, Options{Tail: 1}, Limits{}, nil)
	b := follow(src, Options{Tail: 1}, Limits{}, nil)
	for name, f := range map[string]*follower{"a": a, "b": b} {
		select {
		case err := <-f.done:
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("%s: %v, want ErrUnavailable", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not end", name)
		}
	}
}
