// Package index parses Helm chart repository index files (index.yaml, or the
// same in JSON) into typed, validated chart metadata, within bounds on size
// and work, faster and in less memory than Helm's repo.LoadIndexFile.
//
// YAML is parsed by yaml.v3, through safeyaml's bounds. A document in the
// block layout Helm writes is cut at each chart under entries (split.go) and
// the parts are parsed and decoded in parallel, each within the per-chart
// limits; any other YAML document is parsed whole. A JSON document is checked
// by encoding/json and its charts decoded in parallel too (json.go). Every
// route ends in the same decoder (decode.go), which validates entries and
// interns the strings a chart's versions repeat.
//
// Entries are validated as LoadIndexFile validates them and invalid ones are
// skipped and reported rather than failing the index, so one broken chart in a
// public repository does not hide the others.
package index

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/slipwayhq/slipway/pkg/safeyaml"
)

// Limits bound the index a Parse accepts. Zero fields take the defaults.
type Limits struct {
	MaxBytes    int64 // default 50 MiB; larger data is refused with ErrTooLarge before parsing
	MaxVersions int   // total chart versions, valid or not; default 200_000
	// YAML bounds each chart's part of the document (and the parts outside
	// entries); a document that cannot be split takes them multiplied by how
	// many MaxBytes-sized parts it holds.
	YAML safeyaml.Limits
}

// Defaults of Limits' zero fields.
const (
	DefaultMaxBytes    = 50 << 20
	DefaultMaxVersions = 200_000
	// MaxSkipped is how many skipped entries an Index lists; SkippedTotal counts all.
	MaxSkipped = 100
)

var (
	ErrTooLarge = errors.New("index too large")
	// ErrInvalid: not an index at all (wrong top-level shape, no entries
	// mapping, no apiVersion, not YAML).
	ErrInvalid = errors.New("invalid index")
)

type Maintainer struct{ Name, Email, URL string }

type Dependency struct{ Name, Version, Repository, Condition, Alias string }

// Version is one chart version of an index. Strings are as written, with
// control characters sanitised as chart.Metadata.Validate does; scalars of
// other YAML types (appVersion: 1.10) are taken as written too, where Helm
// would refuse the whole index. Versions of one chart may share the arrays of
// equal lists (Keywords, Sources, Maintainers, Dependencies): an Index is
// read-only.
type Version struct {
	Chart, Version, AppVersion, Description, APIVersion, Type, KubeVersion, Home, Icon string
	Keywords, Sources, URLs                                                            []string
	Maintainers                                                                        []Maintainer
	Dependencies                                                                       []Dependency
	Deprecated                                                                         bool
	Digest                                                                             string // "sha256:<hex>" normalised from the index's hex digest, "" when absent/invalid
	Created                                                                            time.Time
}

// Chart is one entry of the index; its Versions are sorted by semantic
// version, highest first, versions that compare equal in document order.
type Chart struct {
	Name     string
	Versions []Version
}

// Latest is the highest version without a prerelease part, or the highest
// prerelease when there is no other; the zero Version for a chart without
// versions.
func (c Chart) Latest() Version {
	for _, v := range c.Versions {
		sv, err := semver.NewVersion(v.Version)
		if err == nil && sv.Prerelease() == "" {
			return v
		}
	}
	if len(c.Versions) > 0 {
		return c.Versions[0]
	}
	return Version{}
}

// Skip is an entry dropped as invalid. Version is "" when the whole chart was
// dropped.
type Skip struct{ Chart, Version, Reason string }

type Index struct {
	Charts       []Chart // sorted by name; charts left without valid versions are omitted
	Skipped      []Skip  // the first MaxSkipped entries dropped, in document order
	SkippedTotal int     // how many were dropped
	APIVersion   string
	Generated    time.Time
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxVersions <= 0 {
		l.MaxVersions = DefaultMaxVersions
	}
	y := &l.YAML
	if y.MaxBytes <= 0 {
		y.MaxBytes = safeyaml.DefaultMaxBytes
	}
	if y.MaxDepth <= 0 {
		y.MaxDepth = safeyaml.DefaultMaxDepth
	}
	if y.MaxAliases <= 0 {
		y.MaxAliases = safeyaml.DefaultMaxAliases
	}
	if y.MaxNodes <= 0 {
		y.MaxNodes = safeyaml.DefaultMaxNodes
	}
	return l
}

