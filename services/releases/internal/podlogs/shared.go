package podlogs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// SharedOptions tune Shared; zero fields take the defaults.
type SharedOptions struct {
	// RingBytes and RingLines bound the recent lines a shared stream keeps
	// for the tails of the followers that join it, and for followers that
	// take their lines slower than it reads them (2 MiB, 5,000 lines).
	RingBytes, RingLines int
	// BytesPerSecond is the most a shared stream reads a second, counting
	// lines' bytes (1 MiB): no follower may take more (Limits).
	BytesPerSecond int
	// Linger keeps a shared stream open this long after its last follower
	// left, for one that reconnects (5 s).
	Linger time.Duration
	// Settle is how long a follower joining a stream that has just opened
	// waits for the stream's first lines before reading its own (2 s).
	Settle time.Duration
	// Quiet: a stream is taken to have sent the tail it was opened with
	// once it has sent that many lines, or after this long without a line
	// (250 ms).
	Quiet time.Duration
	Log   *slog.Logger
}

func (o SharedOptions) withDefaults() SharedOptions {
	if o.RingBytes <= 0 {
		o.RingBytes = 2 << 20
	}
	if o.RingLines <= 0 {
		o.RingLines = 5000
	}
	if o.BytesPerSecond <= 0 {
		o.BytesPerSecond = 1 << 20
	}
	if o.Linger <= 0 {
		o.Linger = 5 * time.Second
	}
	if o.Settle <= 0 {
		o.Settle = 2 * time.Second
	}
	if o.Quiet <= 0 {
		o.Quiet = 250 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Shared lets the streams that follow one container share one read of its
// log from the API server: each node's kubelet then serves one stream per
// followed container, however many clients follow it.
//
// The first follower of a container opens the shared stream with its own
// tail and since; the stream keeps its recent lines (RingBytes,
// RingLines). A follower that joins later starts from those lines when
// they hold its tail and since (the last Tail lines of the log, or every
// line since Since), then gets every line the stream reads, in order,
// once each; otherwise it reads its own stream. A follower that falls so
// far behind the shared stream that its next line is no longer kept ends
// with ErrFellBehind: the stream never waits for one follower, and holds
// no more lines for it. The stream closes Linger after its last follower
// left, or when the log ends.
type Shared struct {
	o    SharedOptions
	mu   sync.Mutex
	hubs map[hubKey]*hub
}

// NewShared returns a Shared with no stream open.
func NewShared(o SharedOptions) *Shared {
	return &Shared{o: o.withDefaults(), hubs: map[hubKey]*hub{}}
}

// Source reads logs with open, sharing the streams that follow a
// container's current log (Follow, not Previous) with the other followers
// of the same scope. scope names whose credentials open reads with (the
// organization, the cluster and its credential): streams of different
// scopes are never shared, and each follower's right to read was checked
// before it asked.
func (s *Shared) Source(scope string, open Opener) Source {
	return sharedSource{s: s, scope: scope, open: open}
}

// Close ends every shared stream; their followers end as if the logs had.
func (s *Shared) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, h := range s.hubs {
		delete(s.hubs, k)
		h.cancel()
	}
}

// open is how many shared streams are open.
func (s *Shared) open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.hubs)
}

type sharedSource struct {
	s     *Shared
	scope string
	open  Opener
}

func (ss sharedSource) Read(ctx context.Context, t Target, o Options, out chan<- Line) error {
	if !o.Follow || o.Previous {
		return ss.open.Read(ctx, t, o, out)
	}
	return ss.s.follow(ctx, hubKey{scope: ss.scope, target: t}, ss.open, o, out)
}

type hubKey struct {
	scope  string
	target Target
}

// hub is one shared stream and the recent lines it read.
type hub struct {
	key    hubKey
	cancel context.CancelFunc // ends the stream
	// What the stream was opened with.
	tail0  int
	since0 time.Duration
	opened time.Time
	// settled is closed once the lines of the opener's tail have come
	// (see SharedOptions.Quiet) or the stream ended.
	settled chan struct{}

	// Under Shared.mu.
	followers int
	linger    *time.Timer

	mu       sync.Mutex
	lines    []Line // lines first, first+1, ... of the stream
	first    int64
	size     int
	changed  chan struct{} // closed when lines or done change
	done     bool
	err      error // why the stream ended, nil at the log's end
	isSettle bool
	quiet    *time.Timer
}

// lineCost is what a kept line weighs against RingBytes: its text and the
// Line around it.
func lineCost(l Line) int { return len(l.Line) + 96 }

// follow sends t's lines to out from the scope's shared stream of it,
// opening that stream if none is.
func (s *Shared) follow(ctx context.Context, key hubKey, open Opener, o Options, out chan<- Line) error {
	s.mu.Lock()
	h, joined := s.hubs[key]
	if !joined {
		h = s.start(key, open, o)
	}
	h.followers++
	if h.linger != nil {
		h.linger.Stop()
		h.linger = nil
	}
	s.mu.Unlock()
	leave := sync.OnceFunc(func() { s.leave(h) })
	defer leave()

	var cursor int64 // the opener takes every line from the first
	if joined {
		timer := time.NewTimer(s.o.Settle)
		defer timer.Stop()
		select {
		case <-h.settled:
		case <-timer.C:
			leave()
			return open.Read(ctx, key.target, o, out)
		case <-ctx.Done():
			return ctx.Err()
		}
		var ok bool
		if cursor, ok = h.join(o, time.Now()); !ok {
			leave()
			return open.Read(ctx, key.target, o, out)
		}
	}
	return h.deliver(ctx, cursor, out)
}

