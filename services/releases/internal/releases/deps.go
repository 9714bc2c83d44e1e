package releases

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/slipwayhq/slipway/proto/slipway/catalog/v1"
	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
)

// maxArchiveAnswer is the largest GetChartArchive answer read: archives
// are at most 10 MiB.
const maxArchiveAnswer = 12 << 20

// CatalogCharts is Charts over the catalog service.
type CatalogCharts struct {
	rpc catalogv1.CatalogServiceClient
}

// NewCatalogCharts returns Charts over conn.
func NewCatalogCharts(conn grpc.ClientConnInterface) CatalogCharts {
	return CatalogCharts{rpc: catalogv1.NewCatalogServiceClient(conn)}
}

// Archive implements Charts; ctx carries the identity to ask with.
func (c CatalogCharts) Archive(ctx context.Context, org string, ref ChartRef) (string, string, []byte, error) {
	req := &catalogv1.GetChartArchiveRequest{Org: org, OciReference: ref.OCI}
	if ref.OCI == "" {
		req.Chart = &catalogv1.ChartReference{Repository: ref.Repository, Chart: ref.Chart, Version: ref.Version}
	}
	resp, err := c.rpc.GetChartArchive(ctx, req, grpc.MaxCallRecvMsgSize(maxArchiveAnswer))
	switch status.Code(err) {
	case codes.OK:
		return resp.GetChartVersion().GetVersion(), resp.GetChartVersion().GetDigest(), resp.GetArchive(), nil
	case codes.NotFound, codes.FailedPrecondition, codes.InvalidArgument, codes.PermissionDenied:
		return "", "", nil, fmt.Errorf("%w: chart %s: %s", helmexec.ErrInvalidRequest, ref, status.Convert(err).Message())
	}
	return "", "", nil, fmt.Errorf("%w: catalog: %s", ErrDependencyUnavailable, status.Convert(err).Message())
}
