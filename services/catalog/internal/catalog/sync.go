package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipwayhq/slipway/services/catalog/internal/fetch"
	"github.com/slipwayhq/slipway/services/catalog/internal/index"
)

// SyncOptions tune the syncer.
type SyncOptions struct {
	// Poll is how often due sources are looked for besides wake-ups
	// (5 s): it is what picks up another replica's requests.
	Poll time.Duration
	// Workers is how many sources sync at once (4).
	Workers int
	// Timeout bounds one source's sync (2 min); its lease lasts twice
	// that, so a crashed replica's sources are taken over.
	Timeout time.Duration
	// Limits bound what is read.
	Limits Limits
}

// Syncer fetches due sources' indexes in the background, one fetch per
// source per interval however many repositories share it. Replicas share
// the work through leases in the store.
type Syncer struct {
	store   Store
	fetcher Fetcher
	logins  Logins
	opts    SyncOptions
	log     *slog.Logger
	owner   string
	wake    chan struct{}
	now     func() time.Time
	metrics *syncMetrics
}

type syncMetrics struct {
	syncs    *prometheus.CounterVec
	duration prometheus.Histogram
}

// NewSyncer returns a syncer; reg (when not nil) gets its metrics.
func NewSyncer(store Store, fetcher Fetcher, logins Logins, opts SyncOptions, log *slog.Logger, reg prometheus.Registerer) *Syncer {
	if opts.Poll <= 0 {
		opts.Poll = 5 * time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	opts.Limits = opts.Limits.withDefaults()
	m := &syncMetrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_catalog_syncs_total",
			Help: "Repository index syncs by outcome: changed, unchanged (skipped by ETag or checksum) or failed.",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "slipway_catalog_sync_duration_seconds",
			Help:    "Duration of repository index syncs.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.syncs, m.duration)
	}
	return &Syncer{
		store: store, fetcher: fetcher, logins: logins, opts: opts, log: log,
		owner: uuid.NewString(), wake: make(chan struct{}, 1), now: time.Now, metrics: m,
	}
}

// Wake makes Run look for due sources now.
func (s *Syncer) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run syncs due sources until ctx ends.
func (s *Syncer) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.Poll)
	defer t.Stop()
	sem := make(chan struct{}, s.opts.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		free := s.opts.Workers - len(sem)
		if free > 0 {
			now := s.now()
			due, err := s.store.ClaimDue(ctx, s.owner, now, now.Add(2*s.opts.Timeout), free)
			if err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "claim due sources", "error", err)
			}
			for _, src := range due {
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer func() { <-sem; wg.Done() }()
					s.syncOne(ctx, src)
				}()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.wake:
		}
	}
}

// SyncNow syncs every due source once and returns when done (tests and
// benchmarks).
func (s *Syncer) SyncNow(ctx context.Context) error {
	now := s.now()
	due, err := s.store.ClaimDue(ctx, s.owner, now, now.Add(2*s.opts.Timeout), 1000)
	if err != nil {
		return err
	}
	for _, src := range due {
		s.syncOne(ctx, src)
	}
	return nil
}

func (s *Syncer) syncOne(ctx context.Context, src Source) {
	start := s.now()
	sctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	res := s.fetchSource(sctx, src)
	cancel()
	outcome := "unchanged"
	switch {
	case res.Err != nil:
		outcome = "failed"
		s.log.WarnContext(ctx, "repository sync failed", "source", src.ID, "url", src.URL, "error", res.Err)
	case res.Charts != nil:
		outcome = "changed"
	}
	s.metrics.syncs.WithLabelValues(outcome).Inc()
	s.metrics.duration.Observe(s.now().Sub(start).Seconds())
	// The outcome is written even when ctx ends (shutdown): a finished
	// sync is not thrown away.
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer wcancel()
	if err := s.store.FinishSync(wctx, src.ID, s.owner, res, s.now()); err != nil {
		s.log.ErrorContext(ctx, "record repository sync", "source", src.ID, "error", err)
	}
}

// fetchSource fetches and parses a source's index. Synced.Charts stays
// nil when the index is unchanged.
func (s *Syncer) fetchSource(ctx context.Context, src Source) Synced {
	auth, err := s.auth(ctx, src)
	if err != nil {
		return Synced{Err: err}
	}
	if src.Kind == SourceOCI {
		return s.fetchOCI(ctx, src, auth)
	}
	return s.fetchHTTP(ctx, src, auth)
}

func (s *Syncer) auth(ctx context.Context, src Source) (*fetch.Auth, error) {
	if src.CredentialID == "" {
		return nil, nil
	}
	l, err := s.logins.RepositoryAuth(ctx, src.Org, src.CredentialID, src.URL)
	if err != nil {
		return nil, fmt.Errorf("login: %s", statusMessage(err))
	}
	return l.Auth, nil
}

