// Package client is the one way a Slipway process dials another's gRPC API:
// tracing (otelgrpc stats handler), request id and caller identity
// forwarding, and round-robin balancing over every address the target
// resolves to (several replicas behind one DNS name, or a comma-separated
// list of addresses).
package client

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/requestid"
)

// serviceConfig balances over all resolved addresses and retries calls that
// never reached a server.
const serviceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [{}],
    "retryPolicy": {
      "maxAttempts": 3,
      "initialBackoff": "0.1s",
      "maxBackoff": "1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// Config configures a client connection.
type Config struct {
	TracerProvider trace.TracerProvider
}

// reconnect is how a connection comes back after its server went away or
// was not up yet. gRPC's default backoff grows to two minutes: a service
// started a few seconds after its callers (every process of a stack starts
// at once) would then be refused for as long again, and a replica restarted
// after a crash would wait minutes for traffic. Inside the platform a retry
// each second at most is cheap.
var reconnect = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
	MinConnectTimeout: 5 * time.Second,
}

// listScheme names the per-connection resolver that serves a fixed list of
// addresses.
const listScheme = "slipway-list"

// Dial returns a connection to target: "host:port", "dns:///name:port", or
// several replicas as "host:port,host:port" (balanced round-robin; a replica
// that stops answering is skipped). Connections are lazy: Dial does not wait
// for the server.
func Dial(target string, cfg Config, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	dialTarget, extra, err := listTarget(target)
	if err != nil {
		return nil, err
	}
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(cfg.TracerProvider))),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithConnectParams(reconnect),
		grpc.WithChainUnaryInterceptor(unaryRequestID, identity.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(streamRequestID, identity.StreamClientInterceptor()),
	}
	base = append(base, extra...)
	conn, err := grpc.NewClient(dialTarget, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	return conn, nil
}

// listTarget turns "a:1,b:2" into a target served by a manual resolver
// holding both addresses; other targets pass through unchanged.
func listTarget(target string) (string, []grpc.DialOption, error) {
	if !strings.Contains(target, ",") {
		return target, nil, nil
	}
	var addrs []resolver.Address
	for _, a := range strings.Split(target, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			return "", nil, fmt.Errorf("dial %s: empty address in list", target)
		}
		addrs = append(addrs, resolver.Address{Addr: a})
	}
	r := manual.NewBuilderWithScheme(listScheme)
	r.InitialState(resolver.State{Addresses: addrs})
	return listScheme + ":///replicas", []grpc.DialOption{grpc.WithResolvers(r)}, nil
}

func withRequestID(ctx context.Context) context.Context {
	id := requestid.FromContext(ctx)
	if id == "" {
		return ctx
	}
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get(requestid.MetadataKey)) > 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, requestid.MetadataKey, id)
}

func unaryRequestID(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(withRequestID(ctx), method, req, reply, cc, opts...)
}

func streamRequestID(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(withRequestID(ctx), desc, cc, method, opts...)
}
