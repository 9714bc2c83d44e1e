package requestid

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
)

func TestSanitize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		keep bool // true: Sanitize returns in; false: a fresh id
	}{
		{name: "hex id", in: "0123456789abcdef0123456789abcdef", keep: true},
		{name: "uuid", in: "6f1c8c5e-2b1a-4c1e-9a59-3f7f2d6b8e10", keep: true},
		{name: "printable punctuation", in: "req/42:a=b&c~!", keep: true},
		{name: "lowest printable", in: "!", keep: true},
		{name: "highest printable", in: "~", keep: true},
		{name: "max length", in: strings.Repeat("a", maxLen), keep: true},
		{name: "empty", in: ""},
		{name: "too long", in: strings.Repeat("a", maxLen+1)},
		{name: "space", in: "has space"},
		{name: "tab", in: "a\tb"},
		{name: "newline (log injection)", in: "a\nlevel=error"},
		{name: "nul", in: "a\x00b"},
		{name: "del", in: "a\x7fb"},
		{name: "non-ascii", in: "café"},
		{name: "invalid utf-8", in: "a\xffb"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Sanitize(tc.in)
			if tc.keep {
				if got != tc.in {
					t.Fatalf("Sanitize(%q) = %q, want it kept", tc.in, got)
				}
				return
			}
			if got == tc.in {
				t.Fatalf("Sanitize(%q) kept the id, want a fresh one", tc.in)
			}
			if !isFresh(got) {
				t.Fatalf("Sanitize(%q) = %q, want a fresh 32-hex-digit id", tc.in, got)
			}
		})
	}
}

func TestNew(t *testing.T) {
	a, b := New(), New()
	if !isFresh(a) || !isFresh(b) {
		t.Fatalf("New() = %q, %q; want 32 hex digits", a, b)
	}
	if a == b {
		t.Fatalf("New() returned %q twice", a)
	}
	if Sanitize(a) != a {
		t.Errorf("Sanitize(New()) replaced a generated id")
	}
}

func TestContext(t *testing.T) {
	if got := FromContext(context.Background()); got != "" {
		t.Errorf("FromContext(empty) = %q, want \"\"", got)
	}
	ctx := NewContext(context.Background(), "r1")
	if got := FromContext(ctx); got != "r1" {
		t.Errorf("FromContext = %q, want r1", got)
	}
	// A plain string key must not collide with the typed key.
	ctx = context.WithValue(context.Background(), MetadataKey, "spoofed")
	if got := FromContext(ctx); got != "" {
		t.Errorf("FromContext read a string-keyed value %q", got)
	}
}

func isFresh(id string) bool {
	b, err := hex.DecodeString(id)
	return err == nil && len(b) == 16
}
