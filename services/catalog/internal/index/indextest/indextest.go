// Package indextest generates repository indexes shaped like large public
// ones, for tests and benchmarks of the catalog.
package indextest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/repo"
)

var genWords = []string{
	"redis", "postgresql", "mysql", "mariadb", "mongodb", "kafka", "zookeeper", "rabbitmq",
	"nginx", "apache", "wordpress", "drupal", "ghost", "joomla", "magento", "moodle",
	"elasticsearch", "kibana", "logstash", "fluentd", "grafana", "prometheus", "thanos", "loki",
	"airflow", "spark", "flink", "cassandra", "etcd", "consul", "vault", "keycloak",
	"jenkins", "gitea", "harbor", "minio", "memcached", "valkey", "clickhouse", "influxdb",
}

var genLicenses = []string{"Apache-2.0", "MIT", "BSD-3-Clause", "GPL-2.0-or-later"}

// IndexFile builds a deterministic repository index shaped like a large
// public repository's (Bitnami's): each chart has a stable description, icon,
// keywords and maintainers across its versions, and per-version app versions,
// dependencies, image annotations, URLs, digests and creation times.
func IndexFile(charts, versionsPerChart int) *repo.IndexFile {
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2021, 3, 1, 9, 0, 0, 0, time.UTC)
	idx := &repo.IndexFile{
		APIVersion: "v1",
		Generated:  time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC),
		Entries:    map[string]repo.ChartVersions{},
	}
	for c := range charts {
		word := genWords[c%len(genWords)]
		name := word
		if c >= len(genWords) {
			name = fmt.Sprintf("%s-%s%d", word, genWords[(c*7+3)%len(genWords)], c/len(genWords))
		}
		keywords := []string{word, genWords[r.IntN(len(genWords))], "database", "cloud-native"}[:2+r.IntN(3)]
		desc := fmt.Sprintf("%s is an open source %s, with production defaults.",
			strings.ToUpper(word[:1])+word[1:], []string{"database", "message broker", "web server", "monitoring system"}[r.IntN(4)])
		maintainers := []*chart.Maintainer{{Name: "Broadcom, Inc. All Rights Reserved.", URL: "https://github.com/bitnami/charts"}}
		if r.IntN(5) == 0 {
			maintainers = append(maintainers, &chart.Maintainer{Name: "Slipway Maintainers", Email: "charts@example.com"})
		}
		deprecated := r.IntN(25) == 0
		var cvs repo.ChartVersions
		for v := range versionsPerChart {
			// Newest first, as repositories write them; every fifth chart
			// writes them oldest first so sorting is exercised.
			n := versionsPerChart - 1 - v
			if c%5 == 0 {
				n = v
			}
			version := fmt.Sprintf("%d.%d.%d", 1+n/20, (n/5)%4, n%5)
			if n%17 == 16 {
				version += "-rc." + fmt.Sprint(n%3)
			}
			appVersion := fmt.Sprintf("%d.%d.%d", 2+n/30, n%10, r.IntN(20))
			deps := []*chart.Dependency{{
				Name: "common", Repository: "oci://registry-1.docker.io/bitnamicharts",
				Version: "2.x.x",
			}}
			for d := range r.IntN(2) {
				dn := genWords[(c+d*11+1)%len(genWords)]
				deps = append(deps, &chart.Dependency{
					Name: dn, Repository: "oci://registry-1.docker.io/bitnamicharts",
					Version: fmt.Sprintf("%d.x.x", 10+r.IntN(10)), Condition: dn + ".enabled",
				})
			}
			images := fmt.Sprintf("- name: %s\n  image: docker.io/bitnami/%s:%s-debian-12-r%d\n", word, word, appVersion, r.IntN(40))
			sum := sha256.Sum256([]byte(name + "-" + version))
			md := &chart.Metadata{
				APIVersion:   "v2",
				Name:         name,
				Version:      version,
				AppVersion:   appVersion,
				Description:  desc,
				Home:         "https://bitnami.com",
				Icon:         "https://bitnami.com/assets/stacks/" + word + "/img/" + word + "-stack.png",
				Keywords:     keywords,
				Sources:      []string{"https://github.com/bitnami/charts/tree/main/bitnami/" + word},
				Maintainers:  maintainers,
				Dependencies: deps,
				Annotations: map[string]string{
					"category": "Database",
					"images":   images,
					"licenses": genLicenses[c%len(genLicenses)],
				},
				Deprecated: deprecated && v == 0,
			}
			if r.IntN(4) == 0 {
				md.KubeVersion = ">=1.23.0-0"
			}
			if r.IntN(2) == 0 {
				md.Type = "application"
			}
			cvs = append(cvs, &repo.ChartVersion{
				Metadata: md,
				URLs:     []string{"https://charts.bitnami.com/bitnami/" + name + "-" + version + ".tgz"},
				Created:  base.Add(time.Duration(c*versionsPerChart+v) * 37 * time.Minute).Add(time.Duration(r.IntN(1e9))),
				Digest:   hex.EncodeToString(sum[:]),
			})
		}
		idx.Entries[name] = cvs
	}
	return idx
}

// Write writes IndexFile's index as `helm repo index` does (as JSON with
// asJSON, as `helm repo index --json`) into a temporary folder of tb, and
// returns the file's path and bytes.
func Write(tb testing.TB, charts, versionsPerChart int, asJSON bool) (string, []byte) {
	tb.Helper()
	idx := IndexFile(charts, versionsPerChart)
	path := filepath.Join(tb.TempDir(), "index.yaml")
	write := idx.WriteFile
	if asJSON {
		path = filepath.Join(filepath.Dir(path), "index.json")
		write = idx.WriteJSONFile
	}
	if err := write(path, 0o644); err != nil {
		tb.Fatalf("write generated index: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return path, b
}
