package helmexec

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/release"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

func dynamicClient(t testing.TB, c testCluster) dynamic.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// deleteCRD removes a CRD now and when the test ends.
func deleteCRD(t testing.TB, d dynamic.Interface, name string) {
	t.Helper()
	del := func() {
		err := d.Resource(crdResource).Delete(context.Background(), name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete CRD %s: %v", name, err)
		}
	}
	del()
	eventually(t, "CRD "+name+" gone", func() error {
		_, err := d.Resource(crdResource).Get(context.Background(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (err %v)", err)
	})
	t.Cleanup(del)
}

// TestCRDs: a chart with CRDs in crds/, which Helm creates before it
// records the release, is checked for size before that; once installed,
// its templates and objects see the new kind through the cached discovery.
// A kind created behind the executor's back is found too.
func TestCRDs(t *testing.T) {
	c := cluster1(t)
	ctx := t.Context()
	d := dynamicClient(t, c)
	deleteCRD(t, d, "widgets.helmexec.slipway.test")
	ch, err := loader.LoadDir(filepath.Join("testdata", "charts", "widgets"))
	if err != nil {
		t.Fatal(err)
	}
	e := New(Options{})
	ns := namespace(t, c, "crds")
	// Warm the cache, so discovery predates the CRDs.
	if _, err := e.Install(ctx, Request{Access: c.access, Namespace: ns, Release: "cm", Chart: loadChart(t, "configmap-only")}); err != nil {
		t.Fatal(err)
	}

	big := map[string]any{"data": map[string]any{"size": randomText(t, 800<<10)}}
	_, err = e.Install(ctx, Request{Access: c.access, Namespace: ns, Release: "w", Chart: ch, Values: big})
	wantErr(t, err, ErrRecordTooLarge)
	if _, err := d.Resource(crdResource).Get(ctx, "widgets.helmexec.slipway.test", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a refused release created its CRD (err %v)", err)
	}

	rel, err := e.Install(ctx, Request{Access: c.access, Namespace: ns, Release: "w", Chart: ch})
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	wantRelease(t, rel, 1, release.StatusDeployed, "1.0.0")
	w, err := d.Resource(schema.GroupVersionResource{Group: "helmexec.slipway.test", Version: "v1", Resource: "widgets"}).Namespace(ns).Get(ctx, "w", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("widget: %v", err)
	}
	if known, _, _ := unstructured.NestedBool(w.Object, "spec", "known"); !known {
		t.Errorf("the template did not see the new CRD in .Capabilities: %v", w.Object["spec"])
	}

	t.Run("created elsewhere", func(t *testing.T) {
		deleteCRD(t, d, "gadgets.helmexec.slipway.test")
		crd := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": "gadgets.helmexec.slipway.test"},
			"spec": map[string]any{
				"group": "helmexec.slipway.test", "scope": "Namespaced",
				"names": map[string]any{"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
				"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
					"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
			},
		}}
		if _, err := d.Resource(crdResource).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		gadgets := schema.GroupVersionResource{Group: "helmexec.slipway.test", Version: "v1", Resource: "gadgets"}
		eventually(t, "gadgets served", func() error {
			_, err := d.Resource(gadgets).Namespace(ns).List(ctx, metav1.ListOptions{})
			return err
		})
		gadget := &chart.Chart{
			Metadata: &chart.Metadata{APIVersion: "v2", Name: "gadget", Version: "1.0.0"},
			Templates: []*chart.File{{Name: "templates/gadget.yaml", Data: []byte(
				"apiVersion: helmexec.slipway.test/v1\nkind: Gadget\nmetadata:\n  name: {{ .Release.Name }}\n")}},
		}
		if _, err := e.Install(ctx, Request{Access: c.access, Namespace: ns, Release: "g", Chart: gadget}); err != nil {
			t.Fatalf("install of a kind created after discovery was cached: %v", err)
		}
		if _, err := d.Resource(gadgets).Namespace(ns).Get(ctx, "g", metav1.GetOptions{}); err != nil {
			t.Errorf("gadget: %v", err)
		}
	})
}
