package catalog

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
)

// TestRepositoryCut: with a synced repository's server gone (connections
// refused), the stored index still answers, a version's files (which need
// the archive) are UNAVAILABLE naming the repository and its host, and a
// sync fails with last_error naming the host.
func TestRepositoryCut(t *testing.T) {
	e := newEnv(t, sqltest.SQLite(t), Limits{})
	repo := newChartRepo(t, false, fixtureCharts()...)
	if _, err := e.svc.CreateRepository(as("acme", identity.RoleAdmin), NewRepository{Name: "main", URL: repo.srv.URL}); err != nil {
		t.Fatal(err)
	}
	e.sync(t)
	host := strings.TrimPrefix(repo.srv.URL, "http://")
	repo.srv.Listener.Close() // refuses new connections; the handler stays
	repo.srv.CloseClientConnections()

	viewer := as("acme", identity.RoleViewer)
	if _, err := e.svc.GetChart(viewer, "main", "hello", PageRequest{}); err != nil {
		t.Fatalf("a chart from the stored index with the server gone: %v", err)
	}
	_, err := e.svc.GetChartVersion(viewer, "main", "hello", "1.0.0")
	wantCode(t, err, codes.Unavailable)
	if msg := err.Error(); !strings.Contains(msg, "repository main") || !strings.Contains(msg, host) {
		t.Errorf("version files with the server gone: %q, want it to name repository main and %s", msg, host)
	}
	if _, err := e.svc.SyncRepository(as("acme", identity.RoleDeployer), "main"); err != nil {
		t.Fatal(err)
	}
	e.sync(t)
	r, err := e.svc.GetRepository(viewer, "main")
	if err != nil {
		t.Fatal(err)
	}
	if r.Sync.State != SyncFailed || !strings.Contains(r.Sync.LastError, host) || r.Sync.ChartCount == 0 {
		t.Errorf("sync with the server gone: %+v, want failed naming %s with the stored index kept", r.Sync, host)
	}
}
