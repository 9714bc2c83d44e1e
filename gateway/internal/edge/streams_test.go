package edge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/slipwayhq/slipway/pkg/identity"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

const watchOperationPath = "/api/v1/orgs/acme/operations/" + fakeOperationID + ":watch"

// streamRoutes are the streaming routes, each with three messages of its
// RPC to send.
var streamRoutes = []struct {
	name string
	path string
	msgs func(i int) proto.Message
}{
	{"WatchOperation", watchOperationPath, func(i int) proto.Message {
		return &releasesv1.WatchOperationResponse{Operation: &releasesv1.Operation{
			Id: fakeOperationID, Org: "acme", State: releasesv1.OperationState(i + 1),
			Events: []*releasesv1.OperationEvent{{Phase: "queued", Message: fmt.Sprintf("snapshot %d", i)}},
		}}
	}},
	{"WatchDeploymentStatus", deploymentPath + "/status:watch", func(i int) proto.Message {
		return &releasesv1.WatchDeploymentStatusResponse{Status: &releasesv1.DeploymentStatus{Message: fmt.Sprintf("status %d", i), WorkloadCount: int32(i)}}
	}},
	{"GetDeploymentLogs", deploymentPath + "/logs?follow=true", func(i int) proto.Message {
		return &releasesv1.GetDeploymentLogsResponse{Lines: []*releasesv1.LogLine{{Pod: "web-0", Line: fmt.Sprintf("line %d\nwith a newline", i)}}}
	}},
}

// sseEvent is one server-sent event, or one comment.
type sseEvent struct {
	name, data, comment string
}

// openStream GETs path as the owner of acme, with accept as the Accept
// header unless it is empty, and returns the answer unread; cancel drops
// the connection.
func openStream(t *testing.T, h *harness, path, accept string) (resp *http.Response, cancel func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.owner)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err = h.srv.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = resp.Body.Close() })
	return resp, cancel
}

// readEvent reads the next event or comment; io.EOF at the end.
func readEvent(br *bufio.Reader) (sseEvent, error) {
	var ev sseEvent
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err == io.EOF && line == "" && ev == (sseEvent{}) && data == nil {
				return ev, io.EOF
			}
			return ev, fmt.Errorf("read event: %w (partial line %q)", err, line)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			ev.data = strings.Join(data, "\n")
			return ev, nil
		case strings.HasPrefix(line, ":"):
			ev.comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "event: "):
			ev.name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[len("data: "):])
		default:
			return ev, fmt.Errorf("unexpected line %q", line)
		}
	}
}

