// Package podlogs reads the container logs of pods through the API server
// (which asks the nodes' kubelets), several containers at once, and sends
// their lines in bounded batches.
package podlogs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
)

// Errors of opening a container's log.
var (
	// ErrNotFound: the pod is gone.
	ErrNotFound = errors.New("pod not found")
	// ErrUnavailable: the cluster has no logs for the container (yet): it
	// waits to start, or has no previous instance.
	ErrUnavailable = errors.New("logs unavailable")
	// ErrUnreachable: the API server or the node's kubelet did not answer.
	ErrUnreachable = errors.New("logs unreachable")
)

// Sizes of what is sent.
const (
	// MaxLine is the longest line sent; longer ones are cut.
	MaxLine = 16 << 10
	// A batch is sent at most this big, or as soon as no line is waiting.
	MaxBatchLines = 500
	MaxBatchBytes = 1 << 20
	// MaxFollowBatchLines is MaxBatchLines when following: lines come a
	// few at a time then, and many following streams at once should each
	// hold few.
	MaxFollowBatchLines = 64
)

// Target is one container whose log is read.
type Target struct{ Namespace, Pod, Container string }

// Options select the lines of each target.
type Options struct {
	Tail     int           // lines to start with, from the end; all when 0
	Since    time.Duration // only lines written within this long, when set
	Follow   bool          // keep reading new lines
	Previous bool          // the previous, terminated container instead
}

// Limits bound a stream; zero fields take the defaults.
type Limits struct {
	// MaxLines ends a stream after this many lines (100 000).
	MaxLines int
	// BytesPerSecond is the most a stream delivers per second, counting
	// lines' bytes (1 MiB). Past it, reading the containers' logs waits.
	BytesPerSecond int
}

func (l Limits) withDefaults() Limits {
	if l.MaxLines <= 0 {
		l.MaxLines = 100_000
	}
	if l.BytesPerSecond <= 0 {
		l.BytesPerSecond = 1 << 20
	}
	return l
}

// Line is one line of a container's log.
type Line struct {
	Pod, Container string
	Time           time.Time // zero when the runtime gave none
	Line           string
	Truncated      bool
}

// ErrFellBehind: a following stream took its lines slower than the shared
// stream of a container brought them, so far that the lines it had not
// taken yet were no longer kept (see Shared). It ends the whole stream.
var ErrFellBehind = errors.New("fell behind the container's log")

// Source reads the log of one container.
type Source interface {
	// Read sends the lines of t's log to out, in order, until the log ends
	// (with Follow: until ctx does).
	Read(ctx context.Context, t Target, o Options, out chan<- Line) error
}

// Opener opens the log of one container as the API server serves it: a
// line per log line, each after its RFC 3339 timestamp. It is the Source
// that reads every stream on its own.
type Opener func(ctx context.Context, t Target, o Options) (io.ReadCloser, error)

// Kube opens logs through the cluster's API server, which asks the node's
// kubelet.
func Kube(cs kubernetes.Interface) Opener {
	return func(ctx context.Context, t Target, o Options) (io.ReadCloser, error) {
		opts := &corev1.PodLogOptions{Container: t.Container, Follow: o.Follow, Previous: o.Previous, Timestamps: true}
		if o.Tail > 0 {
			tail := int64(o.Tail)
			opts.TailLines = &tail
		}
		if o.Since > 0 {
			secs := int64(math.Ceil(o.Since.Seconds()))
			opts.SinceSeconds = &secs
		}
		rc, err := cs.CoreV1().Pods(t.Namespace).GetLogs(t.Pod, opts).Stream(ctx)
		if err != nil {
			return nil, logsError(t, err)
		}
		return rc, nil
	}
}

