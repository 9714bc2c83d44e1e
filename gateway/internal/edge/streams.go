package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// EventStreamMediaType is the Accept that turns a streaming route's answer
// into server-sent events.
const EventStreamMediaType = "text/event-stream"

// DefaultStreamKeepAlive is how long an event stream stays silent before
// the edge writes a comment, so that proxies and clients keep it open.
const DefaultStreamKeepAlive = 15 * time.Second

// registerStreams serves the server-streaming GET routes of a service
// itself, in place of their generated handlers (the mux tries the routes
// registered last first), so that a route answers server-sent events to
// a client that accepts them and grpc-gateway's newline-delimited JSON to
// any other. Either way an error before the first message is an ordinary
// problem response.
func (e *edge) registerStreams(mux *runtime.ServeMux, service string, cc grpc.ClientConnInterface) error {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return fmt.Errorf("find service %s: %w", service, err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return fmt.Errorf("%s is not a service", service)
	}
	methods := sd.Methods()
	for i := range methods.Len() {
		m := methods.Get(i)
		rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
		if !m.IsStreamingServer() || m.IsStreamingClient() || rule.GetGet() == "" {
			continue
		}
		in, err := protoregistry.GlobalTypes.FindMessageByName(m.Input().FullName())
		if err != nil {
			return fmt.Errorf("find %s: %w", m.Input().FullName(), err)
		}
		out, err := protoregistry.GlobalTypes.FindMessageByName(m.Output().FullName())
		if err != nil {
			return fmt.Errorf("find %s: %w", m.Output().FullName(), err)
		}
		s := &stream{
			edge: e, mux: mux, cc: cc, pattern: rule.GetGet(),
			rpc: "/" + service + "/" + string(m.Name()), in: in, out: out,
		}
		if err := mux.HandlePath(http.MethodGet, s.pattern, s.serve); err != nil {
			return fmt.Errorf("route %s: %w", s.rpc, err)
		}
	}
	return nil
}

// stream is one server-streaming route.
type stream struct {
	edge    *edge
	mux     *runtime.ServeMux
	cc      grpc.ClientConnInterface
	rpc     string // "/slipway.releases.v1.OperationsService/WatchOperation"
	pattern string // "/api/v1/orgs/{org}/operations/{operation}:watch"
	in, out protoreflect.MessageType
}

func (s *stream) serve(w http.ResponseWriter, r *http.Request, params map[string]string) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	_, marshaler := runtime.MarshalerForRequest(s.mux, r)
	actx, err := runtime.AnnotateContext(ctx, s.mux, r, s.rpc, runtime.WithHTTPPathPattern(s.pattern))
	if err != nil {
		runtime.HTTPError(ctx, s.mux, marshaler, w, r, err)
		return
	}
	ctx = actx
	// A stream lasts as long as its RPC: no server-wide read or write
	// timeout may cut it. (A ResponseWriter without deadlines has none.)
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})

	recv, err := s.open(ctx, r, params)
	if err != nil {
		runtime.HTTPError(ctx, s.mux, marshaler, w, r, err)
		return
	}
	fail := func(err error) { runtime.HTTPError(ctx, s.mux, marshaler, w, r, err) }
	if acceptsEventStream(r) {
		s.edge.serveEvents(ctx, w, recv, fail)
		return
	}
	first, err := recv()
	if err != nil && !errors.Is(err, io.EOF) {
		fail(err)
		return
	}
	// grpc-gateway's framing, without the mux's response options: they
	// shape unary answers (202, HEAD headers).
	replayed := false
	runtime.ForwardResponseStream(runtime.NewServerMetadataContext(ctx, runtime.ServerMetadata{}), s.mux, marshaler, w, r,
		func() (proto.Message, error) {
			if !replayed {
				replayed = true
				return first, err
			}
			return recv()
		})
}

// open decodes the request the way the generated handlers do (path
// parameters, then the other fields from the query) and starts the RPC.
func (s *stream) open(ctx context.Context, r *http.Request, params map[string]string) (func() (proto.Message, error), error) {
	req := s.in.New().Interface()
	var bound [][]string
	for name, v := range params {
		if err := runtime.PopulateFieldFromPath(req, name, v); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "parameter %s: %v", name, err)
		}
		bound = append(bound, strings.Split(name, "."))
	}
	if err := runtime.PopulateQueryParameters(req, r.URL.Query(), utilities.NewDoubleArray(bound)); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	cs, err := s.cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, s.rpc)
	if err != nil {
		return nil, err
	}
	if err := cs.SendMsg(req); err != nil {
		return nil, err
	}
	if err := cs.CloseSend(); err != nil {
		return nil, err
	}
	return func() (proto.Message, error) {
		m := s.out.New().Interface()
		if err := cs.RecvMsg(m); err != nil {
			return nil, err
		}
		return m, nil
	}, nil
}

// acceptsEventStream reports whether the client asked for server-sent
// events.
func acceptsEventStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == EventStreamMediaType {
				return true
			}
		}
	}
	return false
}

// serveEvents answers a stream as server-sent events: one event per
// message, its data the message's JSON, flushed at once; a comment after
// every keep-alive interval of silence; and, should the RPC fail, an
// "error" event holding the problem, then the end. The response starts
// with the first message or the first comment: an error before it is
// answered by fail, as an ordinary problem. It returns when the RPC ends
// or the client goes away, which cancels the RPC.
func (e *edge) serveEvents(ctx context.Context, w http.ResponseWriter, recv func() (proto.Message, error), fail func(error)) {
	ctx, cancel := context.WithCancel(ctx)
	type result struct {
		msg proto.Message
		err error
	}
	results := make(chan result)
	received := make(chan struct{})
	go func() {
		defer close(received)
		for {
			m, err := recv()
			select {
			case results <- result{m, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		cancel()
		<-received
	}()

	rc := http.NewResponseController(w)
	started := false
	start := func() {
		started = true
		h := w.Header()
		h.Set("Content-Type", EventStreamMediaType)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
		w.WriteHeader(http.StatusOK)
	}
	write := func(b []byte) bool {
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	keepAlive := time.NewTicker(e.keepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-keepAlive.C:
			if !started {
				start()
			}
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		case res := <-results:
			var data []byte
			err := res.err
			if err == nil {
				if data, err = e.json.Marshal(res.msg); err != nil {
					e.cfg.Log.ErrorContext(ctx, "encode stream message failed", "error", err)
					err = status.Error(codes.Internal, "internal error")
				}
			}
			switch {
			case errors.Is(err, io.EOF):
				if !started {
					start()
					_ = rc.Flush()
				}
				return
			case err != nil && !started:
				fail(err)
				return
			case err != nil:
				p, _ := json.Marshal(problemFromStatus(ctx, publicStatus(err)).withDefaults())
				write(event("error", p))
				return
			}
			if !started {
				start()
			}
			if !write(event("", data)) {
				return
			}
			keepAlive.Reset(e.keepAlive)
		}
	}
}

// event renders one server-sent event; data may span lines.
func event(name string, data []byte) []byte {
	var b bytes.Buffer
	if name != "" {
		b.WriteString("event: " + name + "\n")
	}
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(line)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return b.Bytes()
}
