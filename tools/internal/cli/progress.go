package cli

import (
	"fmt"
	"strings"
	"time"

	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

// progress shows where an operation is, on stderr: on a terminal one live
// line (state, latest event, elapsed time) redrawn in place; otherwise a
// plain line per state change and per new event, for CI logs.
type progress struct {
	a      *app
	live   bool
	ticker *time.Ticker
	op     *releasesv1.Operation
	start  time.Time
	seen   int // events printed (plain mode), counting dropped ones
	state  releasesv1.OperationState
	frame  int
	drawn  bool
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func newProgress(a *app, op *releasesv1.Operation) *progress {
	p := &progress{a: a, live: a.env.IsTerminal(a.env.Stderr) && a.env.Getenv("TERM") != "dumb", start: a.env.Now()}
	if ct := op.GetCreateTime(); ct != nil && ct.AsTime().Before(p.start) {
		p.start = ct.AsTime()
	}
	if p.live {
		p.ticker = time.NewTicker(150 * time.Millisecond)
	}
	p.update(op)
	return p
}

// tick fires when the live line should be redrawn; never in plain mode.
func (p *progress) tick() <-chan time.Time {
	if p.ticker == nil {
		return nil
	}
	return p.ticker.C
}

func (p *progress) update(op *releasesv1.Operation) {
	p.op = op
	if p.live {
		p.redraw()
		return
	}
	w := p.a.env.Stderr
	if op.GetState() != p.state {
		p.state = op.GetState()
		fmt.Fprintf(w, "%s  operation %s %s\n", p.elapsed(), op.GetId(), enum(op.GetState()))
	}
	evs := op.GetEvents()
	// Events are the latest ones kept; dropped_event_count counts those
	// before them.
	offset := int(op.GetDroppedEventCount())
	for i, ev := range evs {
		if offset+i < p.seen {
			continue
		}
		fmt.Fprintf(w, "%s  %s: %s\n", p.elapsed(), ev.GetPhase(), ev.GetMessage())
	}
	p.seen = max(p.seen, offset+len(evs))
}

func (p *progress) elapsed() string {
	d := p.a.env.Now().Sub(p.start)
	if d < 0 {
		d = 0
	}
	return fmt.Sprintf("%5.1fs", d.Seconds())
}

func (p *progress) redraw() {
	if !p.live || p.op == nil {
		return
	}
	op := p.op
	p.frame++
	line := fmt.Sprintf("%s %s %s", spinner[p.frame%len(spinner)], op.GetId(), paint(enum(op.GetState())))
	if evs := op.GetEvents(); len(evs) > 0 {
		ev := evs[len(evs)-1]
		line += "  " + ev.GetPhase() + ": " + ev.GetMessage()
	}
	line = truncate(line, 110) + "  " + strings.TrimSpace(p.elapsed())
	fmt.Fprintf(p.a.env.Stderr, "\r\x1b[2K%s", line)
	p.drawn = true
}

// stop ends the display, leaving the terminal on a fresh line.
func (p *progress) stop() {
	if p.ticker != nil {
		p.ticker.Stop()
	}
	if p.drawn {
		fmt.Fprint(p.a.env.Stderr, "\r\x1b[2K")
		p.drawn = false
	}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
