package registry

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// LoggingMiddleware logs every change to the image record (reads are logged
// by the gRPC server's access log).
func LoggingMiddleware(log *slog.Logger) Middleware {
	return func(next Service) Service { return &loggingService{Service: next, log: log} }
}

type loggingService struct {
	Service
	log *slog.Logger
}

func (s *loggingService) CreateImage(ctx context.Context, in NewImage) (Image, error) {
	img, err := s.Service.CreateImage(ctx, in)
	if err == nil {
		s.log.InfoContext(ctx, "image created", "image", img.Name, "version", img.Version, "digest", img.Digest)
	}
	return img, err
}

func (s *loggingService) DeleteImage(ctx context.Context, name, version string) error {
	err := s.Service.DeleteImage(ctx, name, version)
	if err == nil {
		s.log.InfoContext(ctx, "image deleted", "image", name, "version", version)
	}
	return err
}

// InstrumentingMiddleware counts image changes by outcome.
func InstrumentingMiddleware(reg prometheus.Registerer) Middleware {
	changes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "slipway",
		Subsystem: "registry",
		Name:      "image_changes_total",
		Help:      "Image creates and deletes, by operation and outcome.",
	}, []string{"operation", "outcome"})
	reg.MustRegister(changes)
	return func(next Service) Service { return &instrumentingService{Service: next, changes: changes} }
}

type instrumentingService struct {
	Service
	changes *prometheus.CounterVec
}

func (s *instrumentingService) CreateImage(ctx context.Context, in NewImage) (Image, error) {
	img, err := s.Service.CreateImage(ctx, in)
	s.changes.WithLabelValues("create", errorTable.Outcome(err)).Inc()
	return img, err
}

func (s *instrumentingService) DeleteImage(ctx context.Context, name, version string) error {
	err := s.Service.DeleteImage(ctx, name, version)
	s.changes.WithLabelValues("delete", errorTable.Outcome(err)).Inc()
	return err
}

// New builds the service onion: domain service, then instrumenting, then
// logging (outermost, so it sees what callers see).
func New(store Store, resolver Resolver, deployments Deployments, opts Options, log *slog.Logger, reg prometheus.Registerer) Service {
	var svc Service = NewService(store, resolver, deployments, opts, log)
	svc = InstrumentingMiddleware(reg)(svc)
	svc = LoggingMiddleware(log)(svc)
	return svc
}
