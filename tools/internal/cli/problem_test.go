package cli

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestFormatProblem(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   string
	}{
		{
			name: "problem with fields", status: 400, header: http.Header{"Content-Type": {"application/problem+json"}},
			body: `{"type":"https://slipway.dev/problems/invalid_argument","title":"Bad Request","status":400,"detail":"invalid application","code":"invalid_argument","request_id":"r-1","errors":[{"field":"targets[0].cluster","description":"no such cluster"},{"field":"","description":"whole request"}]}`,
			want: "Error: Bad Request: invalid application\n  - targets[0].cluster: no such cluster\n  - (request): whole request\n  code: invalid_argument (HTTP 400)\n  request id: r-1\n",
		},
		{
			name: "conflict", status: 409, header: http.Header{"Content-Type": {"application/problem+json"}, "X-Request-Id": {"r-2"}},
			body: `{"title":"Conflict","status":409,"detail":"image already exists: api version 1.0.0 is immutable","code":"already_exists"}`,
			want: "Error: Conflict: image already exists: api version 1.0.0 is immutable\n  code: already_exists (HTTP 409)\n  request id: r-2\n",
		},
		{
			name: "rate limited", status: 429, header: http.Header{"Content-Type": {"application/problem+json"}, "Retry-After": {"3"}},
			body: `{"title":"Too Many Requests","status":429,"code":"resource_exhausted"}`,
			want: "Error: Too Many Requests\n  code: resource_exhausted (HTTP 429)\n  retry after: 3s\n",
		},
		{
			name: "not Slipway's answer", status: 502, header: http.Header{"Content-Type": {"text/html"}},
			body: "<html>bad gateway</html>",
			want: "Error: Bad Gateway: <html>bad gateway</html>\n  code: - (HTTP 502)\n",
		},
		{
			name: "empty body", status: 404, header: http.Header{},
			want: "Error: Not Found\n  code: - (HTTP 404)\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := problemFrom(tc.status, tc.header, []byte(tc.body))
			var b strings.Builder
			printError(&b, fmt.Errorf("wrapped: %w", p))
			if b.String() != tc.want {
				t.Errorf("printed:\n%s\nwant:\n%s", b.String(), tc.want)
			}
		})
	}
}

func TestPrintPlainError(t *testing.T) {
	var b strings.Builder
	printError(&b, errors.New("no Slipway server"))
	if b.String() != "Error: no Slipway server\n" {
		t.Errorf("printed %q", b.String())
	}
}
