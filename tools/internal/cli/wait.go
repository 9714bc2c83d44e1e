package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

// opFlags are the flags of every command that starts an operation.
type opFlags struct {
	async          bool
	idempotencyKey string
}

func (o *opFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.async, "async", false, "print the operation's id and return at once instead of waiting for it")
	cmd.Flags().StringVar(&o.idempotencyKey, "idempotency-key", "", "Idempotency-Key of the request, so a rerun (a retried CI job) gets the same operation (default: a new random key)")
}

// submit sends a request that starts an operation (202 + Location) and,
// unless --async, follows the operation to its end. It returns an error
// when the operation failed or was cancelled.
func (a *app) submit(ctx context.Context, c *client, req request, o *opFlags) error {
	req.idempotencyKey = first(o.idempotencyKey, newIdempotencyKey())
	resp, err := c.do(ctx, req)
	if err != nil {
		return err
	}
	var started struct {
		Operation json.RawMessage `json:"operation"`
	}
	if err := json.Unmarshal(resp.body, &started); err != nil {
		return fmt.Errorf("read the server's answer: %w", err)
	}
	op := &releasesv1.Operation{}
	if err := unmarshalOpts.Unmarshal(started.Operation, op); err != nil || op.GetId() == "" {
		return fmt.Errorf("the server's answer names no operation: %s", resp.body)
	}
	if o.async {
		if a.structured() {
			return a.show(resp.body, nil)
		}
		fmt.Fprintf(a.env.Stdout, "%s\n", op.GetId())
		fmt.Fprintf(a.env.Stderr, "Operation %s %s; follow it with: slipway op watch %s\n", op.GetId(), enum(op.GetState()), op.GetId())
		return nil
	}
	return a.follow(ctx, c, op)
}

// opFailed is an operation that ended other than succeeded.
type opFailed struct{ op *releasesv1.Operation }

func (e opFailed) Error() string {
	op := e.op
	if op.GetState() == releasesv1.OperationState_OPERATION_STATE_CANCELLED {
		return fmt.Sprintf("operation %s was cancelled", op.GetId())
	}
	msg := fmt.Sprintf("operation %s failed", op.GetId())
	if er := op.GetError(); er != nil {
		msg += ": " + strings.TrimSpace(er.GetCode()+": "+er.GetMessage())
	}
	return msg
}

func finished(op *releasesv1.Operation) bool {
	switch op.GetState() {
	case releasesv1.OperationState_OPERATION_STATE_SUCCEEDED, releasesv1.OperationState_OPERATION_STATE_FAILED,
		releasesv1.OperationState_OPERATION_STATE_CANCELLED:
		return true
	}
	return false
}

// snapshot is one message of an operation's watch.
type snapshot struct {
	op  *releasesv1.Operation
	raw []byte // {"operation": {...}} as the server sent it
	err error  // the stream failed (and ended)
}

// follow watches operation op (over server-sent events, reconnecting when
// the stream drops) until it ends, showing its progress on stderr: a live
// line on a terminal, plain lines otherwise. The final operation goes to
// stdout.
func (a *app) follow(ctx context.Context, c *client, op *releasesv1.Operation) error {
	org, err := c.orgName()
	if err != nil {
		return err
	}
	p := newProgress(a, op)
	last := &snapshot{op: op}
	failures := 0
	for !finished(last.op) {
		snaps := make(chan snapshot)
		wctx, cancel := context.WithCancel(ctx)
		go c.watchOperation(wctx, org, op.GetId(), snaps)
		streamed := false
	read:
		for {
			select {
			case s, ok := <-snaps:
				if !ok {
					err = errors.New("the event stream ended before the operation")
					break read
				}
				if s.err != nil {
					err = s.err
					break read
				}
				streamed = true
				last = &s
				p.update(s.op)
				if finished(s.op) {
					break read
				}
			case <-p.tick():
				p.redraw()
			case <-ctx.Done():
				cancel()
				p.stop()
				fmt.Fprintf(a.env.Stderr, "Stopped watching; operation %s goes on. Follow it again with: slipway op watch %s\n", op.GetId(), op.GetId())
				return ctx.Err()
			}
		}
		cancel()
		if finished(last.op) {
			break
		}
		var prob *Problem
		if errors.As(err, &prob) && prob.Status != http.StatusServiceUnavailable && prob.Status != http.StatusTooManyRequests && prob.Status < 500 {
			p.stop()
			return err
		}
		if streamed {
			failures = 0
		}
		failures++
		if failures > 5 {
			p.stop()
			return fmt.Errorf("watch operation %s: %w", op.GetId(), err)
		}
		// The stream ended early (a restart, a proxy): read where the
		// operation is and watch again.
		select {
		case <-time.After(time.Duration(failures) * time.Second):
		case <-ctx.Done():
			p.stop()
			return ctx.Err()
		}
		resp, gerr := c.do(ctx, request{op: "OperationsService_GetOperation", params: []string{org, op.GetId()}})
		if gerr == nil {
			got := &releasesv1.GetOperationResponse{}
			if resp.decode(got) == nil && got.GetOperation() != nil {
				last = &snapshot{op: got.GetOperation(), raw: resp.body}
				p.update(last.op)
			}
		}
	}
	p.stop()
	if a.structured() {
		raw := last.raw
		if raw == nil {
			raw, _ = marshalOpts.Marshal(&releasesv1.WatchOperationResponse{Operation: last.op})
		}
		if err := a.show(raw, nil); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(a.env.Stdout, outcome(last.op, a.env.Now()))
	}
	if last.op.GetState() != releasesv1.OperationState_OPERATION_STATE_SUCCEEDED {
		return opFailed{last.op}
	}
	return nil
}

