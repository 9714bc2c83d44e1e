package e2e

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestCLIDriftCorrect: `slipway release drift` lists a scaled Deployment,
// `--correct` waits for the correct-drift operation and prints its
// outcome, and the release is in sync after it.
func TestCLIDriftCorrect(t *testing.T) {
	bin, err := buildCLI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := newOpsFixture(t)
	const name = "cli-mend"
	f.install(t, name, "0.2.0", "replicaCount: 2\n")
	cli := newSlipwayCLI(t, bin)
	cli.ok("login", "--server", f.s.GatewayURL(), "--token", f.deployer, "--name", "deployer")
	on := []string{"-c", "c1", "-n", f.ns}

	ctx := context.Background()
	kc := f.kube(t)
	if _, err := kc.AppsV1().Deployments(f.ns).Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	r := cli.ok(append([]string{"release", "drift", name, "--diff"}, on...)...)
	if !strings.Contains(r.stdout, "deployment/"+name) || !strings.Contains(r.stdout, "modified") || !strings.Contains(r.stdout, "+  replicas: 3") {
		t.Errorf("release drift --diff after a scale:\n%s", r)
	}
	if r := cli.run(append([]string{"release", "drift", name, "--diff", "--correct"}, on...)...); r.code == 0 {
		t.Errorf("--diff with --correct: %s", r)
	}
	r = cli.ok(append([]string{"release", "drift", name, "--correct"}, on...)...)
	t.Logf("slipway release drift --correct, on a pipe:\n%s%s", r.stderr, r.stdout)
	if !strings.Contains(r.stdout, " succeeded in ") || !strings.Contains(r.stderr, "Deployment "+f.ns+"/"+name+": patched spec.replicas") {
		t.Errorf("release drift --correct:\n%s", r)
	}
	d, err := kc.AppsV1().Deployments(f.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %d after release drift --correct, want 2", *d.Spec.Replicas)
	}
	r = cli.ok(append([]string{"release", "drift", name}, on...)...)
	if !strings.HasPrefix(r.stdout, "no drift from revision 1\n") || !strings.Contains(r.stdout, "Last periodic check") {
		t.Errorf("release drift after the correction (the correction's check is the last one):\n%s", r)
	}
}
