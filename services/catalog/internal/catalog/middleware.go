package catalog

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// LoggingMiddleware logs every change to repositories and applications
// (reads are logged by the gRPC server's access log).
func LoggingMiddleware(log *slog.Logger) Middleware {
	return func(next Service) Service { return &loggingService{Service: next, log: log} }
}

type loggingService struct {
	Service
	log *slog.Logger
}

func (s *loggingService) logged(ctx context.Context, err error, msg string, args ...any) {
	if err == nil {
		s.log.InfoContext(ctx, msg, args...)
	}
}

func (s *loggingService) CreateRepository(ctx context.Context, in NewRepository) (Repository, error) {
	r, err := s.Service.CreateRepository(ctx, in)
	s.logged(ctx, err, "repository added", "repository", r.Name, "url", r.URL, "credential", r.CredentialID)
	return r, err
}

func (s *loggingService) UpdateRepository(ctx context.Context, name string, u RepositoryUpdate) (Repository, error) {
	r, err := s.Service.UpdateRepository(ctx, name, u)
	s.logged(ctx, err, "repository updated", "repository", name, "url", r.URL, "credential", r.CredentialID)
	return r, err
}

func (s *loggingService) DeleteRepository(ctx context.Context, name string) error {
	err := s.Service.DeleteRepository(ctx, name)
	s.logged(ctx, err, "repository deleted", "repository", name)
	return err
}

func (s *loggingService) CreateApplication(ctx context.Context, app Application) (Application, error) {
	a, err := s.Service.CreateApplication(ctx, app)
	s.logged(ctx, err, "application created", "application", a.Name, "targets", len(a.Targets))
	return a, err
}

func (s *loggingService) UpdateApplication(ctx context.Context, app Application) (Application, error) {
	a, err := s.Service.UpdateApplication(ctx, app)
	s.logged(ctx, err, "application replaced", "application", a.Name, "targets", len(a.Targets))
	return a, err
}

func (s *loggingService) DeleteApplication(ctx context.Context, name string) error {
	err := s.Service.DeleteApplication(ctx, name)
	s.logged(ctx, err, "application deleted", "application", name)
	return err
}

// InstrumentingMiddleware counts changes by operation and outcome.
func InstrumentingMiddleware(reg prometheus.Registerer) Middleware {
	changes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "slipway",
		Subsystem: "catalog",
		Name:      "changes_total",
		Help:      "Repository and application changes, by operation and outcome.",
	}, []string{"operation", "outcome"})
	reg.MustRegister(changes)
	return func(next Service) Service { return &instrumentingService{Service: next, changes: changes} }
}

type instrumentingService struct {
	Service
	changes *prometheus.CounterVec
}

func (s *instrumentingService) count(op string, err error) {
	s.changes.WithLabelValues(op, errorTable.Outcome(err)).Inc()
}

func (s *instrumentingService) CreateRepository(ctx context.Context, in NewRepository) (Repository, error) {
	r, err := s.Service.CreateRepository(ctx, in)
	s.count("create_repository", err)
	return r, err
}

func (s *instrumentingService) UpdateRepository(ctx context.Context, name string, u RepositoryUpdate) (Repository, error) {
	r, err := s.Service.UpdateRepository(ctx, name, u)
	s.count("update_repository", err)
	return r, err
}

func (s *instrumentingService) DeleteRepository(ctx context.Context, name string) error {
	err := s.Service.DeleteRepository(ctx, name)
	s.count("delete_repository", err)
	return err
}

func (s *instrumentingService) CreateApplication(ctx context.Context, app Application) (Application, error) {
	a, err := s.Service.CreateApplication(ctx, app)
	s.count("create_application", err)
	return a, err
}

func (s *instrumentingService) UpdateApplication(ctx context.Context, app Application) (Application, error) {
	a, err := s.Service.UpdateApplication(ctx, app)
	s.count("update_application", err)
	return a, err
}

func (s *instrumentingService) DeleteApplication(ctx context.Context, name string) error {
	err := s.Service.DeleteApplication(ctx, name)
	s.count("delete_application", err)
	return err
}

// New builds the service onion: domain service, then instrumenting, then
// logging (outermost, so it sees what callers see).
func New(deps Deps, opts Options, log *slog.Logger, reg prometheus.Registerer) Service {
	var svc Service = NewService(deps, opts, log)
	svc = InstrumentingMiddleware(reg)(svc)
	svc = LoggingMiddleware(log)(svc)
	return svc
}
