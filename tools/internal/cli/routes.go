package cli

import (
	"fmt"
	"net/url"
	"strings"
)

// routes are the REST routes the CLI calls, by OpenAPI operation id, as
// "METHOD path template". A test checks each against the gateway's
// OpenAPI document, and that every route of the document is here or in
// notInCLI: the CLI never calls a route the gateway does not serve.
var routes = map[string]string{
	"OrganizationsService_ListOrganizations":  "GET /api/v1/orgs",
	"OrganizationsService_CreateOrganization": "POST /api/v1/orgs",
	"OrganizationsService_GetOrganization":    "GET /api/v1/orgs/{org}",
	"OrganizationsService_UpdateOrganization": "PATCH /api/v1/orgs/{org}",
	"OrganizationsService_DeleteOrganization": "DELETE /api/v1/orgs/{org}",

	"MembersService_ListMembers":  "GET /api/v1/orgs/{org}/members",
	"MembersService_AddMember":    "POST /api/v1/orgs/{org}/members",
	"MembersService_UpdateMember": "PATCH /api/v1/orgs/{org}/members/{member}",
	"MembersService_RemoveMember": "DELETE /api/v1/orgs/{org}/members/{member}",

	"TokensService_ListTokens":  "GET /api/v1/orgs/{org}/tokens",
	"TokensService_CreateToken": "POST /api/v1/orgs/{org}/tokens",
	"TokensService_RevokeToken": "DELETE /api/v1/orgs/{org}/tokens/{token}",

	"AuditService_ListAuditEvents": "GET /api/v1/orgs/{org}/audit",

	"ClustersService_ListClusters":             "GET /api/v1/orgs/{org}/clusters",
	"ClustersService_RegisterCluster":          "POST /api/v1/orgs/{org}/clusters",
	"ClustersService_GetCluster":               "GET /api/v1/orgs/{org}/clusters/{cluster}",
	"ClustersService_UpdateCluster":            "PATCH /api/v1/orgs/{org}/clusters/{cluster}",
	"ClustersService_DeleteCluster":            "DELETE /api/v1/orgs/{org}/clusters/{cluster}",
	"ClustersService_GetClusterConfig":         "GET /api/v1/orgs/{org}/clusters/{cluster}/config",
	"ClustersService_CheckCluster":             "POST /api/v1/orgs/{org}/clusters/{cluster}:check",
	"ClustersService_RotateClusterCredentials": "POST /api/v1/orgs/{org}/clusters/{cluster}:rotateCredentials",

	"CredentialsService_ListCredentials":  "GET /api/v1/orgs/{org}/credentials",
	"CredentialsService_CreateCredential": "POST /api/v1/orgs/{org}/credentials",
	"CredentialsService_GetCredential":    "GET /api/v1/orgs/{org}/credentials/{credential}",
	"CredentialsService_UpdateCredential": "PATCH /api/v1/orgs/{org}/credentials/{credential}",
	"CredentialsService_DeleteCredential": "DELETE /api/v1/orgs/{org}/credentials/{credential}",

	"RegistryService_ListImages":            "GET /api/v1/orgs/{org}/images",
	"RegistryService_CreateImage":           "POST /api/v1/orgs/{org}/images",
	"RegistryService_GetImage":              "GET /api/v1/orgs/{org}/images/{name}/versions/{version}",
	"RegistryService_DeleteImage":           "DELETE /api/v1/orgs/{org}/images/{name}/versions/{version}",
	"RegistryService_ListImageDeployments":  "GET /api/v1/orgs/{org}/images/{name}/versions/{version}/deployments",
	"RegistryService_ListDigestDeployments": "GET /api/v1/orgs/{org}/digests/{digest}/deployments",
	"RegistryService_GetPushRule":           "GET /api/v1/orgs/{org}/image-push-rule",
	"RegistryService_UpdatePushRule":        "PUT /api/v1/orgs/{org}/image-push-rule",

	"CatalogService_ListRepositories":  "GET /api/v1/orgs/{org}/repositories",
	"CatalogService_CreateRepository":  "POST /api/v1/orgs/{org}/repositories",
	"CatalogService_GetRepository":     "GET /api/v1/orgs/{org}/repositories/{repository}",
	"CatalogService_UpdateRepository":  "PATCH /api/v1/orgs/{org}/repositories/{repository}",
	"CatalogService_DeleteRepository":  "DELETE /api/v1/orgs/{org}/repositories/{repository}",
	"CatalogService_SyncRepository":    "POST /api/v1/orgs/{org}/repositories/{repository}:sync",
	"CatalogService_ListCharts":        "GET /api/v1/orgs/{org}/repositories/{repository}/charts",
	"CatalogService_SearchCharts":      "GET /api/v1/orgs/{org}/charts",
	"CatalogService_GetChart":          "GET /api/v1/orgs/{org}/charts/{repository}/{chart}",
	"CatalogService_GetChartVersion":   "GET /api/v1/orgs/{org}/charts/{repository}/{chart}/versions/{version}",
	"CatalogService_ListApplications":  "GET /api/v1/orgs/{org}/applications",
	"CatalogService_CreateApplication": "POST /api/v1/orgs/{org}/applications",
	"CatalogService_GetApplication":    "GET /api/v1/orgs/{org}/applications/{application}",
	"CatalogService_UpdateApplication": "PUT /api/v1/orgs/{org}/applications/{application.name}",
	"CatalogService_DeleteApplication": "DELETE /api/v1/orgs/{org}/applications/{application}",

	"ReleasesService_ListDeployments":         "GET /api/v1/orgs/{org}/clusters/{cluster}/deployments",
	"ReleasesService_CreateDeployment":        "POST /api/v1/orgs/{org}/clusters/{cluster}/deployments",
	"ReleasesService_GetDeployment":           "GET /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}",
	"ReleasesService_UpdateDeployment":        "PUT /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}",
	"ReleasesService_DeleteDeployment":        "DELETE /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}",
	"ReleasesService_RollbackDeployment":      "POST /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}/rollback",
	"ReleasesService_RecoverDeployment":       "POST /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}/recover",
	"ReleasesService_GetDeploymentHistory":    "GET /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}/history",
	"ReleasesService_GetDeploymentValues":     "GET /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}/values",
	"ReleasesService_GetDeploymentManifest":   "GET /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}/manifest",
	"ReleasesService_GetDeploymentNotes":      "GET /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}/notes",
	"ReleasesService_GetDeploymentStatus":     "GET /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}/status",
	"ReleasesService_GetDeploymentHealth":     "GET /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}/health",
	"ReleasesService_GetDeploymentMetrics":    "GET /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}/metrics",
	"ReleasesService_WatchDeploymentStatus":   "GET /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}/status:watch",
	"ReleasesService_ListDeploymentResources": "GET /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}/resources",
	"ReleasesService_ListDeploymentEvents":    "GET /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}/events",
	"ReleasesService_GetDeploymentLogs":       "GET /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}/logs",
	"ReleasesService_PlanDeployment":          "POST /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}:plan",
	"ReleasesService_ApplyDeploymentPlan":     "POST /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}:apply",
	"ReleasesService_GetDeploymentDrift":      "GET /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}/drift",
	"ReleasesService_CorrectDeploymentDrift":  "POST /api/v1/orgs/{org}/clusters/{cluster}/deployments/{name}/drift:correct",
	"ReleasesService_DeployApplication":       "POST /api/v1/orgs/{org}/applications/{application}/targets/{target}:deploy",
	"ReleasesService_RollbackApplication":     "POST /api/v1/orgs/{org}/applications/{application}/targets/{target}:rollback",
	"ReleasesService_ListApplicationReleases": "GET /api/v1/orgs/{org}/applications/{application}/targets/{target}/releases",
	"ReleasesService_LaunchInstance":          "POST /api/v1/orgs/{org}/applications/{application}/instances",
	"ReleasesService_GetInstance":             "GET /api/v1/orgs/{org}/applications/{application}/instances/{instance}",
	"ReleasesService_ListInstances":           "GET /api/v1/orgs/{org}/applications/{application}/instances",
	"ReleasesService_KeepAliveInstance":       "POST /api/v1/orgs/{org}/applications/{application}/instances/{instance}:keepalive",
	"ReleasesService_DeleteInstance":          "DELETE /api/v1/orgs/{org}/applications/{application}/instances/{instance}",

	"OperationsService_ListOperations":  "GET /api/v1/orgs/{org}/operations",
	"OperationsService_GetOperation":    "GET /api/v1/orgs/{org}/operations/{operation}",
	"OperationsService_CancelOperation": "POST /api/v1/orgs/{org}/operations/{operation}:cancel",
	"OperationsService_WatchOperation":  "GET /api/v1/orgs/{org}/operations/{operation}:watch",
}

// notInCLI are the OpenAPI operations the CLI does not call, with why.
var notInCLI = map[string]string{
	"RegistryService_ReceivePushEvents": "the OCI registry's webhook, not a user call",
	"ReleasesService_HeadDeployment":    "release get reads the same and more",
	"CatalogService_GetChartVersion2":   "the short path of GetChartVersion",
}

// routePath returns the method and path of operation op with its
// template's {params} filled in order, each escaped as one path segment.
func routePath(op string, params ...string) (method, path string, err error) {
	r, ok := routes[op]
	if !ok {
		return "", "", fmt.Errorf("internal: no route for %s", op)
	}
	method, tmpl, _ := strings.Cut(r, " ")
	var b strings.Builder
	n := 0
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			break
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if n >= len(params) {
			return "", "", fmt.Errorf("internal: %s needs more than %d parameters", op, len(params))
		}
		b.WriteString(tmpl[:i])
		b.WriteString(url.PathEscape(params[n]))
		n++
		tmpl = tmpl[i+j+1:]
	}
	if n != len(params) {
		return "", "", fmt.Errorf("internal: %s takes %d parameters, not %d", op, n, len(params))
	}
	return method, b.String(), nil
}