// Read opens t's log and sends its lines to out.
func (open Opener) Read(ctx context.Context, t Target, o Options, out chan<- Line) error {
	rc, err := open(ctx, t, o)
	if err != nil {
		return err
	}
	defer rc.Close()
	return scan(ctx, rc, t, func(l Line) error {
		select {
		case out <- l:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// Stream reads every target's log from src at once and sends their lines
// as they come, in batches of at most MaxBatchLines (MaxFollowBatchLines
// with Follow) or MaxBatchBytes,
// until every reader ends (with Follow: until ctx does) or MaxLines lines
// are sent. Lines of one container keep their order. A target that cannot
// be read is logged and skipped; Stream fails only when none could be and
// no line was sent, or when one fell behind (ErrFellBehind). It returns
// once every reader has stopped.
//
// The readers go no faster than BytesPerSecond allows: when sending waits,
// their channel fills and they stop reading, which holds the API server's
// streams back too (a shared stream does not wait: see Shared).
func Stream(ctx context.Context, src Source, targets []Target, o Options, limits Limits, log *slog.Logger, send func([]Line) error) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	limits = limits.withDefaults()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lines := make(chan Line, 64)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		failed   int
	)
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := src.Read(ctx, t, o, lines)
			if err == nil || ctx.Err() != nil {
				return
			}
			if errors.Is(err, ErrFellBehind) {
				cancel(err) // the client is told, rather than miss lines
				return
			}
			log.WarnContext(ctx, "read container logs", "namespace", t.Namespace, "pod", t.Pod, "container", t.Container, "error", err)
			mu.Lock()
			defer mu.Unlock()
			failed++
			if firstErr == nil {
				firstErr = err
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	// The readers stop on cancel; wait for them before returning.
	defer func() {
		cancel(nil)
		<-done
	}()

	limiter := rate.NewLimiter(rate.Limit(limits.BytesPerSecond), limits.BytesPerSecond)
	maxBatch := MaxBatchLines
	if o.Follow {
		maxBatch = MaxFollowBatchLines
	}
	var (
		batch     []Line
		batchSize int
		sent      int
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		for n := batchSize; n > 0; n -= limits.BytesPerSecond {
			if err := limiter.WaitN(ctx, min(n, limits.BytesPerSecond)); err != nil {
				return context.Cause(ctx)
			}
		}
		if err := send(batch); err != nil {
			return err
		}
		sent += len(batch)
		batch, batchSize = nil, 0
		return nil
	}
	add := func(l Line) (full bool) {
		batch = append(batch, l)
		batchSize += len(l.Line)
		return len(batch) >= maxBatch || batchSize >= MaxBatchBytes || sent+len(batch) >= limits.MaxLines
	}
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-done:
			if err := context.Cause(ctx); err != nil {
				return err
			}
			// Every reader has ended: what is left in the channel is all.
			for {
				select {
				case l := <-lines:
					if add(l) {
						if err := flush(); err != nil || sent >= limits.MaxLines {
							return err
						}
					}
					continue
				default:
				}
				break
			}
			if err := flush(); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if failed == len(targets) && sent == 0 {
				return firstErr
			}
			return nil
		case l := <-lines:
			full := add(l)
			// Take what else is waiting, then send.
			for !full {
				select {
				case l := <-lines:
					full = add(l)
					continue
				default:
				}
				break
			}
			if err := flush(); err != nil {
				return err
			}
			if sent >= limits.MaxLines {
				return nil
			}
		}
	}
}

// scan parses the lines of one container's log from r and hands each to
// emit.
func scan(ctx context.Context, r io.Reader, t Target, emit func(Line) error) error {
	br := bufio.NewReaderSize(r, 32<<10)
	for {
		raw, cut, err := readLine(br, MaxLine+64) // room for the timestamp
		if len(raw) > 0 || err == nil {
			l := parseLogLine(raw)
			l.Pod, l.Container = t.Pod, t.Container
			l.Truncated = l.Truncated || cut
			if err := emit(l); err != nil {
				return err
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read logs of %s/%s: %w", t.Pod, t.Container, err)
		}
	}
}

// readLine reads one line without its newline, keeping at most limit
// bytes of it (cut tells) and discarding the rest.
func readLine(br *bufio.Reader, limit int) (line []byte, cut bool, err error) {
	for {
		part, err := br.ReadSlice('\n')
		part = bytes.TrimSuffix(part, []byte{'\n'})
		if room := limit - len(line); len(part) > room {
			part, cut = part[:max(room, 0)], true
		}
		line = append(line, part...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, cut, err
		}
	}
}

// parseLogLine splits the RFC 3339 timestamp the API server puts before
// each line (Timestamps: true), and keeps the line valid UTF-8 and at most
// MaxLine bytes.
func parseLogLine(raw []byte) Line {
	var l Line
	if ts, rest, ok := bytes.Cut(raw, []byte{' '}); ok {
		if t, err := time.Parse(time.RFC3339Nano, string(ts)); err == nil {
			l.Time, raw = t, rest
		}
	}
	raw = bytes.TrimSuffix(raw, []byte{'\r'})
	if len(raw) > MaxLine {
		i := MaxLine
		for i > 0 && !utf8.RuneStart(raw[i]) {
			i--
		}
		raw, l.Truncated = raw[:i], true
	}
	l.Line = strings.ToValidUTF8(string(raw), "\uFFFD")
	return l
}

// logsError explains why a container's log could not be opened.
func logsError(t Target, err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: %s", ErrNotFound, t.Pod)
	case apierrors.IsBadRequest(err):
		return fmt.Errorf("%w: %s/%s: %s", ErrUnavailable, t.Pod, t.Container, statusMessage(err))
	}
	return fmt.Errorf("%w: logs of %s/%s: %s", ErrUnreachable, t.Pod, t.Container, statusMessage(err))
}

// statusMessage is the API server's message, or err's text.
func statusMessage(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) && se.Status().Message != "" {
		return se.Status().Message
	}
	return err.Error()
}
