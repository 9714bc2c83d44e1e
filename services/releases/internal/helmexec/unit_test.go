package helmexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
)

func memRelease(name string, version int, status release.Status, config map[string]any) *release.Release {
	return &release.Release{
		Name: name, Namespace: "default", Version: version, Config: config,
		Info:  &release.Info{Status: status},
		Chart: &chart.Chart{Metadata: &chart.Metadata{Name: "c", Version: "1.0.0", APIVersion: "v2"}},
	}
}

// TestGuardHoldsPruning: on Helm's in-memory storage, a record too large
// to store leaves the history as it was, though Helm prunes it before
// writing; a record that fits is written after the pruning.
func TestGuardHoldsPruning(t *testing.T) {
	mem := driver.NewMemory()
	mem.SetNamespace("default")
	o := &op{ctx: context.Background(), kind: "upgrade", logf: func(string, ...any) {}}
	newStorage := func() *storage.Storage {
		g := &recordGuard{Driver: mem, o: o, hold: true}
		return &storage.Storage{Driver: g, MaxHistory: 2, Log: func(string, ...any) {}}
	}
	s := newStorage()
	for v, st := range []release.Status{release.StatusSuperseded, release.StatusDeployed} {
		if err := s.Create(memRelease("r", v+1, st, nil)); err != nil {
			t.Fatal(err)
		}
		s = newStorage()
	}
	history := func() string {
		h, err := mem.Query(map[string]string{"name": "r", "owner": "helm"})
		if err != nil {
			t.Fatal(err)
		}
		return summaryVersions(h)
	}

	big := map[string]any{"big": randomText(t, 2<<20)}
	err := s.Create(memRelease("r", 3, release.StatusPendingUpgrade, big))
	wantErr(t, err, ErrRecordTooLarge)
	if got := history(); got != "1 2" {
		t.Errorf("history after a refused record = %s; want 1 2", got)
	}

	s = newStorage()
	if err := s.Create(memRelease("r", 3, release.StatusPendingUpgrade, nil)); err != nil {
		t.Fatal(err)
	}
	if got := history(); got != "2 3" {
		t.Errorf("history after a record that fits = %s; want 2 3", got)
	}
}

func summaryVersions(h []*release.Release) string {
	vs := make([]string, 0, len(h))
	for _, v := range []int{1, 2, 3, 4} {
		for _, r := range h {
			if r.Version == v {
				vs = append(vs, fmt.Sprint(v))
			}
		}
	}
	return strings.Join(vs, " ")
}

// TestCheckRecord: the quick bound never lets through a record whose exact
// size is over the limit, and the exact size decides near the limit.
func TestCheckRecord(t *testing.T) {
	for _, kib := range []int{1, 500, 700, 760, 770, 780, 790, 800, 1000, 1500} {
		rel := memRelease("r", 1, release.StatusDeployed, map[string]any{"v": randomText(t, kib<<10)})
		size, err := recordSize(rel)
		if err != nil {
			t.Fatal(err)
		}
		err = checkRecord(rel)
		if fits := size <= maxRecordBytes; fits != (err == nil) {
			t.Errorf("%d KiB of values: record %d bytes, checkRecord = %v", kib, size, err)
		}
		if err != nil && !strings.Contains(err.Error(), fmt.Sprint(size)) {
			t.Errorf("error %q does not give the size %d", err, size)
		}
	}
}

