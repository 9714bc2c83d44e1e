package edge

import (
	"net/http"
	"strings"
	"testing"
)

type idempotent interface{ GetIdempotencyKey() string }

func TestIdempotencyKeyReachesTheRequest(t *testing.T) {
	f := &fakeReleases{}
	h := newHarness(t, harnessOptions{releases: f})
	for _, c := range startingCalls {
		t.Run(c.rpc, func(t *testing.T) {
			key := "retry-" + c.rpc
			r := h.do(c.method, c.path, h.owner, c.body, IdempotencyKeyHeader+": "+key)
			if r.status != http.StatusAccepted {
				t.Fatalf("status %d, want 202; body %s", r.status, r.body)
			}
			reqs := f.requests()
			req, ok := reqs[len(reqs)-1].(idempotent)
			if !ok || req.GetIdempotencyKey() != key {
				t.Errorf("service got %v, want idempotency_key %q", reqs[len(reqs)-1], key)
			}
		})
	}

	create := startingCalls[0]
	t.Run("the same key in the body and the header", func(t *testing.T) {
		r := h.do(create.method, create.path, h.owner, `{"name":"web","idempotency_key":"k1"}`, IdempotencyKeyHeader+": k1")
		reqs := f.requests()
		if r.status != http.StatusAccepted || reqs[len(reqs)-1].(idempotent).GetIdempotencyKey() != "k1" {
			t.Errorf("status %d, service got %v", r.status, reqs[len(reqs)-1])
		}
	})
	t.Run("a body key without the header", func(t *testing.T) {
		r := h.do(create.method, create.path, h.owner, `{"name":"web","idempotency_key":"k2"}`)
		reqs := f.requests()
		if r.status != http.StatusAccepted || reqs[len(reqs)-1].(idempotent).GetIdempotencyKey() != "k2" {
			t.Errorf("status %d, service got %v", r.status, reqs[len(reqs)-1])
		}
	})
	t.Run("a 255-character key", func(t *testing.T) {
		key := strings.Repeat("k", 255)
		r := h.do(create.method, create.path, h.owner, create.body, IdempotencyKeyHeader+": "+key)
		reqs := f.requests()
		if r.status != http.StatusAccepted || reqs[len(reqs)-1].(idempotent).GetIdempotencyKey() != key {
			t.Errorf("status %d, service got %v", r.status, reqs[len(reqs)-1])
		}
	})
	t.Run("no key", func(t *testing.T) {
		r := h.do(create.method, create.path, h.owner, create.body)
		reqs := f.requests()
		if r.status != http.StatusAccepted || reqs[len(reqs)-1].(idempotent).GetIdempotencyKey() != "" {
			t.Errorf("status %d, service got %v", r.status, reqs[len(reqs)-1])
		}
	})
	t.Run("a route whose request has no key ignores it", func(t *testing.T) {
		r := h.do(http.MethodGet, deploymentPath, h.owner, "", IdempotencyKeyHeader+": k3")
		if r.status != http.StatusOK {
			t.Errorf("status %d: %s", r.status, r.body)
		}
	})
}

func TestIdempotencyKeyRefused(t *testing.T) {
	create := startingCalls[0]
	tests := []struct {
		name      string
		method    string
		path      string
		body      string
		keys      []string
		wantField string
	}{
		{name: "too long", keys: []string{strings.Repeat("k", 256)}, wantField: IdempotencyKeyHeader},
		{name: "not ASCII", keys: []string{"clé"}, wantField: IdempotencyKeyHeader},
		{name: "a control character", keys: []string{"a\tb"}, wantField: IdempotencyKeyHeader},
		{name: "empty", keys: []string{""}, wantField: IdempotencyKeyHeader},
		{name: "given twice", keys: []string{"k1", "k2"}, wantField: IdempotencyKeyHeader},
		{name: "another key in the body", body: `{"name":"web","idempotency_key":"other"}`, keys: []string{"k1"}, wantField: "idempotency_key"},
		{name: "another key in the query", method: http.MethodDelete, path: deploymentPath + "?idempotency_key=other", keys: []string{"k1"}, wantField: "idempotency_key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeReleases{}
			h := newHarness(t, harnessOptions{releases: f})
			method, path, body := create.method, create.path, create.body
			if tc.method != "" {
				method, path, body = tc.method, tc.path, ""
			}
			if tc.body != "" {
				body = tc.body
			}
			req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+h.owner)
			req.Header.Set("Content-Type", "application/json")
			for _, k := range tc.keys {
				req.Header.Add(IdempotencyKeyHeader, k)
			}
			r := send(t, h, req)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body %s", r.status, r.body)
			}
			if p := r.problem(t); p.Code != "invalid_argument" || len(p.Errors) != 1 || p.Errors[0].Field != tc.wantField {
				t.Errorf("problem %+v, want invalid_argument naming %s", p, tc.wantField)
			}
			if reqs := f.requests(); len(reqs) != 0 {
				t.Errorf("the service got %v", reqs)
			}
		})
	}
}
