// Package authz is the gateway's one permission table: for every REST
// operation (by OpenAPI operation id, which names its RPC), the least role a
// caller needs. An operation missing from the table is denied.
package authz

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/proto/openapi"
)

// Any marks the operations any authenticated caller may use: they are not
// scoped to an organization (create one, list one's own).
const Any identity.Role = "any"

const (
	viewer   = identity.RoleViewer
	deployer = identity.RoleDeployer
	admin    = identity.RoleAdmin
	owner    = identity.RoleOwner
)

// Table maps each operation to the least role allowed to call it.
//
//   - viewer reads everything but secrets and user-supplied values;
//   - deployer also records images, deploys, upgrades, rolls back, launches;
//   - admin also manages clusters, credentials, repositories, applications,
//     members and tokens, reads the audit log and downloads kubeconfigs;
//   - owner also deletes the organization.
var Table = map[string]identity.Role{
	"OrganizationsService_CreateOrganization": Any,
	"OrganizationsService_ListOrganizations":  Any,
	"OrganizationsService_GetOrganization":    viewer,
	"OrganizationsService_UpdateOrganization": admin,
	"OrganizationsService_DeleteOrganization": owner,

	"MembersService_AddMember":    admin,
	"MembersService_ListMembers":  viewer,
	"MembersService_UpdateMember": admin,
	"MembersService_RemoveMember": admin,

	"TokensService_CreateToken": admin,
	"TokensService_ListTokens":  admin,
	"TokensService_RevokeToken": admin,

	"AuditService_ListAuditEvents": admin,

	"ClustersService_RegisterCluster":          admin,
	"ClustersService_GetCluster":               viewer,
	"ClustersService_ListClusters":             viewer,
	"ClustersService_UpdateCluster":            admin,
	"ClustersService_RotateClusterCredentials": admin,
	"ClustersService_DeleteCluster":            admin,
	"ClustersService_GetClusterConfig":         admin,
	"ClustersService_CheckCluster":             admin,

	"CredentialsService_CreateCredential": admin,
	"CredentialsService_GetCredential":    viewer,
	"CredentialsService_ListCredentials":  viewer,
	"CredentialsService_UpdateCredential": admin,
	"CredentialsService_DeleteCredential": admin,

	"RegistryService_CreateImage":           deployer,
	"RegistryService_GetImage":              viewer,
	"RegistryService_ListImages":            viewer,
	"RegistryService_DeleteImage":           deployer,
	"RegistryService_ReceivePushEvents":     deployer,
	"RegistryService_GetPushRule":           viewer,
	"RegistryService_UpdatePushRule":        admin,
	"RegistryService_ListImageDeployments":  viewer,
	"RegistryService_ListDigestDeployments": viewer,

	"CatalogService_CreateRepository":  admin,
	"CatalogService_GetRepository":     viewer,
	"CatalogService_ListRepositories":  viewer,
	"CatalogService_UpdateRepository":  admin,
	"CatalogService_DeleteRepository":  admin,
	"CatalogService_SyncRepository":    deployer,
	"CatalogService_SearchCharts":      viewer,
	"CatalogService_ListCharts":        viewer,
	"CatalogService_GetChart":          viewer,
	"CatalogService_GetChartVersion":   viewer,
	"CatalogService_GetChartVersion2":  viewer, // the short path of DESIGN.md
	"CatalogService_CreateApplication": admin,
	"CatalogService_GetApplication":    viewer,
	"CatalogService_ListApplications":  viewer,
	"CatalogService_UpdateApplication": admin,
	"CatalogService_DeleteApplication": admin,

	"OperationsService_GetOperation":    viewer,
	"OperationsService_ListOperations":  viewer,
	"OperationsService_CancelOperation": deployer,
	"OperationsService_WatchOperation":  viewer,

	"ReleasesService_CreateDeployment":        deployer,
	"ReleasesService_ListDeployments":         viewer,
	"ReleasesService_GetDeployment":           viewer,
	"ReleasesService_HeadDeployment":          viewer,
	"ReleasesService_UpdateDeployment":        deployer,
	"ReleasesService_DeleteDeployment":        deployer,
	"ReleasesService_RollbackDeployment":      deployer,
	"ReleasesService_RecoverDeployment":       admin, // settles a release Helm left pending
	"ReleasesService_GetDeploymentHistory":    viewer,
	"ReleasesService_GetDeploymentValues":     deployer,
	"ReleasesService_GetDeploymentManifest":   viewer,
	"ReleasesService_GetDeploymentNotes":      viewer,
	"ReleasesService_GetDeploymentStatus":     viewer,
	"ReleasesService_WatchDeploymentStatus":   viewer,
	"ReleasesService_ListDeploymentResources": viewer,
	"ReleasesService_ListDeploymentEvents":    viewer,
	"ReleasesService_GetDeploymentLogs":       viewer,
	"ReleasesService_GetDeploymentHealth":     viewer,
	"ReleasesService_GetDeploymentMetrics":    viewer,
	"ReleasesService_PlanDeployment":          deployer,
	"ReleasesService_ApplyDeploymentPlan":     deployer,
	"ReleasesService_GetDeploymentDrift":      viewer,
	"ReleasesService_CorrectDeploymentDrift":  deployer,
	"ReleasesService_DeployApplication":       deployer,
	"ReleasesService_RollbackApplication":     deployer,
	"ReleasesService_ListApplicationReleases": viewer,
	"ReleasesService_LaunchInstance":          deployer,
	"ReleasesService_GetInstance":             viewer,
	"ReleasesService_ListInstances":           viewer,
	"ReleasesService_KeepAliveInstance":       deployer,
	"ReleasesService_DeleteInstance":          deployer,
}

// Allowed reports whether role may call operation. Unknown operations are
// denied; Any operations need only an authenticated caller (role may be "").
func Allowed(operation string, role identity.Role) bool {
	min, ok := Table[operation]
	switch {
	case !ok:
		return false
	case min == Any:
		return true
	}
	return role.AtLeast(min)
}

// Operation is one REST route of the OpenAPI document.
type Operation struct {
	ID     string // "RegistryService_CreateImage"
	Method string // "POST"
	Path   string // "/api/v1/orgs/{org}/images"
}

// RPC returns the operation's gRPC method, "RegistryService/CreateImage".
func (o Operation) RPC() string { return strings.Replace(o.ID, "_", "/", 1) }

// Operations lists every operation of the served OpenAPI document.
func Operations() ([]Operation, error) {
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openapi.Document(), &doc); err != nil {
		return nil, fmt.Errorf("parse OpenAPI document: %w", err)
	}
	var ops []Operation
	for path, methods := range doc.Paths {
		for method, op := range methods {
			ops = append(ops, Operation{ID: op.OperationID, Method: strings.ToUpper(method), Path: path})
		}
	}
	return ops, nil
}

// Routes indexes operations by "METHOD path template", the way the REST
// router names a matched route.
func Routes() (map[string]Operation, error) {
	ops, err := Operations()
	if err != nil {
		return nil, err
	}
	routes := make(map[string]Operation, len(ops))
	for _, op := range ops {
		routes[op.Method+" "+op.Path] = op
	}
	return routes, nil
}
