package authz

import (
	"testing"

	"github.com/slipwayhq/slipway/pkg/identity"
)

// TestTableCoversEveryOperation fails when a route is added without a
// permission, or a permission outlives its route.
func TestTableCoversEveryOperation(t *testing.T) {
	ops, err := Operations()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, op := range ops {
		seen[op.ID] = true
		if _, ok := Table[op.ID]; !ok {
			t.Errorf("%s %s (%s) has no entry in the permission table", op.Method, op.Path, op.ID)
		}
	}
	for id := range Table {
		if !seen[id] {
			t.Errorf("permission table names %s, which no route serves", id)
		}
	}
}

func TestAllowed(t *testing.T) {
	tests := []struct {
		op   string
		role identity.Role
		want bool
	}{
		{"RegistryService_ListImages", identity.RoleViewer, true},
		{"RegistryService_CreateImage", identity.RoleViewer, false},
		{"RegistryService_CreateImage", identity.RoleDeployer, true},
		{"ClustersService_GetClusterConfig", identity.RoleDeployer, false},
		{"ClustersService_GetClusterConfig", identity.RoleAdmin, true},
		{"OrganizationsService_DeleteOrganization", identity.RoleAdmin, false},
		{"OrganizationsService_DeleteOrganization", identity.RoleOwner, true},
		{"OrganizationsService_ListOrganizations", "", true},
		{"NoSuchService_Anything", identity.RoleOwner, false},
		{"RegistryService_ListImages", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.op+"/"+string(tc.role), func(t *testing.T) {
			if got := Allowed(tc.op, tc.role); got != tc.want {
				t.Errorf("Allowed(%s, %q) = %v, want %v", tc.op, tc.role, got, tc.want)
			}
		})
	}
}