// outcome is the one line that says how an operation ended.
func outcome(op *releasesv1.Operation, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Operation %s %s", op.GetId(), enum(op.GetState()))
	if s, e := op.GetCreateTime(), op.GetEndTime(); s != nil && e != nil {
		fmt.Fprintf(&b, " in %s", e.AsTime().Sub(s.AsTime()).Round(100*time.Millisecond))
	}
	if r := op.GetResult().GetRelease(); r != nil && r.GetName() != "" {
		fmt.Fprintf(&b, ": release %s in %s, revision %d (%s", r.GetName(), r.GetNamespace(), r.GetRevision(), enum(r.GetStatus()))
		if r.GetChart() != "" {
			fmt.Fprintf(&b, ", %s %s", r.GetChart(), r.GetChartVersion())
		}
		b.WriteString(")")
	}
	if op.GetDryRun() {
		b.WriteString(" [dry run]")
	}
	return b.String()
}

// watchOperation streams the operation's snapshots into out and closes it.
func (c *client) watchOperation(ctx context.Context, org, id string, out chan<- snapshot) {
	defer close(out)
	send := func(s snapshot) bool {
		select {
		case out <- s:
			return true
		case <-ctx.Done():
			return false
		}
	}
	_, path, err := routePath("OperationsService_WatchOperation", org, id)
	if err != nil {
		send(snapshot{err: err})
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.server+path, nil)
	if err != nil {
		send(snapshot{err: err})
		return
	}
	c.headers(req)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.stream.Do(req)
	if err != nil {
		send(snapshot{err: err})
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		send(snapshot{err: problemFrom(resp.StatusCode, resp.Header, b)})
		return
	}
	err = readEvents(resp.Body, func(event string, data []byte) bool {
		if event == "error" {
			return send(snapshot{err: problemFrom(http.StatusInternalServerError, http.Header{"Content-Type": {"application/problem+json"}}, data)})
		}
		msg := &releasesv1.WatchOperationResponse{}
		if err := unmarshalOpts.Unmarshal(data, msg); err != nil || msg.GetOperation() == nil {
			return send(snapshot{err: fmt.Errorf("read the operation's events: %v", err)})
		}
		return send(snapshot{op: msg.GetOperation(), raw: bytes.Clone(data)})
	})
	if err != nil && ctx.Err() == nil {
		send(snapshot{err: err})
	}
}

// readEvents reads a server-sent event stream and calls on for each
// event until it returns false or the stream ends.
func readEvents(r io.Reader, on func(event string, data []byte) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 32<<20)
	var event string
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() > 0 {
				if !on(first(event, "message"), bytes.TrimSuffix(data.Bytes(), []byte("\n"))) {
					return nil
				}
			}
			event = ""
			data.Reset()
		case strings.HasPrefix(line, ":"):
			// a keep-alive comment
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				event = value
			case "data":
				data.WriteString(value)
				data.WriteByte('\n')
			}
		}
	}
	return sc.Err()
}
