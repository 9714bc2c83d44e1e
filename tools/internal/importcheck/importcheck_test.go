package importcheck

import "testing"

func TestAllowed(t *testing.T) {
	const r = Root
	tests := []struct {
		name, from, imp string
		want            bool
	}{
		{"service uses pkg", r + "services/registry/internal/registry", r + "pkg/server", true},
		{"service uses proto", r + "services/registry/cmd/slipway-registry", r + "proto/slipway/registry/v1", true},
		{"service uses itself", r + "services/registry/cmd/slipway-registry", r + "services/registry/internal/registry", true},
		{"service uses third party", r + "services/releases/internal/x", "helm.sh/helm/v3/pkg/action", true},
		{"service imports another's internal", r + "services/releases/internal/x", r + "services/registry/internal/registry", false},
		{"service imports another service at all", r + "services/catalog/internal/x", r + "services/clusters/cmd/slipway-clusters", false},
		{"service imports gateway", r + "services/catalog/internal/x", r + "gateway/internal/edge", false},
		{"pkg imports a service", r + "pkg/server", r + "services/registry/internal/registry", false},
		{"pkg imports gateway", r + "pkg/server", r + "gateway/internal/edge", false},
		{"pkg imports proto", r + "pkg/server", r + "proto/slipway/registry/v1", true},
		{"gateway imports proto", r + "gateway/internal/edge", r + "proto/slipway/registry/v1", true},
		{"gateway imports a service", r + "gateway/internal/edge", r + "services/registry/internal/registry", false},
		{"proto imports pkg", r + "proto/slipway/registry/v1", r + "pkg/identity", false},
		{"tools use proto", r + "tools/e2e", r + "proto/slipway/registry/v1", true},
		{"tools use a service's internal", r + "tools/e2e", r + "services/registry/internal/registry", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, why := Allowed(tc.from, tc.imp); got != tc.want {
				t.Errorf("Allowed(%s, %s) = %v (%s), want %v", tc.from, tc.imp, got, why, tc.want)
			}
		})
	}
}