// TestCloneChart: Helm's dependency processing, which drops disabled
// subcharts, changes the copy only.
func TestCloneChart(t *testing.T) {
	sub := &chart.Chart{Metadata: &chart.Metadata{Name: "sub", Version: "0.1.0", APIVersion: "v2"}, Values: map[string]any{"x": map[string]any{"y": 1}}}
	parent := &chart.Chart{
		Metadata: &chart.Metadata{Name: "parent", Version: "1.0.0", APIVersion: "v2",
			Dependencies: []*chart.Dependency{{Name: "sub", Version: "0.1.0", Condition: "sub.enabled"}}},
		Values: map[string]any{"sub": map[string]any{"enabled": true}},
	}
	parent.AddDependency(sub)

	c := cloneChart(parent)
	if err := chartutil.ProcessDependenciesWithMerge(c, map[string]any{"sub": map[string]any{"enabled": false}}); err != nil {
		t.Fatal(err)
	}
	if len(c.Dependencies()) != 0 || len(c.Metadata.Dependencies) != 0 {
		t.Fatalf("the copy kept its disabled subchart: %d, %d", len(c.Dependencies()), len(c.Metadata.Dependencies))
	}
	if len(parent.Dependencies()) != 1 || len(parent.Metadata.Dependencies) != 1 || parent.Metadata.Dependencies[0].Enabled {
		t.Errorf("the original changed: %d subcharts, metadata %+v", len(parent.Dependencies()), parent.Metadata.Dependencies)
	}
	c2 := cloneChart(parent)
	c2.Dependencies()[0].Values["x"].(map[string]any)["y"] = 2
	if sub.Values["x"].(map[string]any)["y"] != 1 {
		t.Error("the copy's subchart values are the original's")
	}
	if c2.Dependencies()[0].Parent() != c2 {
		t.Error("the copied subchart's parent is not the copy")
	}
}

func TestServerValidatesFields(t *testing.T) {
	for _, tc := range []struct {
		major, minor string
		want         bool
	}{
		{"1", "31", true}, {"1", "27", true}, {"1", "27+", true}, {"1", "26", false},
		{"1", "22", false}, {"2", "0", true}, {"", "", false}, {"1", "x", false},
	} {
		if got := serverValidatesFields(tc.major, tc.minor); got != tc.want {
			t.Errorf("serverValidatesFields(%q, %q) = %v; want %v", tc.major, tc.minor, got, tc.want)
		}
	}
}

// TestWrapErr: Helm's errors get the sentinel they stand for, and keep
// their message.
func TestWrapErr(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"not found", fmt.Errorf("uninstall: Release not loaded: web: %w", driver.ErrReleaseNotFound), ErrReleaseNotFound},
		{"no such revision", errors.New("release has no 9 version"), ErrReleaseNotFound},
		{"already deleted", errors.New(`the release named "web" is already deleted`), ErrReleaseNotFound},
		{"pending", errors.New("another operation (install/upgrade/rollback) is in progress"), ErrPending},
		{"in use", errors.New("cannot re-use a name that is still in use"), ErrReleaseExists},
		{"schema", errors.New("values don't meet the specifications of the schema(s) in the following chart(s):\nhello:\n- message: Invalid type"), ErrInvalidRequest},
		{"timeout", fmt.Errorf("release web failed: %w", &timeoutError{msg: "timed out"}), ErrTimeout},
		{"too large", &tooLargeError{name: "web", revision: 2, size: 2 << 20}, ErrRecordTooLarge},
		{"other", errors.New("connection refused"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := wrapErr("upgrade", "ns", "web", tc.err)
			if !strings.HasPrefix(err.Error(), "upgrade ns/web: ") || !strings.Contains(err.Error(), tc.err.Error()) {
				t.Errorf("message %q", err)
			}
			for _, s := range []error{ErrReleaseNotFound, ErrReleaseExists, ErrPending, ErrRecordTooLarge, ErrTimeout, ErrInvalidRequest, ErrInvalidAccess} {
				if errors.Is(err, s) != (s == tc.want) {
					t.Errorf("errors.Is(%q, %v) = %v", err, s, errors.Is(err, s))
				}
			}
		})
	}
}

func testPEM(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "tls", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testAccess(t testing.TB) Access {
	return Access{
		ClusterID: "c", Server: "https://127.0.0.1:6443", CAPEM: testPEM(t, "ca.pem"),
		ClientCertPEM: testPEM(t, "client.pem"), ClientKeyPEM: testPEM(t, "client.key"),
		BearerToken: "secret-token-value", CredentialID: "k", CredentialVersion: 3,
	}
}

// TestAccessRedacted: printing or logging an Access shows no secret.
func TestAccessRedacted(t *testing.T) {
	a := testAccess(t)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("access", "access", a)
	for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%v %+v %#v %s", a, a, a, a), fmt.Sprintf("%v", &a), logged.String()} {
		if strings.Contains(s, a.BearerToken) || strings.Contains(s, "PRIVATE KEY") || strings.Contains(s, "CERTIFICATE") {
			t.Errorf("printed a secret: %s", s)
		}
		if !strings.Contains(s, "c") {
			t.Errorf("does not name the cluster: %s", s)
		}
	}
}

