package edge

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/proto"

	"github.com/slipwayhq/slipway/pkg/identity"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

// Headers of a HEAD on a deployment: the release's status (as JSON spells
// it, "RELEASE_STATUS_DEPLOYED") and latest revision.
const (
	ReleaseStatusHeader   = "Slipway-Release-Status"
	ReleaseRevisionHeader = "Slipway-Release-Revision"
)

// releasesRPCPrefix starts the full method name of every ReleasesService RPC.
var releasesRPCPrefix = "/" + releasesv1.ReleasesService_ServiceDesc.ServiceName + "/"

// acceptOperation answers 202 Accepted with the operation's Location for the
// release calls that start an operation: every ReleasesService response
// that carries one. OperationsService answers (get, cancel) carry one too,
// but report on an operation rather than start one: they stay 200.
func acceptOperation(ctx context.Context, w http.ResponseWriter, resp proto.Message) error {
	started, ok := resp.(interface{ GetOperation() *releasesv1.Operation })
	if !ok {
		return nil
	}
	if method, _ := runtime.RPCMethod(ctx); !strings.HasPrefix(method, releasesRPCPrefix) {
		return nil
	}
	op := started.GetOperation()
	if op.GetId() == "" {
		return nil
	}
	org := op.GetOrg()
	if org == "" {
		id, _ := identity.FromContext(ctx)
		org = id.Org
	}
	w.Header().Set("Location", operationPath(org, op.GetId()))
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// operationPath is the REST path of an operation.
func operationPath(org, id string) string {
	return orgsPrefix + url.PathEscape(org) + "/operations/" + url.PathEscape(id)
}

// headDeployment answers a HEAD on a deployment in headers: a HEAD
// response has no body to carry HeadDeploymentResponse.
func headDeployment(_ context.Context, w http.ResponseWriter, resp proto.Message) error {
	head, ok := resp.(*releasesv1.HeadDeploymentResponse)
	if !ok {
		return nil
	}
	w.Header().Set(ReleaseStatusHeader, head.GetStatus().String())
	w.Header().Set(ReleaseRevisionHeader, strconv.Itoa(int(head.GetRevision())))
	return nil
}
