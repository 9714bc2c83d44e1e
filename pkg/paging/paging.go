// Package paging implements the page_size / page_token contract of every
// Slipway list RPC.
//
// A page token is opaque to callers: the key of the last item returned plus a
// fingerprint of the query's filters, so a token can only continue the query
// that produced it. Lists are keyset-paginated on that key, never by offset.
package paging

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/slipwayhq/slipway/pkg/validate"
)

const (
	// DefaultSize is the page size when the caller sets none.
	DefaultSize = 50
	// MaxSize is the largest page a caller may ask for.
	MaxSize = 500
	// maxTokenLen bounds what is decoded from a caller.
	maxTokenLen = 1024
)

// Size returns the page size to use for a requested size.
func Size(requested int32) (int, error) {
	switch {
	case requested < 0:
		return 0, validate.Field("page_size", "must not be negative, got %d", requested)
	case requested == 0:
		return DefaultSize, nil
	case requested > MaxSize:
		return MaxSize, nil
	}
	return int(requested), nil
}

type token struct {
	After  string `json:"a"`
	Filter string `json:"f"`
}

// Fingerprint summarises a query's filters for binding tokens to them.
func Fingerprint(filters ...string) string {
	h := sha256.Sum256([]byte(strings.Join(filters, "\x00")))
	return base64.RawURLEncoding.EncodeToString(h[:9])
}

// Encode returns the token that continues a query after key.
func Encode(after, fingerprint string) string {
	b, _ := json.Marshal(token{After: after, Filter: fingerprint}) // strings always marshal
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode returns the key a token continues after; "" for the empty token.
// A token that is malformed or was issued for other filters is an
// InvalidArgument on page_token.
func Decode(tok, fingerprint string) (string, error) {
	if tok == "" {
		return "", nil
	}
	bad := validate.Field("page_token", "is not a token returned by this query; start again without it")
	if len(tok) > maxTokenLen {
		return "", bad
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", bad
	}
	var t token
	if err := json.Unmarshal(b, &t); err != nil || t.After == "" || t.Filter != fingerprint {
		return "", bad
	}
	return t.After, nil
}
