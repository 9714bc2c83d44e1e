package oidc

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestLimitedBody(t *testing.T) {
	const limit = 8
	tests := []struct {
		name    string
		size    int
		wantErr error
	}{
		{name: "empty", size: 0},
		{name: "under the limit", size: limit - 1},
		{name: "at the limit", size: limit},
		{name: "one past the limit", size: limit + 1, wantErr: errResponseTooLarge},
		{name: "far past the limit", size: 10 * limit, wantErr: errResponseTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Repeat("x", tc.size)
			got, err := io.ReadAll(&limitedBody{ReadCloser: io.NopCloser(strings.NewReader(body)), left: limit})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ReadAll error = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && string(got) != body {
				t.Errorf("ReadAll = %q, want %q", got, body)
			}
			if len(got) > limit {
				t.Errorf("read %d bytes, past the limit of %d", len(got), limit)
			}
		})
	}
}
