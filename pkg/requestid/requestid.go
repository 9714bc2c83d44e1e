// Package requestid carries the id of the request being served, from the REST
// edge through every gRPC hop, so logs of one request can be found together.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
)

// MetadataKey is the gRPC metadata (and HTTP header, case-insensitively) key
// that carries the request id between processes.
const MetadataKey = "x-request-id"

// maxLen bounds ids taken from callers, so a client cannot bloat every log line.
const maxLen = 128

type ctxKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the request id in ctx, or "".
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// New returns a fresh random request id.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return hex.EncodeToString(b[:])
}

// Sanitize returns id if it is a usable request id from a caller (printable
// ASCII, bounded length), or a fresh one otherwise.
func Sanitize(id string) string {
	if id == "" || len(id) > maxLen {
		return New()
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return New()
		}
	}
	return id
}
