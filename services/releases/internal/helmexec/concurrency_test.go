package helmexec

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/release"
)

// TestConcurrentInstalls: 20 releases installed at once into one namespace
// of one cluster all succeed, through one shared Configuration. The rate
// is logged, not asserted.
func TestConcurrentInstalls(t *testing.T) {
	c := cluster1(t)
	e := New(Options{})
	var requests atomic.Int64
	countRequests(e, &requests)
	ns := namespace(t, c, "many")
	ch := loadChart(t, "hello-0.1.0")
	const n = 20
	errs := make([]error, n)
	rels := make([]*release.Release, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			rels[i], errs[i] = e.Install(t.Context(), Request{Access: c.access, Namespace: ns, Release: "web-" + strconv.Itoa(i), Chart: ch})
		})
	}
	wg.Wait()
	took := time.Since(start)
	for i, err := range errs {
		if err != nil {
			t.Errorf("install %d: %v", i, err)
		} else if rels[i].Info.Status != release.StatusDeployed {
			t.Errorf("install %d: %s", i, rels[i].Info.Status)
		}
	}
	if got := e.configsBuilt.Load(); got != 1 {
		t.Errorf("%d Configurations built; want 1", got)
	}
	t.Logf("%d concurrent installs in %s: %.1f releases/s, %d API requests (%.1f per install)",
		n, took.Round(time.Millisecond), n/took.Seconds(), requests.Load(), float64(requests.Load())/n)
	h, err := e.History(t.Context(), c.access, ns, "web-7", 0)
	if err != nil || summary(h) != fmt.Sprintf("1 deployed %s", "0.1.0") {
		t.Errorf("history = %s (err %v)", summary(h), err)
	}
}
