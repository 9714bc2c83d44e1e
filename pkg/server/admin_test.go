package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestAdminHandler(t *testing.T) {
	pass := func(context.Context) error { return nil }
	fail := func(context.Context) error { return errors.New("database unreachable at 10.0.0.5") }
	needsDeadline := func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("check got no deadline")
		}
		return nil
	}

	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "slipway_test_events_total", Help: "Test events."})
	reg.MustRegister(c)
	c.Add(3)

	tests := []struct {
		name       string
		checks     []Check
		method     string
		path       string
		wantStatus int
		wantBody   string // substring
		notBody    string // must not appear
	}{
		{name: "healthz", method: http.MethodGet, path: "/healthz", wantStatus: http.StatusOK, wantBody: "ok"},
		{name: "healthz ignores failing checks", checks: []Check{fail}, method: http.MethodGet, path: "/healthz", wantStatus: http.StatusOK},
		{name: "readyz without checks", method: http.MethodGet, path: "/readyz", wantStatus: http.StatusOK, wantBody: "ok"},
		{name: "readyz all pass", checks: []Check{pass, needsDeadline, pass}, method: http.MethodGet, path: "/readyz", wantStatus: http.StatusOK, wantBody: "ok"},
		{name: "readyz one fails", checks: []Check{pass, fail, pass}, method: http.MethodGet, path: "/readyz", wantStatus: http.StatusServiceUnavailable, wantBody: "not ready", notBody: "10.0.0.5"},
		{name: "metrics", method: http.MethodGet, path: "/metrics", wantStatus: http.StatusOK, wantBody: "slipway_test_events_total 3"},
		{name: "healthz is GET only", method: http.MethodPost, path: "/healthz", wantStatus: http.StatusMethodNotAllowed},
		{name: "unknown path", method: http.MethodGet, path: "/debug/pprof/", wantStatus: http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(AdminHandler(reg, tc.checks...))
			defer srv.Close()
			req, err := http.NewRequestWithContext(testContext(t), tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("%s %s = %d, want %d (body %q)", tc.method, tc.path, resp.StatusCode, tc.wantStatus, body)
			}
			if !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("%s %s body = %q, want it to contain %q", tc.method, tc.path, body, tc.wantBody)
			}
			if tc.notBody != "" && strings.Contains(string(body), tc.notBody) {
				t.Errorf("%s %s body = %q leaks %q", tc.method, tc.path, body, tc.notBody)
			}
		})
	}
}
