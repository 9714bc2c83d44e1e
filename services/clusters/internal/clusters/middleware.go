package clusters

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipwayhq/slipway/services/clusters/internal/kube"
)

// New builds the service onion: domain service, then instrumenting, then
// logging (outermost, so it sees what callers see). It also returns the
// domain service, which the health monitor drives directly.
func New(store Store, secrets Secrets, checker Checker, deps Dependents, changes *Changes, log *slog.Logger, reg prometheus.Registerer) (Service, Service) {
	inner := NewService(store, secrets, checker, deps, changes, log)
	svc := InstrumentingMiddleware(reg)(inner)
	svc = LoggingMiddleware(log)(svc)
	return svc, inner
}

// LoggingMiddleware logs every change to clusters and credentials, and
// every kubeconfig download, with ids and names only (reads are logged by
// the gRPC server's access log).
func LoggingMiddleware(log *slog.Logger) Middleware {
	return func(next Service) Service { return &loggingService{Service: next, log: log} }
}

type loggingService struct {
	Service
	log *slog.Logger
}

func (s *loggingService) RegisterCluster(ctx context.Context, in NewCluster) (Cluster, error) {
	c, err := s.Service.RegisterCluster(ctx, in)
	if err == nil {
		s.log.InfoContext(ctx, "cluster registered", "cluster", c.ID, "name", c.Name, "reachability", c.Health.Reachability.String())
	}
	return c, err
}

func (s *loggingService) UpdateCluster(ctx context.Context, ref string, u ClusterUpdate) (Cluster, error) {
	c, err := s.Service.UpdateCluster(ctx, ref, u)
	if err == nil {
		s.log.InfoContext(ctx, "cluster updated", "cluster", c.ID, "name", c.Name)
	}
	return c, err
}

func (s *loggingService) RotateClusterCredentials(ctx context.Context, ref string, conn Connection) (Cluster, error) {
	c, err := s.Service.RotateClusterCredentials(ctx, ref, conn)
	if err == nil {
		s.log.InfoContext(ctx, "cluster credentials rotated", "cluster", c.ID, "credential", c.CredentialID)
	}
	return c, err
}

func (s *loggingService) DeleteCluster(ctx context.Context, ref string, force bool) error {
	err := s.Service.DeleteCluster(ctx, ref, force)
	if err == nil {
		s.log.InfoContext(ctx, "cluster deleted", "cluster", ref, "force", force)
	}
	return err
}

func (s *loggingService) GetClusterConfig(ctx context.Context, ref string) ([]byte, error) {
	cfg, err := s.Service.GetClusterConfig(ctx, ref)
	if err == nil {
		s.log.InfoContext(ctx, "cluster kubeconfig downloaded", "cluster", ref)
	}
	return cfg, err
}

func (s *loggingService) CreateCredential(ctx context.Context, in NewCredential) (Credential, error) {
	c, err := s.Service.CreateCredential(ctx, in)
	if err == nil {
		s.log.InfoContext(ctx, "credential created", "credential", c.ID, "name", c.Name, "type", string(c.Type))
	}
	return c, err
}

func (s *loggingService) UpdateCredential(ctx context.Context, ref string, u CredentialUpdate) (Credential, error) {
	c, err := s.Service.UpdateCredential(ctx, ref, u)
	if err == nil {
		s.log.InfoContext(ctx, "credential updated", "credential", c.ID, "version", c.Version, "rotated", u.Secret != nil)
	}
	return c, err
}

func (s *loggingService) DeleteCredential(ctx context.Context, ref string) error {
	err := s.Service.DeleteCredential(ctx, ref)
	if err == nil {
		s.log.InfoContext(ctx, "credential deleted", "credential", ref)
	}
	return err
}

// InstrumentingMiddleware counts changes and secret reads by outcome.
func InstrumentingMiddleware(reg prometheus.Registerer) Middleware {
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "slipway",
		Subsystem: "clusters",
		Name:      "changes_total",
		Help:      "Changes to clusters and credentials, and secret resolutions for other services, by operation and outcome.",
	}, []string{"operation", "outcome"})
	reg.MustRegister(calls)
	return func(next Service) Service { return &instrumentingService{Service: next, calls: calls} }
}

type instrumentingService struct {
	Service
	calls *prometheus.CounterVec
}

func (s *instrumentingService) count(op string, err error) {
	s.calls.WithLabelValues(op, errorTable.Outcome(err)).Inc()
}

func (s *instrumentingService) RegisterCluster(ctx context.Context, in NewCluster) (Cluster, error) {
	c, err := s.Service.RegisterCluster(ctx, in)
	s.count("register_cluster", err)
	return c, err
}

func (s *instrumentingService) RotateClusterCredentials(ctx context.Context, ref string, conn Connection) (Cluster, error) {
	c, err := s.Service.RotateClusterCredentials(ctx, ref, conn)
	s.count("rotate_cluster_credentials", err)
	return c, err
}

func (s *instrumentingService) DeleteCluster(ctx context.Context, ref string, force bool) error {
	err := s.Service.DeleteCluster(ctx, ref, force)
	s.count("delete_cluster", err)
	return err
}

func (s *instrumentingService) CheckCluster(ctx context.Context, ref string) (kube.Health, error) {
	h, err := s.Service.CheckCluster(ctx, ref)
	s.count("check_cluster", err)
	return h, err
}

func (s *instrumentingService) CreateCredential(ctx context.Context, in NewCredential) (Credential, error) {
	c, err := s.Service.CreateCredential(ctx, in)
	s.count("create_credential", err)
	return c, err
}

func (s *instrumentingService) UpdateCredential(ctx context.Context, ref string, u CredentialUpdate) (Credential, error) {
	c, err := s.Service.UpdateCredential(ctx, ref, u)
	s.count("update_credential", err)
	return c, err
}

func (s *instrumentingService) DeleteCredential(ctx context.Context, ref string) error {
	err := s.Service.DeleteCredential(ctx, ref)
	s.count("delete_credential", err)
	return err
}

func (s *instrumentingService) ClusterAccess(ctx context.Context, ref string) (ClusterAccess, error) {
	a, err := s.Service.ClusterAccess(ctx, ref)
	s.count("cluster_access", err)
	return a, err
}

func (s *instrumentingService) RegistryAuth(ctx context.Context, host string) (RegistryAuth, error) {
	a, err := s.Service.RegistryAuth(ctx, host)
	s.count("registry_auth", err)
	return a, err
}

func (s *instrumentingService) RepositoryAuth(ctx context.Context, credRef, url string) (RepositoryAuth, error) {
	a, err := s.Service.RepositoryAuth(ctx, credRef, url)
	s.count("repository_auth", err)
	return a, err
}
