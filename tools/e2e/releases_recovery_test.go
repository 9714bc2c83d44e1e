package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/slipwayhq/slipway/pkg/oidctest"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
)

// auditJSON is an audit event as REST shows it.
type auditJSON struct {
	ID, Actor, Action, Target, Detail string
	Result                            int
}

// TestAbandonedRelease: releases a writer left pending-upgrade and
// pending-install, with no Slipway operation on them (as a `helm` run or a
// replica killed mid-way leaves them), are found by the releases service's
// sweep on its own: the upgrade rolled back to the last deployed revision,
// the install marked failed and never uninstalled; each by a recover
// operation, recorded in the ledger and in the org's audit log, which
// another org does not see.
func TestAbandonedRelease(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	f := newOpsFixture(t, "SLIPWAY_RELEASES_SWEEP_INTERVAL=1s", "SLIPWAY_RELEASES_STUCK_AFTER=3s", "SLIPWAY_GATEWAY_OIDC_ISSUER="+iss.URL())
	f.install(t, "stuck-up", "0.1.0", "message: \"good\"\n")
	secrets := f.helmSecrets(t)

	// What a writer dying mid-upgrade leaves: revision 2 pending-upgrade.
	cur, err := secrets.Get("sh.helm.release.v1.stuck-up.v1")
	if err != nil {
		t.Fatal(err)
	}
	stuck := *cur
	info := *cur.Info
	info.Status, info.Description = release.StatusPendingUpgrade, "Preparing upgrade"
	stuck.Info, stuck.Version = &info, 2
	if err := secrets.Create("sh.helm.release.v1.stuck-up.v2", &stuck); err != nil {
		t.Fatal(err)
	}
	// And one dying mid-install of a release Slipway never knew.
	fresh := *cur
	finfo := *cur.Info
	finfo.Status = release.StatusPendingInstall
	fresh.Name, fresh.Info = "stuck-in", &finfo
	if err := secrets.Create("sh.helm.release.v1.stuck-in.v1", &fresh); err != nil {
		t.Fatal(err)
	}
	planted := time.Now()

	eventually(t, 2*time.Minute, "both releases recovered", func() bool {
		up, in := f.helmRecords(t, "stuck-up"), f.helmRecords(t, "stuck-in")
		return len(up) == 3 && up[2].status == "deployed" && len(in) == 1 && in[0].status == "failed"
	})
	t.Logf("recovered %s after the pending revisions were written (stuck-after 3s, sweep every 1s)", time.Since(planted).Round(time.Millisecond))
	// (stuck-in's record stays: marked failed, never uninstalled.)
	if got := f.helmRecords(t, "stuck-up"); got[1].status != "failed" {
		t.Errorf("helm's records of stuck-up = %v; want 2 failed", got)
	}

	var ops struct{ Operations []opJSON }
	f.expect(f.do(http.MethodGet, f.org+"/operations?kind=OPERATION_KIND_RECOVER&namespace="+f.ns, f.deployer, nil), http.StatusOK, "list recover operations").decode(t, &ops)
	byRelease := map[string]opJSON{}
	for _, op := range ops.Operations {
		byRelease[op.Result.Release.Name] = op
	}
	if op := byRelease["stuck-up"]; op.State != stateSucceeded || op.Result.Release.Revision != 3 {
		t.Errorf("recover operation of stuck-up = %+v; want succeeded with revision 3", op)
	}
	if op := byRelease["stuck-in"]; op.State != stateSucceeded || op.Result.Release.Status != "RELEASE_STATUS_FAILED" {
		t.Errorf("recover operation of stuck-in = %+v; want succeeded, the release failed", op)
	}
	if len(ops.Operations) != 2 {
		t.Errorf("%d recover operations, want one per release (sweeps every second find them once): %+v", len(ops.Operations), ops.Operations)
	}

	// The ledger serves what the recovery made.
	if rel, _ := f.release(t, "stuck-up"); rel.Revision != 3 || rel.Status != "RELEASE_STATUS_DEPLOYED" {
		t.Errorf("stuck-up = %+v; want revision 3 deployed", rel)
	}
	var hist struct{ Releases []releaseJSON }
	f.expect(f.do(http.MethodGet, f.deployments+"/stuck-up/history?namespace="+f.ns, f.deployer, nil), http.StatusOK, "history").decode(t, &hist)
	if len(hist.Releases) != 3 || hist.Releases[0].Operation != byRelease["stuck-up"].ID {
		t.Errorf("history of stuck-up = %+v; want revision 3 made by the recover operation on top", hist.Releases)
	}
	var audit struct{ Events []auditJSON }
	f.expect(f.do(http.MethodGet, f.org+"/audit?actor=service:releases", f.owner, nil), http.StatusOK, "audit log").decode(t, &audit)
	found := map[string]auditJSON{}
	for _, e := range audit.Events {
		for _, name := range []string{"stuck-up", "stuck-in"} {
			if strings.Contains(e.Target, "/deployments/"+name+"?") {
				found[name] = e
			}
		}
	}
	if e := found["stuck-up"]; e.Action != "slipway.releases.v1.ReleasesService/RecoverDeployment" ||
		!strings.Contains(e.Detail, "revision 2 pending-upgrade") || !strings.Contains(e.Detail, "rolled back to 1") {
		t.Errorf("audit event of stuck-up = %+v; want a recovery naming pending-upgrade and the rollback to 1", e)
	}
	if e := found["stuck-in"]; !strings.Contains(e.Detail, "pending-install") || strings.Contains(e.Detail, "rolled back") {
		t.Errorf("audit event of stuck-in = %+v; want the install marked failed", e)
	}
	// Merged with the gateway's own events, newest first, in one list.
	var all struct{ Events []auditJSON }
	f.expect(f.do(http.MethodGet, f.org+"/audit?page_size=1000", f.owner, nil), http.StatusOK, "whole audit log").decode(t, &all)
	sys := 0
	for i, e := range all.Events {
		if i > 0 && e.ID >= all.Events[i-1].ID {
			t.Errorf("audit event %d (%s) is not older than the one before (%s)", i, e.ID, all.Events[i-1].ID)
		}
		if e.Actor == "service:releases" {
			sys++
		}
	}
	if sys < 2 || len(all.Events) <= sys {
		t.Errorf("whole log has %d events, %d of the releases service; want both kinds", len(all.Events), sys)
	}

	// Another org sees none of it, and its owner cannot read this org's.
	bob := iss.Token(t, "bob-sub", "bob@example.com", "slipway", time.Hour)
	f.expect(f.do(http.MethodPost, "/orgs", bob, map[string]any{"name": "globex"}), http.StatusOK, "bob creates globex")
	var other struct{ Events []auditJSON }
	f.expect(f.do(http.MethodGet, "/orgs/globex/audit", bob, nil), http.StatusOK, "globex's audit log").decode(t, &other)
	for _, e := range other.Events {
		if e.Actor == "service:releases" || strings.Contains(e.Target, "stuck-") {
			t.Errorf("globex's audit log shows %+v", e)
		}
	}
	f.expect(f.do(http.MethodGet, f.org+"/audit", bob, nil), http.StatusNotFound, "bob reads default's audit log")
}

// kube is a client of cluster c1.
func (f *opsFixture) kube(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", f.env[kube.EnvKubeconfig("c1")])
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// helmSecrets is Helm's own storage of the fixture's namespace, to plant
// what a dead writer leaves.
func (f *opsFixture) helmSecrets(t *testing.T) *driver.Secrets {
	t.Helper()
	return driver.NewSecrets(f.kube(t).CoreV1().Secrets(f.ns))
}