// start opens the shared stream of key with o. Under s.mu.
func (s *Shared) start(key hubKey, open Opener, o Options) *hub {
	ctx, cancel := context.WithCancel(context.Background())
	h := &hub{key: key, cancel: cancel, tail0: o.Tail, since0: o.Since, opened: time.Now(),
		settled: make(chan struct{}), changed: make(chan struct{})}
	s.hubs[key] = h
	go s.run(ctx, h, open, o)
	return h
}

// run reads the stream into h until it ends or is cancelled.
func (s *Shared) run(ctx context.Context, h *hub, open Opener, o Options) {
	defer h.cancel()
	err := func() error {
		rc, err := open(ctx, h.key.target, o)
		if err != nil {
			return err
		}
		defer rc.Close()
		h.mu.Lock()
		if !h.isSettle {
			h.quiet = time.AfterFunc(s.o.Quiet, h.settle)
		}
		h.mu.Unlock()
		limiter := rate.NewLimiter(rate.Limit(s.o.BytesPerSecond), s.o.BytesPerSecond)
		return scan(ctx, rc, h.key.target, func(l Line) error {
			if err := limiter.WaitN(ctx, min(max(len(l.Line), 1), s.o.BytesPerSecond)); err != nil {
				return ctx.Err()
			}
			h.add(l, s.o)
			return nil
		})
	}()
	if err != nil && ctx.Err() == nil {
		s.o.Log.Warn("read shared container log", "namespace", h.key.target.Namespace, "pod", h.key.target.Pod, "container", h.key.target.Container, "error", err)
	}
	// A later follower opens a new stream.
	s.mu.Lock()
	if s.hubs[h.key] == h {
		delete(s.hubs, h.key)
	}
	s.mu.Unlock()
	h.finish(err)
}

// leave counts a follower out of h, and closes h's stream Linger after
// the last one left.
func (s *Shared) leave(h *hub) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h.followers--
	if h.followers > 0 {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(s.o.Linger, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if h.linger != t || h.followers > 0 {
			return // someone joined since
		}
		h.linger = nil
		if s.hubs[h.key] == h {
			delete(s.hubs, h.key)
		}
		h.cancel()
	})
	h.linger = t
}

// add keeps l, forgets the oldest lines past the bounds, and wakes the
// followers.
func (h *hub) add(l Line, o SharedOptions) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, l)
	h.size += lineCost(l)
	for len(h.lines) > 1 && (len(h.lines) > o.RingLines || h.size > o.RingBytes) {
		h.size -= lineCost(h.lines[0])
		h.lines[0] = Line{}
		h.lines = h.lines[1:]
		h.first++
	}
	h.wake()
	if h.isSettle {
		return
	}
	if h.tail0 > 0 && h.first+int64(len(h.lines)) >= int64(h.tail0) {
		h.settleLocked()
	} else {
		h.quiet.Reset(o.Quiet)
	}
}

// wake tells the followers waiting on h.changed. Under h.mu.
func (h *hub) wake() {
	close(h.changed)
	h.changed = make(chan struct{})
}

func (h *hub) settle() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settleLocked()
}

func (h *hub) settleLocked() {
	if h.isSettle {
		return
	}
	h.isSettle = true
	if h.quiet != nil {
		h.quiet.Stop()
	}
	close(h.settled)
}

// finish records the end of h's stream.
func (h *hub) finish(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.done, h.err = true, err
	h.settleLocked()
	h.wake()
}

// join finds where a follower joining now with o starts in h's lines: ok
// is false when they do not hold its tail (or h has ended).
func (h *hub) join(o Options, now time.Time) (cursor int64, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return 0, false
	}
	var cutoff time.Time
	if o.Since > 0 {
		cutoff = now.Add(-o.Since)
	}
	older := func(l Line) bool { return !cutoff.IsZero() && !l.Time.IsZero() && l.Time.Before(cutoff) }
	lines := h.lines
	switch {
	case o.Tail > 0 && len(lines) >= o.Tail:
		// They hold the last Tail lines.
	case len(lines) > 0 && older(lines[0]):
		// They hold every line since the cutoff.
	case h.first == 0 && (h.tail0 == 0 || len(lines) < h.tail0) && h.covers(cutoff):
		// They hold the whole log, as far as o reaches.
	default:
		return 0, false
	}
	i := 0
	if o.Tail > 0 && len(lines) > o.Tail {
		i = len(lines) - o.Tail
	}
	for i < len(lines) && older(lines[i]) {
		i++
	}
	return h.first + int64(i), true
}

// covers reports whether the stream's since reached back to cutoff (zero:
// the log's start).
func (h *hub) covers(cutoff time.Time) bool {
	return h.since0 == 0 || !cutoff.IsZero() && !cutoff.Before(h.opened.Add(-h.since0))
}

// deliver sends h's lines from cursor on to out until the stream ends, ctx
// does, or the follower falls behind.
func (h *hub) deliver(ctx context.Context, cursor int64, out chan<- Line) error {
	const chunk = 32
	buf := make([]Line, 0, chunk)
	for {
		h.mu.Lock()
		if cursor < h.first {
			h.mu.Unlock()
			t := h.key.target
			return fmt.Errorf("%w: %s/%s: reconnect with since", ErrFellBehind, t.Pod, t.Container)
		}
		end := h.first + int64(len(h.lines))
		if cursor == end {
			done, err, changed := h.done, h.err, h.changed
			h.mu.Unlock()
			if done {
				if errors.Is(err, context.Canceled) {
					err = nil // Shared.Close
				}
				return err
			}
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		from := int(cursor - h.first)
		buf = append(buf[:0], h.lines[from:from+int(min(end-cursor, chunk))]...)
		h.mu.Unlock()
		cursor += int64(len(buf))
		for _, l := range buf {
			select {
			case out <- l:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}
