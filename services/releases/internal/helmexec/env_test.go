package helmexec

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/testenv"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testCluster is one of the devstack's clusters.
type testCluster struct {
	name       string
	kubeconfig string
	access     Access
	cs         kubernetes.Interface
}

// clusters returns the devstack's two clusters.
func clusters(t testing.TB) []testCluster {
	t.Helper()
	env := testenv.Get(t, "kube", "kube2")
	return []testCluster{
		loadCluster(t, "c1", env["KUBECONFIG_C1"]),
		loadCluster(t, "c2", env["KUBECONFIG_C2"]),
	}
}

func cluster1(t testing.TB) testCluster { return clusters(t)[0] }

// loadCluster builds an Access from an admin kubeconfig, as the clusters
// service would hand it out.
func loadCluster(t testing.TB, name, path string) testCluster {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatalf("load kubeconfig %s: %v", path, err)
	}
	ctx := kc.Contexts[kc.CurrentContext]
	cl, user := kc.Clusters[ctx.Cluster], kc.AuthInfos[ctx.AuthInfo]
	a := Access{
		ClusterID:         "cluster-" + name,
		Server:            cl.Server,
		TLSServerName:     cl.TLSServerName,
		CAPEM:             cl.CertificateAuthorityData,
		ClientCertPEM:     user.ClientCertificateData,
		ClientKeyPEM:      user.ClientKeyData,
		BearerToken:       user.Token,
		CredentialID:      "cred-" + name,
		CredentialVersion: 1,
	}
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	rc.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	rc.QPS, rc.Burst = 200, 400
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return testCluster{name: name, kubeconfig: path, access: a, cs: cs}
}

// loadChart loads one of the devstack's fixture charts.
func loadChart(t testing.TB, name string) *chart.Chart {
	t.Helper()
	c, err := loader.LoadDir(filepath.Join("..", "..", "..", "..", "tools", "devstack", "testdata", "charts", name))
	if err != nil {
		t.Fatalf("load chart %s: %v", name, err)
	}
	return c
}

func suffix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// namespaceName returns a fresh namespace name, not created, deleted when
// the test ends.
func namespaceName(t testing.TB, c testCluster, prefix string) string {
	t.Helper()
	ns := prefix + "-" + suffix(t)
	t.Cleanup(func() {
		err := c.cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns, err)
		}
	})
	return ns
}

// namespace returns a fresh namespace, created, deleted when the test ends.
func namespace(t testing.TB, c testCluster, prefix string) string {
	t.Helper()
	ns := namespaceName(t, c, prefix)
	if _, err := c.cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	return ns
}

// progress records the phases an action reports.
type progress struct {
	mu     sync.Mutex
	events []string
	on     func(phase, msg string)
}

func (p *progress) fn(phase, msg string) {
	p.mu.Lock()
	p.events = append(p.events, phase+": "+msg)
	on := p.on
	p.mu.Unlock()
	if on != nil {
		on(phase, msg)
	}
}

func (p *progress) phases() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, e := range p.events {
		ph, _, _ := strings.Cut(e, ": ")
		if !slices.Contains(out, ph) {
			out = append(out, ph)
		}
	}
	return out
}

func (p *progress) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.events, "\n")
}

func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v; want %v", err, want)
	}
}

func wantRelease(t testing.TB, rel *release.Release, version int, status release.Status, chartVersion string) {
	t.Helper()
	if rel == nil {
		t.Fatalf("release = nil; want revision %d %s", version, status)
	}
	if rel.Version != version || rel.Info.Status != status || rel.Chart.Metadata.Version != chartVersion {
		t.Fatalf("release %s = revision %d %s chart %s; want revision %d %s chart %s",
			rel.Name, rel.Version, rel.Info.Status, rel.Chart.Metadata.Version, version, status, chartVersion)
	}
}

// eventually polls cond until it holds or 30 s pass.
func eventually(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
