package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/slipwayhq/slipway/proto/openapi"
)

// openAPIRoutes reads the gateway's OpenAPI document: operation id ->
// "METHOD path".
func openAPIRoutes(t *testing.T) map[string]string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openapi.Document(), &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for path, methods := range doc.Paths {
		for method, op := range methods {
			out[op.OperationID] = strings.ToUpper(method) + " " + path
		}
	}
	return out
}

// TestRoutesAreServed checks that every route the CLI calls is one the
// gateway serves, with the same method and path.
func TestRoutesAreServed(t *testing.T) {
	served := openAPIRoutes(t)
	for op, route := range routes {
		if got, ok := served[op]; !ok {
			t.Errorf("%s: not in the OpenAPI document", op)
		} else if got != route {
			t.Errorf("%s: the CLI calls %q, the gateway serves %q", op, route, got)
		}
	}
}

// TestEveryRouteIsCovered checks that each route of the OpenAPI document
// has a command, or a reason in notInCLI: a new route fails this test
// until the CLI says what it does with it.
func TestEveryRouteIsCovered(t *testing.T) {
	for op := range openAPIRoutes(t) {
		_, called := routes[op]
		why, skipped := notInCLI[op]
		switch {
		case called && skipped:
			t.Errorf("%s: both called and listed in notInCLI (%s)", op, why)
		case !called && !skipped:
			t.Errorf("%s: a REST route with no command and no reason in notInCLI", op)
		}
	}
	served := openAPIRoutes(t)
	for op := range notInCLI {
		if _, ok := served[op]; !ok {
			t.Errorf("notInCLI names %s, which the OpenAPI document does not have", op)
		}
	}
}

func TestRoutePath(t *testing.T) {
	tests := []struct {
		name, op   string
		params     []string
		wantMethod string
		wantPath   string
		wantErr    bool
	}{
		{name: "plain", op: "ClustersService_GetCluster", params: []string{"acme", "prod"}, wantMethod: "GET", wantPath: "/api/v1/orgs/acme/clusters/prod"},
		{name: "verb", op: "OperationsService_WatchOperation", params: []string{"acme", "op_1"}, wantMethod: "GET", wantPath: "/api/v1/orgs/acme/operations/op_1:watch"},
		{name: "escaped segment", op: "RegistryService_GetImage", params: []string{"acme", "api", "1.0/../x"}, wantMethod: "GET", wantPath: "/api/v1/orgs/acme/images/api/versions/1.0%2F..%2Fx"},
		{name: "too few", op: "ClustersService_GetCluster", params: []string{"acme"}, wantErr: true},
		{name: "too many", op: "ClustersService_GetCluster", params: []string{"acme", "a", "b"}, wantErr: true},
		{name: "unknown", op: "Nope_Nope", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, p, err := routePath(tc.op, tc.params...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && (m != tc.wantMethod || p != tc.wantPath) {
				t.Errorf("= %s %s, want %s %s", m, p, tc.wantMethod, tc.wantPath)
			}
		})
	}
}
