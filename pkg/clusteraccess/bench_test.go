package clusteraccess

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
)

// benchAccess is sized like a real answer: a CA bundle, a client
// certificate and an RSA-2048 key in PEM, and a service-account token.
func benchAccess() *clustersv1.ClusterAccess {
	return &clustersv1.ClusterAccess{
		ClusterId:               "bench",
		Server:                  "https://api.bench.example:6443",
		CertificateAuthorityPem: bytes.Repeat([]byte("c"), 1200),
		ClientCertificatePem:    bytes.Repeat([]byte("x"), 1100),
		ClientKeyPem:            bytes.Repeat([]byte("k"), 1700),
		BearerToken:             string(bytes.Repeat([]byte("t"), 900)),
		CredentialId:            "k-bench",
		CredentialVersion:       7,
	}
}

func benchEnv(b *testing.B) *env {
	b.Helper()
	e := newEnv(b)
	e.fake.template = benchAccess()
	return e
}

// reportLatency reports the median and the 99th percentile of durs.
func reportLatency(b *testing.B, durs []time.Duration) {
	b.Helper()
	if len(durs) == 0 {
		return
	}
	slices.Sort(durs)
	at := func(p int) time.Duration { return durs[min(len(durs)*p/100, len(durs)-1)] }
	b.ReportMetric(float64(at(50).Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(at(99).Nanoseconds()), "p99-ns")
}

func BenchmarkClusterAccessWarm(b *testing.B) {
	e := benchEnv(b)
	ctx := context.Background()
	if _, err := e.client.ClusterAccess(ctx, "acme", "bench"); err != nil {
		b.Fatal(err)
	}
	var durs []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		_, err := e.client.ClusterAccess(ctx, "acme", "bench")
		durs = append(durs, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := e.fake.count("GetClusterAccess"); n != 1 {
		b.Fatalf("warm benchmark made %d RPCs", n)
	}
	reportLatency(b, durs)
}

// BenchmarkClusterAccessWarmParallel is the warm path under contention, as
// in a service answering many requests at once.
func BenchmarkClusterAccessWarmParallel(b *testing.B) {
	e := benchEnv(b)
	ctx := context.Background()
	if _, err := e.client.ClusterAccess(ctx, "acme", "bench"); err != nil {
		b.Fatal(err)
	}
	var (
		mu   sync.Mutex
		durs []time.Duration
	)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			start := time.Now()
			_, err := e.client.ClusterAccess(ctx, "acme", "bench")
			mine = append(mine, time.Since(start))
			if err != nil {
				b.Error(err)
				return
			}
		}
		mu.Lock()
		durs = append(durs, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	reportLatency(b, durs)
}

// BenchmarkClusterAccessCold asks a new cluster every time: one RPC through
// bufconn and the identity interceptors each, plus caching (and, past
// DefaultMaxEntries, eviction).
func BenchmarkClusterAccessCold(b *testing.B) {
	e := benchEnv(b)
	ctx := context.Background()
	var durs []time.Duration
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		cluster := "c-" + strconv.Itoa(i)
		i++
		start := time.Now()
		_, err := e.client.ClusterAccess(ctx, "acme", cluster)
		durs = append(durs, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
	}
	reportLatency(b, durs)
}

// BenchmarkClone is what returning a private copy costs on every call.
func BenchmarkClone(b *testing.B) {
	a := benchAccess()
	b.ReportAllocs()
	for b.Loop() {
		_ = proto.Clone(a)
	}
}