func mustReadEvent(t *testing.T, br *bufio.Reader) sseEvent {
	t.Helper()
	ev, err := readEvent(br)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func wantEnd(t *testing.T, br *bufio.Reader) {
	t.Helper()
	if ev, err := readEvent(br); err != io.EOF {
		t.Fatalf("after the last event: %+v, %v; want the end", ev, err)
	}
}

// checkMessage fails t unless data is the JSON of want.
func checkMessage(t *testing.T, data string, want proto.Message) {
	t.Helper()
	got := want.ProtoReflect().New().Interface()
	if err := protojson.Unmarshal([]byte(data), got); err != nil {
		t.Fatalf("event data %q: %v", data, err)
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("event data (-want +got):\n%s", diff)
	}
}

func TestEventStreamSendsEachMessageAsItComes(t *testing.T) {
	for _, rt := range streamRoutes {
		t.Run(rt.name, func(t *testing.T) {
			// The first message goes at once: the answer starts with it.
			gate := make(chan struct{}, 1)
			gate <- struct{}{}
			f := &fakeReleases{stream: fakeStream{gate: gate, ended: make(chan error, 1)}}
			for i := range 3 {
				f.stream.msgs = append(f.stream.msgs, rt.msgs(i))
			}
			h := newHarness(t, harnessOptions{releases: f})
			resp, _ := openStream(t, h, rt.path, "text/event-stream")
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != EventStreamMediaType {
				t.Fatalf("status %d Content-Type %q, want 200 %s", resp.StatusCode, resp.Header.Get("Content-Type"), EventStreamMediaType)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("Cache-Control = %q", cc)
			}
			br := bufio.NewReader(resp.Body)
			// The service sends each message only once the one before
			// has arrived: an event held back in a buffer would hang here.
			for i, want := range f.stream.msgs {
				if i > 0 {
					gate <- struct{}{}
				}
				ev := mustReadEvent(t, br)
				if ev.name != "" || ev.comment != "" {
					t.Errorf("event %d: %+v, want a message event", i, ev)
				}
				checkMessage(t, ev.data, want)
			}
			wantEnd(t, br)
			if err := <-f.stream.ended; err != nil {
				t.Errorf("the RPC ended with context error %v, want none", err)
			}
			f.mu.Lock()
			md := f.streamMD
			f.mu.Unlock()
			if len(md.Get(identity.MetadataKey)) != 1 || len(md.Get("x-request-id")) != 1 || len(md.Get("authorization")) != 0 {
				t.Errorf("the RPC got metadata %v, want the identity and request id, no credentials", md)
			}
		})
	}
}

func TestEventStreamCancelsTheRPCWhenTheClientGoes(t *testing.T) {
	f := &fakeReleases{stream: fakeStream{msgs: []proto.Message{streamRoutes[0].msgs(0)}, hold: true, ended: make(chan error, 1)}}
	h := newHarness(t, harnessOptions{releases: f})
	resp, cancel := openStream(t, h, watchOperationPath, "text/event-stream")
	checkMessage(t, mustReadEvent(t, bufio.NewReader(resp.Body)).data, f.stream.msgs[0])
	cancel()
	select {
	case err := <-f.stream.ended:
		if status.Code(err) != codes.Canceled && !errors.Is(err, context.Canceled) {
			t.Errorf("the RPC ended with %v, want it cancelled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the RPC still runs after the client went away")
	}
}

func TestEventStreamErrors(t *testing.T) {
	locked := status.Error(codes.Aborted, "another operation holds the release")

	t.Run("mid-stream: an error event, then the end", func(t *testing.T) {
		msg := streamRoutes[0].msgs(0)
		h := newHarness(t, harnessOptions{releases: &fakeReleases{stream: fakeStream{msgs: []proto.Message{msg}, err: locked}}})
		resp, _ := openStream(t, h, watchOperationPath, "text/event-stream")
		br := bufio.NewReader(resp.Body)
		checkMessage(t, mustReadEvent(t, br).data, msg)
		ev := mustReadEvent(t, br)
		var p Problem
		if err := json.Unmarshal([]byte(ev.data), &p); err != nil || ev.name != "error" {
			t.Fatalf("event %+v (%v), want an error event holding a problem", ev, err)
		}
		if p.Status != http.StatusConflict || p.Code != "aborted" || p.Detail != "another operation holds the release" || p.Type != ProblemTypeBase+"aborted" {
			t.Errorf("problem %+v", p)
		}
		wantEnd(t, br)
	})

	t.Run("internals stay hidden", func(t *testing.T) {
		msg := streamRoutes[0].msgs(0)
		h := newHarness(t, harnessOptions{releases: &fakeReleases{stream: fakeStream{msgs: []proto.Message{msg}, err: errors.New("secret detail")}}})
		resp, _ := openStream(t, h, watchOperationPath, "text/event-stream")
		b, _ := io.ReadAll(resp.Body)
		if strings.Contains(string(b), "secret detail") || !strings.Contains(string(b), `"code":"internal"`) {
			t.Errorf("stream %s", b)
		}
	})

	for _, accept := range []string{"text/event-stream", "application/json", ""} {
		t.Run("before the first message: a problem; Accept "+accept, func(t *testing.T) {
			h := newHarness(t, harnessOptions{releases: &fakeReleases{stream: fakeStream{err: status.Error(codes.NotFound, "operation not found")}}})
			resp, _ := openStream(t, h, watchOperationPath, accept)
			b, _ := io.ReadAll(resp.Body)
			r := response{status: resp.StatusCode, header: resp.Header, body: b}
			if p := r.problem(t); r.status != http.StatusNotFound || p.Code != "not_found" || p.Detail != "operation not found" {
				t.Errorf("status %d problem %+v", r.status, p)
			}
		})
	}

	t.Run("a stream of no messages is empty", func(t *testing.T) {
		h := newHarness(t, harnessOptions{releases: &fakeReleases{}})
		resp, _ := openStream(t, h, watchOperationPath, "text/event-stream")
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != EventStreamMediaType || len(b) != 0 {
			t.Errorf("status %d Content-Type %q body %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	})
}

func TestEventStreamKeepAlive(t *testing.T) {
	// A silent stream starts with the first keep-alive comment, and gets
	// another after each silence.
	f := &fakeReleases{stream: fakeStream{hold: true}}
	h := newHarness(t, harnessOptions{releases: f, keepAlive: 10 * time.Millisecond})
	resp, _ := openStream(t, h, deploymentPath+"/logs?follow=true", "text/event-stream")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != EventStreamMediaType {
		t.Fatalf("status %d Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	for range 2 {
		if ev := mustReadEvent(t, br); ev != (sseEvent{comment: "keep-alive"}) {
			t.Fatalf("event %+v, want a keep-alive comment", ev)
		}
	}
}

func TestEventStreamOutlivesTheServerWriteTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	gate := make(chan struct{}, 1)
	f := &fakeReleases{stream: fakeStream{gate: gate, msgs: []proto.Message{streamRoutes[0].msgs(0), streamRoutes[0].msgs(1)}}}
	h := newHarness(t, harnessOptions{releases: f, writeTimeout: timeout})
	for _, accept := range []string{"text/event-stream", ""} {
		gate <- struct{}{}
		resp, _ := openStream(t, h, watchOperationPath, accept)
		br := bufio.NewReader(resp.Body)
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		// Not a timing assertion: the second message must come after the
		// server's write deadline would have passed.
		<-time.After(3 * timeout)
		gate <- struct{}{}
		rest, err := io.ReadAll(br)
		if err != nil || !strings.Contains(string(rest), "OPERATION_STATE_RUNNING") {
			t.Errorf("Accept %q: after the write timeout: %q, %v; want the second message", accept, rest, err)
		}
	}
}

func TestStreamWithoutEventStreamIsNewlineDelimitedJSON(t *testing.T) {
	rt := streamRoutes[2]
	f := &fakeReleases{stream: fakeStream{msgs: []proto.Message{rt.msgs(0), rt.msgs(1)}, err: status.Error(codes.Unavailable, "cluster unreachable")}}
	h := newHarness(t, harnessOptions{releases: f})
	resp, _ := openStream(t, h, deploymentPath+"/logs?follow=true&tail_lines=5&namespace=shop&container=app", "")
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d Content-Type %q: %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("body %q, want three lines", b)
	}
	for i, line := range lines[:2] {
		var chunk struct{ Result json.RawMessage }
		if err := json.Unmarshal([]byte(line), &chunk); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		checkMessage(t, string(chunk.Result), f.stream.msgs[i])
	}
	var last struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(lines[2]), &last); err != nil || last.Error.Code != int(codes.Unavailable) || last.Error.Message != "cluster unreachable" {
		t.Errorf("last line %q (%v), want grpc-gateway's error chunk", lines[2], err)
	}

	// The request is decoded as the generated handler would.
	want := &releasesv1.GetDeploymentLogsRequest{Org: "acme", Cluster: "prod", Name: "web", Namespace: "shop", Container: "app", TailLines: 5, Follow: true}
	if diff := cmp.Diff(want, f.requests()[0], protocmp.Transform()); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
}

func TestStreamRoutesCoverEveryStreamingRPC(t *testing.T) {
	covered := map[string]bool{}
	for _, rt := range streamRoutes {
		covered[rt.name] = true
	}
	for _, fd := range []protoreflect.FileDescriptor{releasesv1.File_slipway_releases_v1_releases_proto, releasesv1.File_slipway_releases_v1_operations_proto} {
		for i := range fd.Services().Len() {
			methods := fd.Services().Get(i).Methods()
			for j := range methods.Len() {
				if m := methods.Get(j); m.IsStreamingServer() && !covered[string(m.Name())] {
					t.Errorf("%s streams but streamRoutes does not test it", m.FullName())
				}
			}
		}
	}
}

func TestAcceptsEventStream(t *testing.T) {
	for accept, want := range map[string]bool{
		"text/event-stream":                         true,
		"TEXT/Event-Stream":                         true,
		"application/json, text/event-stream;q=0.9": true,
		"text/event-stream; charset=utf-8":          true,
		"":                                          false,
		"application/json":                          false,
		"*/*":                                       false,
		"text/event-streamx":                        false,
	} {
		r := httptest.NewRequest(http.MethodGet, watchOperationPath, nil)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		if got := acceptsEventStream(r); got != want {
			t.Errorf("Accept %q: %v, want %v", accept, got, want)
		}
	}
}
