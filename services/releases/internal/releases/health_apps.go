package releases

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	catalogv1 "github.com/slipwayhq/slipway/proto/slipway/catalog/v1"
)

// Probes are the HTTP endpoints an application's pods serve (the
// catalog's ApplicationProbes).
type Probes struct {
	HealthPath, HealthPort   string
	MetricsPort, MetricsPath string
}

// AppProbes reads what an application's pods serve.
type AppProbes interface {
	// Probes returns the probes application declares: none when it
	// declares none, or no longer exists.
	Probes(ctx context.Context, org, application string) (Probes, error)
}

var _ AppProbes = CatalogApplications{}

// Probes implements AppProbes, with the caller's identity (viewers read
// an application's probes).
func (c CatalogApplications) Probes(ctx context.Context, org, application string) (Probes, error) {
	ctx, cancel := context.WithTimeout(ctx, depTimeout)
	defer cancel()
	resp, err := c.rpc.GetApplication(ctx, &catalogv1.GetApplicationRequest{Org: org, Application: application})
	switch grpcstatus.Code(err) {
	case codes.OK:
	case codes.NotFound:
		return Probes{}, nil // deleted since it was deployed
	default:
		return Probes{}, fmt.Errorf("%w: catalog: %s", ErrDependencyUnavailable, grpcstatus.Convert(err).Message())
	}
	p := resp.GetApplication().GetProbes()
	out := Probes{HealthPath: p.GetHealthPath(), HealthPort: p.GetHealthPort(), MetricsPort: p.GetMetricsPort(), MetricsPath: p.GetMetricsPath()}
	if out.MetricsPort != "" && out.MetricsPath == "" {
		out.MetricsPath = "/metrics"
	}
	return out, nil
}
