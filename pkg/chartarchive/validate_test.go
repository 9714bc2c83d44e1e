package chartarchive_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayhq/slipway/pkg/chartarchive"
	"github.com/slipwayhq/slipway/pkg/safeyaml"
)

const validateSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["image"],
  "properties": {
    "replicaCount": {"type": "integer", "minimum": 1},
    "image": {
      "type": "object",
      "required": ["repository", "tag"],
      "properties": {
        "repository": {"type": "string"},
        "tag": {"type": "string"},
        "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]}
      }
    },
    "service": {"$ref": "#/$defs/service"},
    "a/b~c": {"type": "boolean"}
  },
  "$defs": {
    "service": {"type": "object", "properties": {"port": {"type": "integer", "maximum": 65535}}}
  }
}`

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		values string // YAML, read as Read would
		want   []chartarchive.Violation
	}{
		{
			name:   "valid",
			schema: validateSchema,
			values: "replicaCount: 3\nimage: {repository: nginx, tag: \"1.27\", pullPolicy: Always}\nservice: {port: 80}\n",
		},
		{
			name:   "every kind of failure, each with its path",
			schema: validateSchema,
			values: "replicaCount: three\nimage: {repository: nginx, pullPolicy: Sometimes}\nservice: {port: 70000}\na/b~c: yes please\n",
			want: []chartarchive.Violation{
				{Path: "/a~1b~0c", Message: "got string, want boolean"},
				{Path: "/image", Message: "missing property 'tag'"},
				{Path: "/image/pullPolicy", Message: `value must be one of 'Always', 'IfNotPresent', 'Never'`},
				{Path: "/replicaCount", Message: "got string, want integer"},
				{Path: "/service/port", Message: "maximum: got 70,000, want 65,535"},
			},
		},
		{
			name:   "failure at the root",
			schema: validateSchema,
			values: "replicaCount: 2\n",
			want:   []chartarchive.Violation{{Path: "", Message: "missing property 'image'"}},
		},
		{
			name:   "empty values against a schema",
			schema: validateSchema,
			values: "",
			want:   []chartarchive.Violation{{Path: "", Message: "missing property 'image'"}},
		},
		{
			name:   "draft-07 schema",
			schema: `{"$schema": "http://json-schema.org/draft-07/schema#", "properties": {"n": {"type": "number"}}}`,
			values: "n: x\n",
			want:   []chartarchive.Violation{{Path: "/n", Message: "got string, want number"}},
		},
		{name: "no schema", schema: "", values: "anything: goes\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			values, err := safeyaml.Values([]byte(tc.values), safeyaml.Limits{})
			if err != nil {
				t.Fatalf("values: %v", err)
			}
			var schema []byte
			if tc.schema != "" {
				schema = []byte(tc.schema)
			}
			got, err := chartarchive.Validate(schema, values)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateBadSchema(t *testing.T) {
	tests := []struct {
		name   string
		schema string
	}{
		{name: "not JSON", schema: `{"type": `},
		{name: "trailing data", schema: `{} {}`},
		{name: "does not compile", schema: `{"type": 5}`},
		{name: "bad pattern", schema: `{"properties": {"a": {"pattern": "("}}}`},
		{name: "dangling local ref", schema: `{"$ref": "#/$defs/missing"}`},
		{name: "relative ref", schema: `{"$ref": "other.json"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := chartarchive.Validate([]byte(tc.schema), map[string]any{"a": "b"})
			if !errors.Is(err, chartarchive.ErrSchema) {
				t.Errorf("Validate = %v, %v; want an error wrapping ErrSchema", v, err)
			}
		})
	}
}

// A tenant's schema must reach neither the network nor this host's files.
func TestValidateRefsNotLoaded(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, `{"type": "string"}`)
	}))
	t.Cleanup(srv.Close)

	local := filepath.Join(t.TempDir(), "string.json")
	if err := os.WriteFile(local, []byte(`{"type": "string"}`), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		ref  string
	}{
		{name: "http", ref: srv.URL + "/string.json"},
		{name: "file", ref: "file://" + filepath.ToSlash(local)},
		{name: "id-relative", ref: "string.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			schema := fmt.Sprintf(`{"properties": {"a": {"$ref": %q}}}`, tc.ref)
			v, err := chartarchive.Validate([]byte(schema), map[string]any{"a": 1})
			if !errors.Is(err, chartarchive.ErrSchema) || !strings.Contains(err.Error(), "only references inside values.schema.json") {
				t.Errorf("Validate = %v, %v; want the reference refused with ErrSchema", v, err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("schema server got %d requests, want none", n)
	}
}

func TestValidateValuesNotJSON(t *testing.T) {
	values, err := safeyaml.Values([]byte("a: .nan\n"), safeyaml.Limits{})
	if err != nil {
		t.Fatalf("values: %v", err)
	}
	if _, err := chartarchive.Validate([]byte(`{}`), values); err == nil || errors.Is(err, chartarchive.ErrSchema) {
		t.Errorf("Validate with NaN = %v, want an error that is not ErrSchema", err)
	}
}

// The library evaluates every anyOf branch and follows $refs without
// memoising, so this schema costs 2^depth evaluations; it must be refused
// before it runs, not after hours.
func TestValidateTooCostly(t *testing.T) {
	const branching = `{"$ref": "#/$defs/n", "$defs": {"n": {"anyOf": [
		{"type": "object", "additionalProperties": {"$ref": "#/$defs/n"}},
		{"type": "object", "additionalProperties": {"$ref": "#/$defs/n"}}]}}}`
	// A chain of definitions each referring twice to the next blows up even
	// on a single scalar.
	var chain strings.Builder
	chain.WriteString(`{"$ref": "#/$defs/d0", "$defs": {`)
	for i := range 40 {
		fmt.Fprintf(&chain, `"d%d": {"anyOf": [{"$ref": "#/$defs/d%d"}, {"$ref": "#/$defs/d%d"}]}, `, i, i+1, i+1)
	}
	chain.WriteString(`"d40": {"type": "string"}}}`)

	nested := func(depth int) map[string]any {
		v := map[string]any{"leaf": 1}
		for range depth {
			v = map[string]any{"a": v}
		}
		return v
	}
	tests := []struct {
		name   string
		schema string
		values map[string]any
	}{
		{name: "branching recursion over deep values", schema: branching, values: nested(60)},
		{name: "doubling chain of definitions", schema: chain.String(), values: map[string]any{"x": 1}},
		{name: "enum over large values", schema: `{"additionalProperties": {"enum": [` + strings.Repeat(`{"a": 1}, `, 2000) + `0]}}`, values: bigValues(2000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := chartarchive.Validate([]byte(tc.schema), tc.values)
			if !errors.Is(err, chartarchive.ErrTooCostly) {
				t.Errorf("Validate = %v, %v; want ErrTooCostly", v, err)
			}
		})
	}
	// The same recursive schema over shallow values is fine.
	if v, err := chartarchive.Validate([]byte(branching), nested(4)); err != nil || len(v) == 0 {
		t.Errorf("Validate over shallow values = %v, %v; want violations and no error", v, err)
	}
}

func bigValues(n int) map[string]any {
	m := map[string]any{}
	for i := range n {
		m[fmt.Sprint("k", i)] = map[string]any{"a": i}
	}
	return m
}
