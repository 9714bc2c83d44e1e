package e2e

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/slipwayhq/slipway/tools/internal/devenv/chartrepo"
)

// packageFixture is a fixture chart packaged as `helm package` does.
func packageFixture(t *testing.T, dir string) []byte {
	t.Helper()
	ch, err := loader.LoadDir(filepath.Join(chartrepo.FixtureCharts(), dir))
	if err != nil {
		t.Fatal(err)
	}
	file, err := chartutil.Save(ch, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// checkChartSources installs and upgrades releases from the two chart
// sources that are no catalog chart: an oci:// reference (fetched with the
// credential of the org's OCI repository holding it, refused where the
// org has none) and an uploaded archive (checked at once, and refused
// when it is no chart or too large); the values route serves the
// computed values too.
func checkChartSources(t *testing.T, s *stack, env map[string]string, owner, deployer, deployments, ns string, submit func(string, string, map[string]any) operationJSON) {
	t.Helper()
	org := deployments[:strings.Index(deployments, "/clusters/")]
	host, user, pass := env["OCI_REGISTRY"], env["OCI_REGISTRY_USERNAME"], env["OCI_REGISTRY_PASSWORD"]
	pushChart(t, host, user, pass, "hello-0.1.0", "e2e-sources")
	pushChart(t, host, user, pass, "hello-0.2.0", "e2e-sources")
	s.expect(s.do(http.MethodPost, org+"/credentials", owner, map[string]any{"name": "oci-sources", "endpoint": "oci://" + host + "/e2e-sources",
		"helm_repository": map[string]any{"basic_auth": map[string]string{"username": user, "password": pass}}}),
		http.StatusOK, "record the OCI registry's login")
	s.expect(s.do(http.MethodPost, org+"/repositories", owner, map[string]any{"name": "oci-sources", "url": "oci://" + host + "/e2e-sources",
		"credential_id": "oci-sources", "oci_charts": []string{"hello"}}), http.StatusOK, "add the OCI repository")

	oci := func(version string) map[string]any {
		return map[string]any{"oci_reference": "oci://" + host + "/e2e-sources/hello:" + version}
	}
	op := submit(http.MethodPost, deployments, map[string]any{"name": "from-oci", "namespace": ns, "chart": oci("0.1.0")})
	if !strings.HasSuffix(op.State, "SUCCEEDED") || op.Result.Release.ChartVersion != "0.1.0" {
		t.Fatalf("install from an OCI reference: %+v", op)
	}
	op = submit(http.MethodPut, deployments+"/from-oci", map[string]any{"namespace": ns, "chart": oci("0.2.0"), "values_yaml": "message: from oci\n"})
	if !strings.HasSuffix(op.State, "SUCCEEDED") || op.Result.Release.Revision != 2 || op.Result.Release.ChartVersion != "0.2.0" {
		t.Fatalf("upgrade from an OCI reference: %+v", op)
	}
	var rel struct {
		Release struct {
			ChartSource string `json:"chart_source"`
			ChartDigest string `json:"chart_digest"`
		}
	}
	s.expect(s.do(http.MethodGet, deployments+"/from-oci?namespace="+ns, deployer, nil), http.StatusOK, "get the OCI release").decode(t, &rel)
	if rel.Release.ChartSource != "oci:oci://"+host+"/e2e-sources/hello:0.2.0" || !strings.HasPrefix(rel.Release.ChartDigest, "sha256:") {
		t.Errorf("OCI release records source %q, digest %q", rel.Release.ChartSource, rel.Release.ChartDigest)
	}
	var values struct {
		ValuesYaml string `json:"values_yaml"`
	}
	s.expect(s.do(http.MethodGet, deployments+"/from-oci/values?namespace="+ns, deployer, nil), http.StatusOK, "values").decode(t, &values)
	if values.ValuesYaml != "message: from oci\n" {
		t.Errorf("supplied values = %q", values.ValuesYaml)
	}
	s.expect(s.do(http.MethodGet, deployments+"/from-oci/values?namespace="+ns+"&all=true", deployer, nil), http.StatusOK, "computed values").decode(t, &values)
	if !strings.Contains(values.ValuesYaml, "message: from oci") || !strings.Contains(values.ValuesYaml, "replicaCount: 1") || !strings.Contains(values.ValuesYaml, "port: 80") {
		t.Errorf("computed values = %q; want the supplied message over the chart's defaults", values.ValuesYaml)
	}
	// Where the org holds no repository, the registry is asked
	// anonymously, and this one wants a login: the operation says so.
	pushChart(t, host, user, pass, "hello-0.1.0", "elsewhere")
	op = submit(http.MethodPost, deployments, map[string]any{"name": "no-login", "namespace": ns,
		"chart": map[string]any{"oci_reference": "oci://" + host + "/elsewhere/hello:0.1.0"}})
	if !strings.HasSuffix(op.State, "FAILED") || !strings.Contains(strings.ToLower(op.Error.Message), "auth") {
		t.Errorf("install from a registry path the org has no login for: %+v; want a failure naming authentication", op)
	}
	for _, bad := range []string{"https://" + host + "/e2e-sources/hello:0.1.0", "oci://" + host + "/e2e-sources/hello", "oci://hello:0.1.0"} {
		a := s.do(http.MethodPost, deployments, deployer, map[string]any{"name": "bad-ref", "namespace": ns, "chart": map[string]any{"oci_reference": bad}})
		if a.status != http.StatusBadRequest || !strings.Contains(string(a.body), "chart.oci_reference") {
			t.Errorf("install from %q: %d %s; want 400 naming chart.oci_reference", bad, a.status, a.body)
		}
	}

	tgz := packageFixture(t, "hello-0.2.0")
	op = submit(http.MethodPost, deployments, map[string]any{"name": "from-tgz", "namespace": ns, "chart": map[string]any{"archive": tgz}})
	if !strings.HasSuffix(op.State, "SUCCEEDED") || op.Result.Release.ChartVersion != "0.2.0" {
		t.Fatalf("install from an uploaded archive: %+v", op)
	}
	op = submit(http.MethodPut, deployments+"/from-tgz", map[string]any{"namespace": ns, "chart": map[string]any{"archive": packageFixture(t, "hello-0.1.0")}})
	if !strings.HasSuffix(op.State, "SUCCEEDED") || op.Result.Release.Revision != 2 || op.Result.Release.ChartVersion != "0.1.0" {
		t.Fatalf("upgrade from an uploaded archive: %+v", op)
	}
	s.expect(s.do(http.MethodGet, deployments+"/from-tgz?namespace="+ns, deployer, nil), http.StatusOK, "get the uploaded release").decode(t, &rel)
	if rel.Release.ChartSource != "upload:hello@0.1.0" {
		t.Errorf("uploaded release records source %q", rel.Release.ChartSource)
	}
	for name, archive := range map[string][]byte{
		"not a chart": []byte("just some bytes"),
		"too large":   bytes.Repeat([]byte{0}, 1<<20+1),
	} {
		a := s.do(http.MethodPost, deployments, deployer, map[string]any{"name": "bad-tgz", "namespace": ns, "chart": map[string]any{"archive": archive}})
		if a.status != http.StatusBadRequest || !strings.Contains(string(a.body), "chart.archive") {
			t.Errorf("upload %s: %d %s; want 400 naming chart.archive", name, a.status, a.body)
		}
	}
	for _, name := range []string{"from-oci", "from-tgz"} {
		if op := submit(http.MethodDelete, deployments+"/"+name+"?namespace="+ns, nil); !strings.HasSuffix(op.State, "SUCCEEDED") {
			t.Errorf("uninstall %s: %+v", name, op)
		}
	}
}
