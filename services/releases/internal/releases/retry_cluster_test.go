package releases

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/testenv"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
	"github.com/slipwayhq/slipway/services/releases/internal/ops"
)

// kubeconfigAccess hands out the access of one admin kubeconfig, as the
// clusters service would.
type kubeconfigAccess struct{ ca *clustersv1.ClusterAccess }

func (k kubeconfigAccess) ClusterAccess(context.Context, string, string) (*clustersv1.ClusterAccess, error) {
	return k.ca, nil
}

func loadAccess(t *testing.T, path string) *clustersv1.ClusterAccess {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := kc.Contexts[kc.CurrentContext]
	cl, user := kc.Clusters[c.Cluster], kc.AuthInfos[c.AuthInfo]
	return &clustersv1.ClusterAccess{ClusterId: "cl_retry", Server: cl.Server, TlsServerName: cl.TLSServerName,
		CertificateAuthorityPem: cl.CertificateAuthorityData, ClientCertificatePem: user.ClientCertificateData,
		ClientKeyPem: user.ClientKeyData, BearerToken: user.Token, CredentialId: "cred_retry", CredentialVersion: 1}
}

// TestRetryFinishesWhatAnAttemptMade: a worker that died after Helm had
// made its operation's revision, before the operation was marked ended,
// leaves the next attempt to finish with that revision; Helm is not
// called again (a second revision for one operation was what
// BenchmarkReplicasUnderLoad found).
func TestRetryFinishesWhatAnAttemptMade(t *testing.T) {
	env := testenv.Get(t, "kube")
	ca := loadAccess(t, env["KUBECONFIG_C1"])
	ctx := t.Context()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "releases.db")
	store, err := ops.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	ledger, err := OpenLedger(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ledger.Close() })
	exec := helmexec.New(helmexec.Options{})
	key, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := identity.NewServiceSigner("releases", key, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	caller, err := identity.NewServiceCaller(signer)
	if err != nil {
		t.Fatal(err)
	}

	ns := "retry-" + strings.ToLower(strings.TrimPrefix(t.Name(), "Test"))[:12] + "-" + time.Now().Format("150405")
	ch := &chart.Chart{
		Metadata:  &chart.Metadata{APIVersion: "v2", Name: "cm", Version: "1.0.0"},
		Templates: []*chart.File{{Name: "templates/cm.yaml", Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  greeting: {{ .Values.greeting | quote }}\n")}},
	}
	req := helmexec.Request{Access: helmexec.AccessFromProto(ca), Namespace: ns, Release: "cm", Chart: ch, CreateNamespace: true}
	for _, greeting := range []string{"one", "two"} {
		req.Values = map[string]any{"greeting": greeting}
		if _, err := exec.Upgrade(ctx, req); err != nil {
			t.Fatal(err)
		}
	}

	// The dead worker: it claimed a rollback to 1, Helm made revision 3,
	// and it died before marking the operation ended.
	payload, _ := json.Marshal(job{Revision: 1})
	op, _, err := store.Enqueue(ctx, ops.EnqueueRequest{Org: "acme", Kind: ops.KindRollback, Target: ops.Target{Cluster: "c1", Namespace: ns, Release: "cm"}, Payload: payload, Creator: "user:ada"})
	if err != nil {
		t.Fatal(err)
	}
	leases, err := store.Claim(ctx, "dead-worker", 1, 200*time.Millisecond)
	if err != nil || len(leases) != 1 {
		t.Fatalf("claim = %v, %v", leases, err)
	}
	if err := store.Start(ctx, op.ID, leases[0].Token); err != nil {
		t.Fatal(err)
	}
	rb := helmexec.Request{Access: req.Access, Namespace: ns, Release: "cm", Operation: op.ID}
	if rel, err := exec.Rollback(ctx, rb, 1); err != nil || rel.Version != 3 {
		t.Fatalf("the dead worker's rollback = %v, %v", rel, err)
	}

	w := NewWorker(store, ledger, exec, kubeconfigAccess{ca}, nil, caller, WorkerOptions{Lease: 2 * time.Second, Poll: 100 * time.Millisecond},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	var got ops.Operation
	for end := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if got, err = store.Get(ctx, "acme", op.ID); err != nil {
			t.Fatal(err)
		}
		if got.State.Terminal() {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("operation still %s after a minute", got.State)
		}
	}
	if got.State != ops.StateSucceeded || got.Attempt != 2 {
		t.Fatalf("operation %s on attempt %d (%s %s), want succeeded on attempt 2", got.State, got.Attempt, got.ErrorCode, got.ErrorMessage)
	}
	var res struct{ Revision int }
	if err := json.Unmarshal(got.Result, &res); err != nil || res.Revision != 3 {
		t.Errorf("result %s, want revision 3", got.Result)
	}
	hist, err := exec.History(ctx, req.Access, ns, "cm", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 {
		t.Errorf("Helm has %d revisions, want 3: the retry acted again", len(hist))
	}
	var said bool
	for _, e := range got.Events {
		said = said || strings.Contains(e.Message, "revision 3 was made by an interrupted attempt")
	}
	if !said {
		t.Errorf("events %+v do not say revision 3 was made by the interrupted attempt", got.Events)
	}
	rec, err := ledger.Get(ctx, ReleaseKey{"acme", "c1", ns, "cm"}, 0)
	if err != nil || rec.Revision != 3 || rec.Operation != op.ID || rec.Creator != "user:ada" {
		t.Errorf("ledger's latest = revision %d by %q (%q), %v; want 3 by the operation", rec.Revision, rec.Operation, rec.Creator, err)
	}
}