// Parse reads a repository index. A JSON document is read as Helm reads one,
// with encoding/json's string rules; a document in the block layout Helm
// writes is split at each chart under entries; in both the charts are decoded
// in parallel. Any other document (flow style, anchors shared between charts,
// ...) is decoded whole, with the same result.
func Parse(data []byte, lim Limits) (*Index, error) {
	lim = lim.withDefaults()
	if int64(len(data)) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes > MaxBytes %d", ErrTooLarge, len(data), lim.MaxBytes)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty document", ErrInvalid)
	}
	idx, err := parseJSON(data, lim)
	if errors.Is(err, errNoSplit) {
		idx, err = parseSplit(data, lim)
	}
	if errors.Is(err, errNoSplit) {
		idx, err = parseWhole(data, lim)
	}
	return idx, err
}

// header is what an index holds outside entries.
type header struct {
	apiVersion string
	generated  time.Time
}

// chartResult is one decoded entries pair, before the index is assembled.
type chartResult struct {
	name     string
	versions []Version
	semvers  []*semver.Version
	skips    []Skip // at most MaxSkipped
	skipped  int
	entries  int // sequence items seen, valid or not
}

// assemble builds the Index from the charts in document order; both decoding
// paths end here so they cannot differ in what they keep.
func assemble(h header, charts []chartResult, lim Limits) (*Index, error) {
	if h.apiVersion == "" {
		return nil, fmt.Errorf("%w: no apiVersion", ErrInvalid)
	}
	idx := &Index{APIVersion: h.apiVersion, Generated: h.generated}
	skip := func(s Skip) {
		if len(idx.Skipped) < MaxSkipped {
			idx.Skipped = append(idx.Skipped, s)
		}
		idx.SkippedTotal++
	}
	// A chart listed twice keeps its last listing, as encoding/json keeps
	// the last of a repeated key (Helm refuses such a YAML index whole).
	last := make(map[string]int, len(charts))
	for i, c := range charts {
		last[c.name] = i
	}
	total := 0
	for i := range charts {
		c := &charts[i]
		total += c.entries
		if total > lim.MaxVersions {
			return nil, fmt.Errorf("%w: more than MaxVersions %d chart versions", ErrTooLarge, lim.MaxVersions)
		}
		for _, s := range c.skips {
			skip(s)
		}
		// Only the first MaxSkipped of a chart were kept; count the rest.
		for range c.skipped - len(c.skips) {
			idx.SkippedTotal++
		}
		if last[c.name] != i {
			skip(Skip{Chart: c.name, Reason: "chart listed again later in entries"})
			continue
		}
		if len(c.versions) == 0 {
			continue
		}
		sortVersions(c.versions, c.semvers)
		idx.Charts = append(idx.Charts, Chart{Name: c.name, Versions: c.versions})
	}
	slices.SortFunc(idx.Charts, func(a, b Chart) int { return strings.Compare(a.Name, b.Name) })
	return idx, nil
}

// sortVersions orders vs highest first by their parsed semvers, stably and in
// place: repositories mostly write them sorted already, so this is one pass.
func sortVersions(vs []Version, svs []*semver.Version) {
	sort.Stable(byVersion{vs, svs})
}

type byVersion struct {
	vs  []Version
	svs []*semver.Version
}

func (b byVersion) Len() int           { return len(b.vs) }
func (b byVersion) Less(i, j int) bool { return b.svs[i].Compare(b.svs[j]) > 0 }
func (b byVersion) Swap(i, j int) {
	b.vs[i], b.vs[j] = b.vs[j], b.vs[i]
	b.svs[i], b.svs[j] = b.svs[j], b.svs[i]
}
