package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/slipwayhq/slipway/pkg/client"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/oidctest"
	"github.com/slipwayhq/slipway/pkg/testenv"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
	"github.com/slipwayhq/slipway/tools/internal/devenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/devenvtest"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
	"github.com/slipwayhq/slipway/tools/internal/devenv/vault"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

type clusterJSON struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Server       string            `json:"server"`
	CredentialID string            `json:"credential_id"`
	Labels       map[string]string `json:"labels"`
	Health       struct {
		Reachability      string `json:"reachability"`
		KubernetesVersion string `json:"kubernetes_version"`
		NodeCount         int    `json:"node_count"`
		LastCheckTime     string `json:"last_check_time"`
		Message           string `json:"message"`
	} `json:"health"`
}

// kubeFixture is the devstack cluster as an org would bring it: its admin
// kubeconfig, and service account tokens made for the test.
type kubeFixture struct {
	server     string
	caPEM      []byte
	kubeconfig []byte
	clientKey  []byte
	cs         kubernetes.Interface
	namespace  string
}

func newKubeFixture(t *testing.T, env testenv.Env) *kubeFixture {
	t.Helper()
	path := env[kube.EnvKubeconfig("c1")]
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	ctxName := cfg.CurrentContext
	kctx := cfg.Contexts[ctxName]
	rc, err := kube.RESTConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	f := &kubeFixture{
		server: env[kube.EnvServer("c1")], caPEM: cfg.Clusters[kctx.Cluster].CertificateAuthorityData,
		kubeconfig: raw, clientKey: cfg.AuthInfos[kctx.AuthInfo].ClientKeyData, cs: cs,
		namespace: "e2e-" + strings.ToLower(rand.Text()[:8]),
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), f.namespace, metav1.DeleteOptions{})
		_ = cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), f.namespace+"-deployer", metav1.DeleteOptions{})
	})
	for _, sa := range []string{"deployer", "weak"} {
		if _, err := cs.CoreV1().ServiceAccounts(f.namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: f.namespace + "-deployer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "deployer", Namespace: f.namespace}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return f
}

// token issues a fresh token of service account sa.
func (f *kubeFixture) token(t *testing.T, sa string) string {
	t.Helper()
	exp := int64(3600)
	tr, err := f.cs.CoreV1().ServiceAccounts(f.namespace).CreateToken(context.Background(), sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

func (f *kubeFixture) direct(token string) map[string]any {
	return map[string]any{"server": f.server, "certificate_authority_pem": f.caPEM, "bearer_token": token}
}

// plantedKubeconfig is the admin kubeconfig plus a user entry no context
// uses, carrying marker: it must be dropped, never stored or echoed.
func (f *kubeFixture) plantedKubeconfig(t *testing.T, marker string) []byte {
	t.Helper()
	cfg, err := clientcmd.Load(f.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AuthInfos["unused"] = &clientcmdapi.AuthInfo{Token: marker}
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestClusters is the clusters and credentials API end to end: register
// from a kubeconfig and from a server connection against the real
// apiserver, health, list pages, relabel, rotate, refuse what must be
// refused, /config for admins only, credentials, delete (Vault data gone),
// other orgs see nothing through REST or the internal RPCs, the audit log,
// and no secret anywhere in what Slipway said.
func TestClusters(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real stack")
	}
	env := testenv.Get(t, "vault", "kube", "registry")
	k := newKubeFixture(t, env)
	traces := newOTLPReceiver(t)
	// People sign in with OIDC: a second person brings a second org.
	iss := oidctest.NewIssuer(t)
	s := startStack(t, env, append(traces.env(), "SLIPWAY_GATEWAY_OIDC_ISSUER="+iss.URL())...)
	owner := s.owner()
	deployer := s.token(localrun.BootstrapOrg, owner, "DEPLOYER")
	org := "/orgs/" + localrun.BootstrapOrg

	canary := "CANARY-" + rand.Text()
	deployToken := k.token(t, "deployer")
	secrets := []string{canary, deployToken, string(k.clientKey), base64.StdEncoding.EncodeToString(k.clientKey)}

	// Register from a kubeconfig: checked against the apiserver first.
	var reg struct{ Cluster clusterJSON }
	s.expect(s.do(http.MethodPost, org+"/clusters", owner, map[string]any{
		"name": "c1", "labels": map[string]string{"env": "dev"},
		"kubeconfig": map[string]any{"kubeconfig": k.plantedKubeconfig(t, canary)},
	}), http.StatusOK, "register from kubeconfig").decode(t, &reg)
	c1 := reg.Cluster
	if c1.Server != k.server || c1.Health.Reachability != "CLUSTER_REACHABILITY_REACHABLE" ||
		!strings.HasPrefix(c1.Health.KubernetesVersion, "v1.") || c1.Health.NodeCount < 1 || c1.Health.LastCheckTime == "" {
		t.Errorf("registered %+v", c1)
	}

	// And from a server URL, CA and service account token.
	var reg2 struct{ Cluster clusterJSON }
	s.expect(s.do(http.MethodPost, org+"/clusters", owner, map[string]any{"name": "c1-sa", "server_connection": k.direct(deployToken)}),
		http.StatusOK, "register from a server connection").decode(t, &reg2)
	sa := reg2.Cluster

	// Refusals: unreachable, rejected, not allowed to deploy, bad input.
	closed := closedPort(t)
	for _, tc := range []struct {
		name, code, says string
		body             map[string]any
		status           int
	}{
		{"unreachable", "failed_precondition", "connection refused", map[string]any{"name": "down",
			"server_connection": map[string]any{"server": "https://" + closed, "bearer_token": canary}}, http.StatusConflict},
		{"rejected token", "failed_precondition", "credentials rejected", map[string]any{"name": "bad",
			"server_connection": k.direct(canary)}, http.StatusConflict},
		{"no permission to deploy", "failed_precondition", "may not create namespaces", map[string]any{"name": "weak",
			"server_connection": k.direct(k.token(t, "weak"))}, http.StatusConflict},
		{"exec plugin", "invalid_argument", "exec plugins are not allowed", map[string]any{"name": "exec",
			"kubeconfig": map[string]any{"kubeconfig": []byte(execKubeconfig(k.server))}}, http.StatusBadRequest},
		{"name taken", "already_exists", "c1", map[string]any{"name": "c1", "server_connection": k.direct(deployToken)}, http.StatusConflict},
	} {
		a := s.do(http.MethodPost, org+"/clusters", owner, tc.body)
		if a.status != tc.status || a.code(t) != tc.code || !strings.Contains(string(a.body), tc.says) {
			t.Errorf("%s: %d %s; want %d %s saying %q", tc.name, a.status, a.body, tc.status, tc.code, tc.says)
		}
	}
	s.expect(s.do(http.MethodPost, org+"/clusters", deployer, map[string]any{"name": "x", "server_connection": k.direct(deployToken)}), http.StatusForbidden, "deployer registers")

	// List in pages, filtered by label; relabel.
	var page struct {
		Clusters      []clusterJSON
		NextPageToken string `json:"next_page_token"`
	}
	s.expect(s.do(http.MethodGet, org+"/clusters?page_size=1", deployer, nil), http.StatusOK, "list").decode(t, &page)
	if len(page.Clusters) != 1 || page.Clusters[0].Name != "c1" || page.NextPageToken == "" {
		t.Errorf("first page %+v", page)
	}
	s.expect(s.do(http.MethodGet, org+"/clusters?page_size=1&page_token="+page.NextPageToken, deployer, nil), http.StatusOK, "list page 2").decode(t, &page)
	if len(page.Clusters) != 1 || page.Clusters[0].Name != "c1-sa" || page.NextPageToken != "" {
		t.Errorf("second page %+v", page)
	}
	s.expect(s.do(http.MethodPatch, org+"/clusters/c1-sa", owner, map[string]any{"labels": map[string]string{"env": "prod"}, "update_mask": "labels"}), http.StatusOK, "relabel")
	s.expect(s.do(http.MethodGet, org+"/clusters?label_selector=env%3Dprod", deployer, nil), http.StatusOK, "list by label").decode(t, &page)
	if len(page.Clusters) != 1 || page.Clusters[0].ID != sa.ID {
		t.Errorf("env=prod lists %+v, want only c1-sa", page.Clusters)
	}

	// Health on demand.
	var check struct{ Health struct{ Reachability string } }
	s.expect(s.do(http.MethodPost, org+"/clusters/c1:check", owner, map[string]any{}), http.StatusOK, "check").decode(t, &check)
	if check.Health.Reachability != "CLUSTER_REACHABILITY_REACHABLE" {
		t.Errorf("check = %+v", check)
	}

	// Rotate: a rejected token changes nothing; a good one is a new version.
	a := s.do(http.MethodPost, org+"/clusters/c1-sa:rotateCredentials", owner, map[string]any{"server_connection": k.direct(canary)})
	if a.status != http.StatusConflict {
		t.Errorf("rotate to a rejected token: %d %s", a.status, a.body)
	}
	newToken := k.token(t, "deployer")
	secrets = append(secrets, newToken)
	s.expect(s.do(http.MethodPost, org+"/clusters/c1-sa:rotateCredentials", owner, map[string]any{"server_connection": k.direct(newToken)}), http.StatusOK, "rotate")
	var cred struct{ Credential struct{ Version string } }
	s.expect(s.do(http.MethodGet, org+"/credentials/"+sa.CredentialID, deployer, nil), http.StatusOK, "get owned credential").decode(t, &cred)
	if cred.Credential.Version != "2" {
		t.Errorf("owned credential version after rotation = %q, want 2", cred.Credential.Version)
	}

	// The kubeconfig, for admins only; it connects.
	s.expect(s.do(http.MethodGet, org+"/clusters/c1-sa/config", deployer, nil), http.StatusForbidden, "config as deployer")
	var cfg struct{ Kubeconfig []byte }
	s.expect(s.do(http.MethodGet, org+"/clusters/c1-sa/config", owner, nil), http.StatusOK, "config as owner").decode(t, &cfg)
	rc, err := clientcmd.RESTConfigFromKubeConfig(cfg.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != k.server || rc.BearerToken != newToken {
		t.Errorf("downloaded kubeconfig: host %s, rotated token %v", rc.Host, rc.BearerToken == newToken)
	}
	if strings.Contains(string(cfg.Kubeconfig), canary) {
		t.Error("the planted unused kubeconfig entry was kept")
	}

	// Credentials: typed, write-only, one login per registry host.
	regCred := map[string]any{"name": "ghcr", "endpoint": "ghcr.io", "registry": map[string]any{"username": "bot", "password": canary}}
	s.expect(s.do(http.MethodPost, org+"/credentials", owner, regCred), http.StatusOK, "create registry credential")
	if a := s.do(http.MethodPost, org+"/credentials", owner, map[string]any{"name": "ghcr2", "endpoint": "ghcr.io", "registry": map[string]any{"username": "bot", "password": "x"}}); a.status != http.StatusConflict {
		t.Errorf("second login for ghcr.io: %d %s", a.status, a.body)
	}
	if a := s.do(http.MethodPost, org+"/credentials", owner, map[string]any{"name": "bad", "endpoint": "https://charts.example.com/", "helm_repository": map[string]any{}}); a.status != http.StatusBadRequest || a.code(t) != "invalid_argument" {
		t.Errorf("repository credential without auth: %d %s", a.status, a.body)
	}
	s.expect(s.do(http.MethodPost, org+"/credentials", owner, map[string]any{"name": "charts", "endpoint": "https://charts.example.com/acme",
		"helm_repository": map[string]any{"basic_auth": map[string]any{"username": "u", "password": canary + "-repo"}}}), http.StatusOK, "create repository credential")

	// Other orgs see nothing, through REST and through the internal RPCs.
	other := iss.Token(t, "bob-sub", "bob@example.com", "slipway", time.Hour)
	s.expect(s.do(http.MethodPost, "/orgs", other, map[string]any{"name": "globex"}), http.StatusOK, "bob creates org globex")
	for _, path := range []string{"/clusters/" + c1.ID, "/clusters/c1", "/clusters/c1/config", "/credentials/ghcr", "/credentials/" + sa.CredentialID} {
		if a := s.do(http.MethodGet, "/orgs/globex"+path, other, nil); a.status != http.StatusNotFound {
			t.Errorf("globex GET %s: %d %s, want 404", path, a.status, a.body)
		}
	}
	if a := s.do(http.MethodDelete, "/orgs/globex/clusters/"+c1.ID+"?force=true", other, nil); a.status != http.StatusNotFound {
		t.Errorf("globex deletes c1: %d %s", a.status, a.body)
	}
	s.expect(s.do(http.MethodGet, "/orgs/globex/clusters", other, nil), http.StatusOK, "globex lists").decode(t, &page)
	if len(page.Clusters) != 0 {
		t.Errorf("globex lists %+v", page.Clusters)
	}
	access := s.accessClient(t)
	got, err := access.conn.GetClusterAccess(access.ctx(t, localrun.BootstrapOrg), &clustersv1.GetClusterAccessRequest{Org: localrun.BootstrapOrg, Cluster: "c1-sa"})
	if err != nil || got.GetAccess().GetBearerToken() != newToken {
		t.Errorf("releases resolves its org's cluster: %v", err)
	}
	_, err = access.conn.GetClusterAccess(access.ctx(t, "globex"), &clustersv1.GetClusterAccessRequest{Org: "globex", Cluster: sa.ID})
	if status.Code(err) != codes.NotFound {
		t.Errorf("releases of globex resolves default's cluster: %v, want NotFound", err)
	}
	ra, err := access.conn.GetRegistryAuth(access.ctx(t, "globex"), &clustersv1.GetRegistryAuthRequest{Org: "globex", Host: "ghcr.io"})
	if err != nil || ra.GetFound() {
		t.Errorf("globex registry auth for ghcr.io = %v, %v; want none", ra, err)
	}

	// Delete: refused for a credential still used; the cluster's own
	// credential and its Vault data go with it.
	s.expect(s.do(http.MethodDelete, org+"/credentials/"+sa.CredentialID, owner, nil), http.StatusConflict, "delete a cluster's own credential")
	s.expect(s.do(http.MethodDelete, org+"/clusters/c1-sa?force=true", owner, nil), http.StatusOK, "delete c1-sa")
	s.expect(s.do(http.MethodGet, org+"/clusters/c1-sa", owner, nil), http.StatusNotFound, "get deleted")
	s.expect(s.do(http.MethodGet, org+"/credentials/"+sa.CredentialID, owner, nil), http.StatusNotFound, "get deleted credential")
	if v := vaultVersions(t, env, "orgs/"+localrun.BootstrapOrg+"/clusters/"+sa.ID); v != 0 {
		t.Errorf("Vault still holds %d versions of the deleted cluster's secret", v)
	}
	if v := vaultVersions(t, env, "orgs/"+localrun.BootstrapOrg+"/clusters/"+c1.ID); v != 1 {
		t.Errorf("Vault holds %d versions of c1's secret, want 1", v)
	}
	s.expect(s.do(http.MethodDelete, org+"/credentials/ghcr", owner, nil), http.StatusOK, "delete registry credential")

	// The audit log has the download and the forced delete, no secret.
	audit := s.expect(s.do(http.MethodGet, org+"/audit", owner, nil), http.StatusOK, "audit")
	for _, want := range []string{"ClustersService/GetClusterConfig", "/clusters/c1-sa?force=true", "CredentialsService/CreateCredential"} {
		if !strings.Contains(string(audit.body), want) {
			t.Errorf("audit log lacks %q", want)
		}
	}

	// The canary: nothing Slipway answered, logged or traced holds a
	// secret. Stopping the stack flushes the last spans.
	s.s.Stop()
	spans := traces.body.String()
	for _, want := range []string{"slipway-clusters", "slipway.clusters.v1.ClustersService/RegisterCluster", "slipway-gateway"} {
		if !strings.Contains(spans, want) {
			t.Errorf("no span of %q reached the OTLP receiver (%d bytes): the trace canary would prove nothing", want, len(spans))
		}
	}
	for i, secret := range append(secrets, canary+"-repo") {
		if len(secret) == 0 {
			continue
		}
		if strings.Contains(s.seen(), secret) {
			t.Errorf("secret %d appears in an answer or a log line", i)
		}
		if strings.Contains(spans, secret) {
			t.Errorf("secret %d appears in a trace", i)
		}
	}
}

// TestVaultOutage: with Vault stopped (SIGSTOP: it hangs, the worst case)
// the calls that need a secret answer 503 with Retry-After within 2 s, the
// others keep working, and everything recovers without a restart.
func TestVaultOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real stack")
	}
	env, pid := ownVault(t)
	s := startStack(t, env)
	owner := s.owner()
	org := "/orgs/" + localrun.BootstrapOrg
	k := newKubeFixture(t, env)
	s.expect(s.do(http.MethodPost, org+"/clusters", owner, map[string]any{"name": "c1", "server_connection": k.direct(k.token(t, "deployer"))}), http.StatusOK, "register")

	freeze(t, pid, true)
	start := time.Now()
	a := s.do(http.MethodGet, org+"/clusters/c1/config", owner, nil)
	took := time.Since(start)
	t.Logf("kubeconfig download with Vault stopped answered %d in %s", a.status, took)
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || a.code(t) != "unavailable" {
		t.Errorf("with Vault stopped: %d %s (Retry-After %q), want 503 unavailable with Retry-After", a.status, a.body, a.header.Get("Retry-After"))
	}
	if took >= 2*time.Second {
		t.Errorf("with Vault stopped the call took %s, want under 2 s", took)
	}
	s.expect(s.do(http.MethodGet, org+"/clusters/c1", owner, nil), http.StatusOK, "get without a secret, Vault stopped")
	s.expect(s.do(http.MethodGet, org+"/clusters", owner, nil), http.StatusOK, "list without a secret, Vault stopped")
	freeze(t, pid, false)
	eventually(t, 10*time.Second, "kubeconfig download after Vault is back", func() bool {
		return s.do(http.MethodGet, org+"/clusters/c1/config", owner, nil).status == http.StatusOK
	})
}

// ownVault is the environment with a Vault of the test's own (it is
// stopped and resumed), and that Vault's pid.
func ownVault(t *testing.T) (testenv.Env, int) {
	t.Helper()
	vs := devenvtest.Start(t, vault.Vault{})
	env := testenv.Env(vs.Env())
	// The shared environment of TestClusters, for its Kubernetes only.
	maps.Copy(env, onlyKube(testenv.Get(t, "vault", "kube", "registry")))
	procs, err := devenv.Status(vs.State)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if p.Name == "vault" && p.Running {
			return env, p.PID
		}
	}
	t.Fatalf("no running vault in %+v", procs)
	return nil, 0
}

// onlyKube keeps the Kubernetes part of an environment.
func onlyKube(env testenv.Env) testenv.Env {
	out := testenv.Env{}
	for k, v := range env {
		if strings.HasPrefix(k, "KUBE") {
			out[k] = v
		}
	}
	return out
}

// freeze stops (SIGSTOP) or resumes (SIGCONT) a process; a stopped one
// is resumed when the test ends, so that it can be shut down.
func freeze(t *testing.T, pid int, stop bool) {
	t.Helper()
	sig := syscall.SIGCONT
	if stop {
		sig = syscall.SIGSTOP
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatal(err)
	}
	if stop {
		eventually(t, 5*time.Second, "vault stopped", func() bool { return testenv.Stopped(pid) })
	}
}

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func execKubeconfig(server string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, args: ["-c", "id"]}}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`, server)
}

// vaultVersions counts the versions Vault keeps at path of the KV mount,
// reading as the clusters service (its AppRole may read metadata).
func vaultVersions(t *testing.T, env testenv.Env, path string) int {
	t.Helper()
	cfg := vaultapi.DefaultConfig()
	cfg.Address = env["VAULT_ADDR"]
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	login, err := c.Logical().Write("auth/approle/login", map[string]any{"role_id": env["VAULT_ROLE_ID_CLUSTERS"], "secret_id": env["VAULT_SECRET_ID_CLUSTERS"]})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(login.Auth.ClientToken)
	md, err := c.Logical().Read("secret/metadata/" + path)
	if err != nil {
		t.Fatal(err)
	}
	if md == nil {
		return 0
	}
	versions, _ := md.Data["versions"].(map[string]any)
	return len(versions)
}

// accessClient calls the clusters service's AccessService as the releases
// service does, with the releases service's own key from the stack state.
type accessClient struct {
	conn   clustersv1.AccessServiceClient
	caller *identity.ServiceCaller
}

func (s *stack) accessClient(t *testing.T) *accessClient {
	t.Helper()
	priv, _ := localrun.ServiceKeyPaths(s.state, "releases")
	key, err := identity.LoadPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := identity.NewServiceSigner("releases", key, 0)
	if err != nil {
		t.Fatal(err)
	}
	caller, err := identity.NewServiceCaller(signer)
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	for _, c := range s.s.Components {
		if c.Name == "clusters" {
			addr = c.Addr
		}
	}
	conn, err := client.Dial(addr, client.Config{TracerProvider: noop.NewTracerProvider()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &accessClient{conn: clustersv1.NewAccessServiceClient(conn), caller: caller}
}

func (a *accessClient) ctx(t *testing.T, org string) context.Context {
	t.Helper()
	ctx, err := a.caller.Context(context.Background(), org)
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

func eventually(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
