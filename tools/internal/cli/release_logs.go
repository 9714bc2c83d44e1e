package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

type logsFlags struct {
	pod, container string
	tail           int
	since          time.Duration
	follow         bool
}

func (a *app) releaseLogsCmd() *cobra.Command {
	var rf releaseFlags
	var lf logsFlags
	cmd := &cobra.Command{
		Use:   "logs NAME --cluster C [-n NS] [-f] [--pod P] [--container C] [--tail N] [--since DUR]",
		Short: "Print the container logs of a release's pods",
		Long: `Print the logs of the release's pods, each line as "pod/container: line":
the last --tail lines of every container (100 by default), or of one --pod
and --container. With -f, keep printing new lines until Ctrl-C or the
server ends the stream. -o json prints each line's object, one a line.`,
		Example: `  slipway release logs web -c prod -n web --tail 20
  slipway release logs web -c prod -n web -f --container app --since 10m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, cluster, err := a.releaseClient(&rf)
			if err != nil {
				return err
			}
			q := url.Values(nsQuery(rf.namespace, 0))
			if lf.pod != "" {
				q.Set("pod", lf.pod)
			}
			if lf.container != "" {
				q.Set("container", lf.container)
			}
			if lf.tail > 0 {
				q.Set("tail_lines", strconv.Itoa(lf.tail))
			}
			if lf.since > 0 {
				q.Set("since", strconv.FormatFloat(lf.since.Seconds(), 'f', -1, 64)+"s")
			}
			if lf.follow {
				q.Set("follow", "true")
			}
			return c.logs(cmd.Context(), org, cluster, args[0], q, lf.follow, a.printLogLine)
		},
	}
	rf.add(cmd, a)
	f := cmd.Flags()
	f.BoolVarP(&lf.follow, "follow", "f", false, "keep printing new lines until Ctrl-C")
	f.StringVar(&lf.pod, "pod", "", "only this pod of the release")
	f.StringVar(&lf.container, "container", "", "only this container")
	f.IntVar(&lf.tail, "tail", 0, "lines per container to start with, from the end (default 100, at most 5000)")
	f.DurationVar(&lf.since, "since", 0, "only lines written within this long (e.g. 10m)")
	return cmd
}

func (a *app) printLogLine(l *releasesv1.LogLine, raw []byte) error {
	if a.structured() {
		b, err := marshalOpts.Marshal(l)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.env.Stdout, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintf(a.env.Stdout, "%s/%s: %s\n", l.GetPod(), l.GetContainer(), l.GetLine())
	return err
}

// logs reads the release's log lines and calls on for each: the
// newline-delimited JSON of a plain request, or, when following, the
// server-sent events (one line an event).
func (c *client) logs(ctx context.Context, org, cluster, name string, q url.Values, follow bool, on func(*releasesv1.LogLine, []byte) error) error {
	resp, err := c.openStream(ctx, "ReleasesService_GetDeploymentLogs", []string{org, cluster, name}, q, follow)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	var cbErr error
	handle := func(data []byte) bool {
		lines, err := decodeLogs(data)
		if err != nil {
			cbErr = err
			return false
		}
		for _, l := range lines {
			if cbErr = on(l, data); cbErr != nil {
				return false
			}
		}
		return true
	}
	if follow {
		err = readEvents(resp.Body, func(event string, data []byte) bool {
			if event == "error" {
				cbErr = problemFrom(http.StatusInternalServerError, http.Header{"Content-Type": {"application/problem+json"}}, data)
				return false
			}
			return handle(data)
		})
	} else {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 32<<20)
		for sc.Scan() {
			if len(bytes.TrimSpace(sc.Bytes())) > 0 && !handle(sc.Bytes()) {
				break
			}
		}
		err = sc.Err()
	}
	if cbErr != nil {
		return cbErr
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("read logs: %w", err)
	}
	return nil
}

// decodeLogs reads one message of the logs stream: a batch of lines, a
// single line, either perhaps in the gateway's {"result": ...} or
// {"error": ...} envelope.
func decodeLogs(data []byte) ([]*releasesv1.LogLine, error) {
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	if len(env.Error) > 0 {
		return nil, problemFrom(http.StatusInternalServerError, http.Header{"Content-Type": {"application/problem+json"}}, env.Error)
	}
	data = unwrapResult(data)
	batch := &releasesv1.GetDeploymentLogsResponse{}
	if err := unmarshalOpts.Unmarshal(data, batch); err == nil && len(batch.GetLines()) > 0 {
		return batch.GetLines(), nil
	}
	line := &releasesv1.LogLine{}
	if err := unmarshalOpts.Unmarshal(data, line); err != nil {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	if line.GetLine() == "" && line.GetPod() == "" {
		return nil, nil
	}
	return []*releasesv1.LogLine{line}, nil
}

// openStream sends a GET of a streamed route (server-sent events when sse)
// and returns the response when it is 200, its problem otherwise.
func (c *client) openStream(ctx context.Context, op string, params []string, q url.Values, sse bool) (*http.Response, error) {
	_, path, err := routePath(op, params...)
	if err != nil {
		return nil, err
	}
	u := c.server + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	c.headers(req)
	if sse {
		req.Header.Set("Accept", "text/event-stream")
	}
	resp, err := c.stream.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, problemFrom(resp.StatusCode, resp.Header, b)
	}
	return resp, nil
}

// unwrapResult returns the message of the gateway's {"result": ...}
// envelope of a streamed answer, or data when it has none.
func unwrapResult(data []byte) []byte {
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	if json.Unmarshal(data, &env) == nil && len(env.Result) > 0 {
		return env.Result
	}
	return data
}