// TestInvalidAccess: an Access no client can be made from fails with
// ErrInvalidAccess, before any connection, naming no secret.
func TestInvalidAccess(t *testing.T) {
	e := New(Options{})
	for _, tc := range []struct {
		name   string
		change func(*Access)
	}{
		{"no cluster id", func(a *Access) { a.ClusterID = "" }},
		{"http", func(a *Access) { a.Server = "http://127.0.0.1:6443" }},
		{"no host", func(a *Access) { a.Server = "https://" }},
		{"not a url", func(a *Access) { a.Server = "::" }},
		{"bad CA", func(a *Access) { a.CAPEM = []byte("not a certificate") }},
		{"certificate without key", func(a *Access) { a.ClientKeyPEM = nil }},
		{"key without certificate", func(a *Access) { a.ClientCertPEM = nil }},
		{"key of another certificate", func(a *Access) { a.ClientCertPEM = a.CAPEM }},
		{"garbled key", func(a *Access) { a.ClientKeyPEM = bytes.ReplaceAll(a.ClientKeyPEM, []byte("M"), []byte("x")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testAccess(t)
			tc.change(&a)
			_, err := e.Get(context.Background(), a, "default", "web", 0)
			wantErr(t, err, ErrInvalidAccess)
			assertNoSecret(t, err, a)
		})
	}
}

func assertNoSecret(t testing.TB, err error, a Access) {
	t.Helper()
	msg := err.Error()
	if strings.Contains(msg, a.BearerToken) || strings.Contains(msg, "PRIVATE KEY") {
		t.Errorf("error %q shows a secret", msg)
	}
	for _, line := range strings.Split(string(a.ClientKeyPEM), "\n") {
		if len(line) >= 16 && strings.Contains(msg, line) {
			t.Errorf("error %q shows the key", msg)
		}
	}
}

// FuzzAccess: whatever the clusters service hands over (it comes from a
// user's kubeconfig), building a client neither panics nor leaks the key
// or token in its error.
func FuzzAccess(f *testing.F) {
	a := testAccess(f)
	f.Add(a.Server, "", a.CAPEM, a.ClientCertPEM, a.ClientKeyPEM)
	f.Add("https://api.example:443/prefix", "api", a.CAPEM, []byte(nil), []byte(nil))
	f.Add("https://[::1]:6443", "", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), a.ClientCertPEM, a.CAPEM)
	f.Add("http://x", "", []byte{}, a.ClientKeyPEM, a.ClientCertPEM)
	f.Fuzz(func(t *testing.T, server, serverName string, ca, cert, key []byte) {
		a := Access{ClusterID: "c", Server: server, TLSServerName: serverName, CAPEM: ca, ClientCertPEM: cert, ClientKeyPEM: key, BearerToken: "tok-" + strings.Repeat("s", 20)}
		c, err := newCluster(a, &New(Options{}).o, nil, nil)
		if err != nil {
			if !errors.Is(err, ErrInvalidAccess) {
				t.Fatalf("error %v is not ErrInvalidAccess", err)
			}
			assertNoSecret(t, err, a)
			return
		}
		c.close()
	})
}

// TestPoll: poll ends on success, on error, and with expired() when its
// context ends.
func TestPoll(t *testing.T) {
	calls := 0
	err := poll(context.Background(), func() (bool, error) { calls++; return calls == 3, nil }, func() error { return errors.New("expired") })
	if err != nil || calls != 3 {
		t.Errorf("poll = %v after %d calls", err, calls)
	}
	boom := errors.New("boom")
	if err := poll(context.Background(), func() (bool, error) { return false, boom }, nil); err != boom {
		t.Errorf("poll = %v; want boom", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	expired := errors.New("expired")
	if err := poll(ctx, func() (bool, error) { return false, nil }, func() error { return expired }); err != expired {
		t.Errorf("poll = %v; want expired", err)
	}
}
