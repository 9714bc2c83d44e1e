package edge

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/slipwayhq/slipway/pkg/grpcerr"
	"github.com/slipwayhq/slipway/pkg/validate"
)

// IdempotencyKeyHeader makes a retried call that starts an operation safe:
// the edge copies it into the request's idempotency_key field.
const IdempotencyKeyHeader = "Idempotency-Key"

// maxIdempotencyKeyLen bounds the Idempotency-Key header.
const maxIdempotencyKeyLen = 255

// idempotencyKeyField is the request field the header fills.
const idempotencyKeyField protoreflect.Name = "idempotency_key"

type idempotencyKeyCtx struct{}

// idempotencyKey returns a request's Idempotency-Key, "" when it has none:
// one header of 1 to 255 printable ASCII characters.
func idempotencyKey(h http.Header) (string, error) {
	vs := h.Values(IdempotencyKeyHeader)
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		return "", errors.New("must be given once")
	case vs[0] == "":
		return "", errors.New("must not be empty")
	case len(vs[0]) > maxIdempotencyKeyLen:
		return "", fmt.Errorf("must be at most %d characters", maxIdempotencyKeyLen)
	}
	for i := range len(vs[0]) {
		if c := vs[0][i]; c < 0x20 || c > 0x7e {
			return "", errors.New("must be printable ASCII")
		}
	}
	return vs[0], nil
}

// withIdempotencyKey returns ctx carrying the request's Idempotency-Key
// to the services' connections (see idempotentConn).
func withIdempotencyKey(ctx context.Context, key string) context.Context {
	if key == "" {
		return ctx
	}
	return context.WithValue(ctx, idempotencyKeyCtx{}, key)
}

// idempotentConn fills the idempotency_key field of every request message
// that has one from the call's Idempotency-Key header, so that a service
// reads the key in one place whichever way the caller gave it. A request
// that already holds another key (in its body or query) is refused with
// INVALID_ARGUMENT before it reaches the service. Requests without the
// field are sent as they are.
type idempotentConn struct{ grpc.ClientConnInterface }

func (c idempotentConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	if key, ok := ctx.Value(idempotencyKeyCtx{}).(string); ok {
		if m, ok := args.(proto.Message); ok {
			if err := fillIdempotencyKey(m.ProtoReflect(), key); err != nil {
				return err
			}
		}
	}
	return c.ClientConnInterface.Invoke(ctx, method, args, reply, opts...)
}

func fillIdempotencyKey(m protoreflect.Message, key string) error {
	f := m.Descriptor().Fields().ByName(idempotencyKeyField)
	if f == nil || f.Kind() != protoreflect.StringKind || f.Cardinality() == protoreflect.Repeated {
		return nil
	}
	switch cur := m.Get(f).String(); cur {
	case "":
		m.Set(f, protoreflect.ValueOfString(key))
	case key:
	default:
		return grpcerr.FieldViolation(&validate.FieldError{Field: string(idempotencyKeyField),
			Reason: "differs from the " + IdempotencyKeyHeader + " header; give the key once, or the same in both"})
	}
	return nil
}
