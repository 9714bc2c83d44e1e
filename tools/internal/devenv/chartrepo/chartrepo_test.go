package chartrepo_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/repo"
	"sigs.k8s.io/yaml"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/chartrepo"
	"github.com/slipwayhq/slipway/tools/internal/devenv/devenvtest"
)

func TestRepo(t *testing.T) {
	for _, tc := range []struct {
		name      string
		basicAuth bool
	}{
		{name: "open", basicAuth: false},
		{name: "basic auth", basicAuth: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := devenvtest.Start(t, chartrepo.Repo{BasicAuth: tc.basicAuth})
			env := s.Env()
			base := env[chartrepo.URLEnv]
			user, pw := env[chartrepo.UsernameEnv], env[chartrepo.PasswordEnv]
			if tc.basicAuth != (user != "" && pw != "") {
				t.Fatalf("credentials published = %t, want %t", user != "", tc.basicAuth)
			}

			if tc.basicAuth {
				for _, cred := range []struct{ name, user, pw string }{
					{name: "none"},
					{name: "wrong password", user: user, pw: "nope"},
				} {
					resp, _ := get(t, base+"/index.yaml", cred.user, cred.pw)
					if resp.StatusCode != http.StatusUnauthorized {
						t.Errorf("index.yaml with %s credentials: %s, want 401", cred.name, resp.Status)
					}
				}
			}

			resp, body := get(t, base+"/index.yaml", user, pw)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET index.yaml: %s", resp.Status)
			}
			index := loadIndex(t, body)
			for _, want := range []struct {
				chart    string
				versions []string
			}{
				{"hello", []string{"0.2.0", "0.1.0"}},
				{"configmap-only", []string{"1.0.0"}},
			} {
				var got []string
				for _, v := range index.Entries[want.chart] {
					got = append(got, v.Version)
				}
				if !slices.Equal(got, want.versions) {
					t.Errorf("index lists %s versions %v, want %v", want.chart, got, want.versions)
				}
			}

			// Every archive downloads, matches the index's digest and loads.
			for name, versions := range index.Entries {
				for _, v := range versions {
					if len(v.URLs) == 0 {
						t.Fatalf("%s %s has no URL", name, v.Version)
					}
					u := resolve(t, base, v.URLs[0])
					resp, archive := get(t, u, user, pw)
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("GET %s: %s", u, resp.Status)
					}
					sum := sha256.Sum256(archive)
					if got := hex.EncodeToString(sum[:]); got != v.Digest {
						t.Errorf("%s digest %s, index says %s", u, got, v.Digest)
					}
					ch, err := loader.LoadArchive(bytes.NewReader(archive))
					if err != nil {
						t.Fatalf("load %s: %v", u, err)
					}
					if ch.Name() != name || ch.Metadata.Version != v.Version {
						t.Errorf("%s holds %s %s, want %s %s", u, ch.Name(), ch.Metadata.Version, name, v.Version)
					}
				}
			}

			t.Run("stop leaves nothing running", func(t *testing.T) {
				group := devenvtest.GroupMembers(t, s.State)
				if len(group) == 0 {
					t.Fatal("no process of the stack found")
				}
				s.Stop()
				for _, pid := range group {
					if devenv.Alive(pid) {
						t.Errorf("pid %d still running after Stop", pid)
					}
				}
			})
		})
	}
}

// TestPackageFixtures: every fixture chart packages, and renders with its
// default values (checked against its schema) into the objects it promises.
func TestPackageFixtures(t *testing.T) {
	out := t.TempDir()
	index, err := chartrepo.Package(chartrepo.FixtureCharts(), out, "http://charts.example")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"hello-0.1.0":          {"Deployment", "Service"},
		"hello-0.2.0":          {"Deployment", "Service"},
		"configmap-only-1.0.0": {"ConfigMap"},
	}
	var packaged int
	for name, versions := range index.Entries {
		for _, v := range versions {
			packaged++
			id := name + "-" + v.Version
			ch, err := loader.Load(filepath.Join(out, id+".tgz"))
			if err != nil {
				t.Fatal(err)
			}
			vals, err := chartutil.ToRenderValues(ch, nil, chartutil.ReleaseOptions{Name: "smoke", Namespace: "default", IsInstall: true}, chartutil.DefaultCapabilities)
			if err != nil {
				t.Fatalf("%s values: %v", id, err)
			}
			files, err := engine.Render(ch, vals)
			if err != nil {
				t.Fatalf("render %s: %v", id, err)
			}
			var kinds []string
			for f, manifest := range files {
				if strings.TrimSpace(manifest) == "" || !strings.HasSuffix(f, ".yaml") {
					continue
				}
				var obj struct {
					Kind     string `json:"kind"`
					Metadata struct {
						Name string `json:"name"`
					} `json:"metadata"`
				}
				if err := yaml.Unmarshal([]byte(manifest), &obj); err != nil || obj.Kind == "" {
					t.Fatalf("%s: %s is not an object: %v\n%s", id, f, err, manifest)
				}
				if obj.Metadata.Name != "smoke" {
					t.Errorf("%s: %s %s, want it named after the release", id, obj.Kind, obj.Metadata.Name)
				}
				kinds = append(kinds, obj.Kind)
			}
			slices.Sort(kinds)
			if !slices.Equal(kinds, want[id]) {
				t.Errorf("%s renders %v, want %v", id, kinds, want[id])
			}
		}
	}
	if packaged != len(want) {
		t.Errorf("packaged %d chart versions, want %d: %v", packaged, len(want), index.Entries)
	}

	// hello 0.2.0 carries a values schema, for tests of invalid values.
	ch, err := loader.Load(filepath.Join(out, "hello-0.2.0.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string]any{"replicaCount": "two"}
	if _, err := chartutil.ToRenderValues(ch, bad, chartutil.ReleaseOptions{Name: "smoke"}, chartutil.DefaultCapabilities); err == nil {
		t.Error("hello 0.2.0 accepted replicaCount \"two\"")
	}
}

func get(t *testing.T, u, user, pw string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// loadIndex parses index.yaml the way Helm does.
func loadIndex(t *testing.T, b []byte) *repo.IndexFile {
	t.Helper()
	f := filepath.Join(t.TempDir(), "index.yaml")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	index, err := repo.LoadIndexFile(f)
	if err != nil {
		t.Fatalf("parse index.yaml: %v\n%s", err, b)
	}
	return index
}

// resolve reads an index URL as Helm does: relative to the repository.
func resolve(t *testing.T, base, ref string) string {
	t.Helper()
	b, err := url.Parse(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	r, err := url.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	return b.ResolveReference(r).String()
}
