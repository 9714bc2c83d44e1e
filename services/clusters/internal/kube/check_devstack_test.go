package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/slipwayhq/slipway/pkg/testenv"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestCheckDevstack checks the devstack's real API server (RBAC on) with
// an admin certificate, a ServiceAccount that may only read pods, a token
// it never issued, and a CA that did not sign it.
func TestCheckDevstack(t *testing.T) {
	env := testenv.Get(t, "kube")
	data, err := os.ReadFile(env["KUBECONFIG_C1"])
	if err != nil {
		t.Fatalf("read the devstack kubeconfig: %v", err)
	}
	admin, err := ParseKubeconfig(data, "")
	if err != nil {
		t.Fatalf("the devstack's admin kubeconfig is refused: %v", err)
	}
	if admin.Server != env["KUBE_C1_SERVER"] || admin.credential() != "client-certificate" {
		t.Fatalf("admin connection = %v; want %s with a client certificate", admin, env["KUBE_C1_SERVER"])
	}
	ctx := t.Context()

	t.Run("admin", func(t *testing.T) {
		h, p := Check(ctx, admin.RESTConfig(dialer))
		t.Logf("health %+v, permissions %+v", h, p)
		if h.Reachability != Reachable || !strings.HasPrefix(h.Version, "v1.") || h.Nodes < 1 || h.Message != "" {
			t.Errorf("Check(admin) = %+v; want reachable, a v1.x version, nodes, no message", h)
		}
		if !p.CreateNamespaces || !p.CreateSecrets {
			t.Errorf("Check(admin) permissions = %+v; want both", p)
		}
		assertNoSecret(t, "Health.Message", h.Message, admin.ClientKeyPEM)
	})

	// A ServiceAccount that may only get pods in its namespace.
	cs, err := kubernetes.NewForConfig(admin.RESTConfig(dialer))
	if err != nil {
		t.Fatal(err)
	}
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	ns := "kube-check-" + hex.EncodeToString(suffix)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		// t.Context is done by now.
		if err := cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete namespace %s: %v", ns, err)
		}
	})
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service account: %v", err)
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "get-pods"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role: %v", err)
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reader-get-pods"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "get-pods"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "reader", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role binding: %v", err)
	}
	expiry := int64(600)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "reader", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("request a token: %v", err)
	}
	saToken := tr.Status.Token

	t.Run("service account that may only get pods", func(t *testing.T) {
		sa, err := NewConnection(admin.Server, admin.CAPEM, admin.TLSServerName, saToken, nil, nil)
		if err != nil {
			t.Fatalf("NewConnection with the issued token: %v", err)
		}
		h, p := Check(ctx, sa.RESTConfig(dialer))
		t.Logf("health %+v, permissions %+v", h, p)
		if h.Reachability != Reachable || !strings.HasPrefix(h.Version, "v1.") || h.Nodes != 0 {
			t.Errorf("Check(service account) = %+v; want reachable, a version, no node count", h)
		}
		if !strings.Contains(h.Message, "not allowed to list nodes") {
			t.Errorf("Check(service account) message = %q; want it to say nodes cannot be listed", h.Message)
		}
		if p.CreateNamespaces || p.CreateSecrets {
			t.Errorf("Check(service account) permissions = %+v; want none", p)
		}
		assertNoSecret(t, "Health.Message", h.Message, []byte(saToken))
	})

	t.Run("token the server never issued", func(t *testing.T) {
		garbage := marker(t, "garbage")
		c, err := NewConnection(admin.Server, admin.CAPEM, admin.TLSServerName, garbage, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		h, p := Check(ctx, c.RESTConfig(dialer))
		t.Logf("health %+v", h)
		if h.Reachability != Unauthorized || h.Message != "credentials rejected (401)" || p != (Permissions{}) {
			t.Errorf("Check(garbage token) = %+v, %+v; want unauthorized (401)", h, p)
		}
		assertNoSecret(t, "Health.Message", h.Message, []byte(garbage))
	})

	t.Run("CA that does not sign the server", func(t *testing.T) {
		c, err := NewConnection(admin.Server, newCA(t, "not-the-cluster-ca").PEM, admin.TLSServerName, "", admin.ClientCertPEM, admin.ClientKeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := Check(ctx, c.RESTConfig(dialer))
		t.Logf("health %+v", h)
		if h.Reachability != Unreachable || !strings.Contains(h.Message, "unknown authority") {
			t.Errorf("Check(wrong CA) = %v %q; want unreachable, unknown authority", h.Reachability, h.Message)
		}
		assertNoSecret(t, "Health.Message", h.Message, admin.ClientKeyPEM)
	})

	t.Run("admin kubeconfig round trip", func(t *testing.T) {
		out, err := admin.Kubeconfig("devstack")
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseKubeconfig(out, "devstack")
		if err != nil {
			t.Fatal(err)
		}
		if h, _ := Check(ctx, back.RESTConfig(dialer)); h.Reachability != Reachable {
			t.Errorf("Check of the round-tripped admin connection = %+v", h)
		}
	})
}