// fetchHTTP fetches an index.yaml, skipping the parse when the server
// says it has not changed or its checksum is the last good one's.
func (s *Syncer) fetchHTTP(ctx context.Context, src Source, auth *fetch.Auth) Synced {
	max := s.opts.Limits.Index.MaxBytes
	resp, err := s.fetcher.Index(ctx, src.URL, auth, src.ETag, src.LastModified, max)
	if err != nil {
		if errors.Is(err, fetch.ErrTooLarge) {
			return Synced{Err: fmt.Errorf("index.yaml is over the %s limit: %w", byteSize(max), err)}
		}
		return Synced{Err: err}
	}
	keep := Synced{ETag: src.ETag, LastModified: src.LastModified, Checksum: src.Checksum}
	if resp.NotModified {
		return keep
	}
	sum := sha256.Sum256(resp.Body)
	checksum := hex.EncodeToString(sum[:])
	keep.ETag, keep.LastModified = resp.ETag, resp.LastModified
	if checksum == src.Checksum && src.Sync.LastSuccess.After(time.Time{}) {
		return keep
	}
	idx, err := index.Parse(resp.Body, s.opts.Limits.Index)
	if err != nil {
		return Synced{Err: fmt.Errorf("index.yaml: %w", err)}
	}
	return Synced{Charts: idx.Charts, Skipped: idx.SkippedTotal, ETag: resp.ETag, LastModified: resp.LastModified, Checksum: checksum}
}

// fetchOCI lists an OCI repository's charts and tags. Tags are treated as
// immutable, as Helm publishes them: a version already stored is not read
// again, and an unchanged tag list is no change at all.
func (s *Syncer) fetchOCI(ctx context.Context, src Source, auth *fetch.Auth) Synced {
	names, err := s.fetcher.OCICharts(ctx, src.URL, src.OCICharts, auth)
	if err != nil {
		return Synced{Err: err}
	}
	slices.Sort(names)
	tags := map[string][]string{}
	h := sha256.New()
	total := 0
	for _, n := range names {
		ts, err := s.fetcher.OCITags(ctx, src.URL, n, auth)
		if err != nil {
			return Synced{Err: fmt.Errorf("chart %s: %w", n, err)}
		}
		slices.Sort(ts)
		tags[n] = ts
		total += len(ts)
		if total > s.opts.Limits.MaxOCIVersions {
			return Synced{Err: fmt.Errorf("over %d chart versions under %s: list fewer charts in oci_charts", s.opts.Limits.MaxOCIVersions, src.URL)}
		}
		fmt.Fprintf(h, "%s\x00%s\x00", n, strings.Join(ts, ","))
	}
	checksum := hex.EncodeToString(h.Sum(nil))
	if checksum == src.Checksum && src.Sync.LastSuccess.After(time.Time{}) {
		return Synced{Checksum: checksum}
	}
	stored, err := s.store.SourceVersions(ctx, src.ID)
	if err != nil {
		return Synced{Err: err}
	}
	var charts []index.Chart
	skipped := 0
	for _, n := range names {
		known := map[string]index.Version{}
		for _, v := range stored[n] {
			known[v.Version] = v
		}
		c := index.Chart{Name: n}
		for _, tag := range tags[n] {
			if v, ok := known[tag]; ok {
				c.Versions = append(c.Versions, v)
				continue
			}
			ov, err := s.fetcher.OCIVersion(ctx, src.URL, n, tag, auth)
			if errors.Is(err, fetch.ErrNotChart) {
				skipped++
				continue
			}
			if err != nil {
				return Synced{Err: fmt.Errorf("chart %s version %s: %w", n, tag, err)}
			}
			c.Versions = append(c.Versions, ociVersion(src.URL, n, ov))
		}
		if len(c.Versions) == 0 {
			continue
		}
		sortVersions(c.Versions)
		charts = append(charts, c)
	}
	if charts == nil {
		charts = []index.Chart{}
	}
	return Synced{Charts: charts, Skipped: skipped, Checksum: checksum}
}

// ociVersion is the index entry of an OCI chart version.
func ociVersion(repoURL, chart string, ov fetch.OCIVersion) index.Version {
	v := index.Version{Chart: chart, Version: ov.Version, Digest: ov.ArchiveDigest, Created: ov.Created,
		URLs: []string{repoURL + "/" + chart + ":" + strings.ReplaceAll(ov.Version, "+", "_")}}
	if m := ov.Metadata; m != nil {
		v.AppVersion, v.Description, v.APIVersion, v.Type, v.KubeVersion = m.AppVersion, m.Description, m.APIVersion, m.Type, m.KubeVersion
		v.Home, v.Icon, v.Keywords, v.Sources, v.Deprecated = m.Home, m.Icon, m.Keywords, m.Sources, m.Deprecated
		for _, mt := range m.Maintainers {
			if mt != nil {
				v.Maintainers = append(v.Maintainers, index.Maintainer{Name: mt.Name, Email: mt.Email, URL: mt.URL})
			}
		}
		for _, d := range m.Dependencies {
			if d != nil {
				v.Dependencies = append(v.Dependencies, index.Dependency{Name: d.Name, Version: d.Version, Repository: d.Repository, Condition: d.Condition, Alias: d.Alias})
			}
		}
	}
	return v
}

// sortVersions orders versions highest first; what does not parse sorts
// last.
func sortVersions(vs []index.Version) {
	slices.SortStableFunc(vs, func(a, b index.Version) int {
		va, ea := semver.NewVersion(a.Version)
		vb, eb := semver.NewVersion(b.Version)
		switch {
		case ea != nil && eb != nil:
			return strings.Compare(a.Version, b.Version)
		case ea != nil:
			return 1
		case eb != nil:
			return -1
		}
		return vb.Compare(va)
	})
}

// byteSize writes n bytes for people: "50 MiB", "512 KiB", "100 bytes".
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
