package chartarchive

import (
	"cmp"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/slipwayhq/slipway/pkg/safeyaml"
)

// Load reads an archive with Files, checks every YAML file Helm's loader
// will parse (Chart.yaml, Chart.lock, values.yaml, requirements.yaml and
// requirements.lock, in the chart and in each subchart under charts/) with
// safeyaml, and builds the chart with loader.LoadFiles.
//
// Subchart archives (charts/*.tgz) are read with Files too, drawing on the
// same limits as the chart that holds them, before Helm's loader unpacks them
// again: so Helm only ever sees bytes that have passed these checks.
func Load(data []byte, lim Limits) (*chart.Chart, error) {
	c, _, _, err := load(data, lim.withDefaults())
	return c, err
}

// Contents is what the catalog shows of a chart and validates values with.
type Contents struct {
	Metadata   *chart.Metadata
	ValuesYAML []byte         // raw values.yaml of the top chart; nil when there is none
	Values     map[string]any // ValuesYAML parsed with safeyaml.Values; empty, never nil
	SchemaJSON []byte         // values.schema.json, when present
	Readme     []byte         // README.md, README or README.txt (any case) at the chart root, when present
}

// Read loads an archive as Load does and returns what the catalog needs of
// the top chart.
func Read(data []byte, lim Limits) (*Contents, error) {
	lim = lim.withDefaults()
	c, files, values, err := load(data, lim)
	if err != nil {
		return nil, err
	}
	ct := &Contents{Metadata: c.Metadata, Values: values, SchemaJSON: c.Schema}
	for _, f := range files {
		if f.Name == "values.yaml" {
			ct.ValuesYAML = f.Data
		}
	}
	ct.Readme = readme(files)
	return ct, nil
}

// readmeNames ranks the names a chart readme goes by, most preferred first.
var readmeNames = []string{"readme.md", "readme", "readme.txt"}

// readme picks the root readme. Names are matched without case, so a chart
// could carry several; the choice must not depend on archive order.
func readme(files []*loader.BufferedFile) []byte {
	var best *loader.BufferedFile
	rank := func(f *loader.BufferedFile) int { return slices.Index(readmeNames, strings.ToLower(f.Name)) }
	for _, f := range files {
		r := rank(f)
		if r < 0 {
			continue
		}
		if best == nil || cmp.Or(cmp.Compare(r, rank(best)), strings.Compare(f.Name, best.Name)) < 0 {
			best = f
		}
	}
	if best == nil {
		return nil
	}
	return best.Data
}

// load returns the chart, the top chart's files and its values.
func load(data []byte, lim Limits) (*chart.Chart, []*loader.BufferedFile, map[string]any, error) {
	b := newBudget(lim)
	files, err := b.archive(data, "")
	if err != nil {
		return nil, nil, nil, err
	}
	values, err := b.checkChart(files, "", 0)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := loader.LoadFiles(files)
	if err != nil {
		return nil, nil, nil, refuse("load chart: %w", err)
	}
	return c, files, values, nil
}

// checkChart checks the YAML of one chart level and descends into its
// subcharts the way loader.LoadFiles groups them, so that exactly the files
// Helm will parse are checked, no fewer. It returns the level's values.
func (b *budget) checkChart(files []*loader.BufferedFile, where string, depth int) (map[string]any, error) {
	if depth > b.lim.MaxNesting {
		return nil, refuse("subchart %s: nested more than MaxNesting %d levels deep", strings.TrimRight(where, ": /"), b.lim.MaxNesting)
	}
	values := map[string]any{}
	subcharts := map[string][]*loader.BufferedFile{}
	var names []string // subchart names in archive order, for stable messages
	for _, f := range files {
		switch f.Name {
		case "Chart.yaml", "Chart.lock", "requirements.yaml", "requirements.lock", "values.yaml":
			lim, err := b.yaml(f.Data, where+f.Name)
			if err != nil {
				return nil, err
			}
			// Helm refuses subcharts' values that are not a mapping too; only
			// the top chart's are kept.
			if f.Name == "values.yaml" && depth == 0 {
				if values, err = safeyaml.Values(f.Data, lim); err != nil {
					return nil, refuse("%s%s: %w", where, f.Name, err)
				}
			}
			continue
		}
		rest, ok := strings.CutPrefix(f.Name, "charts/")
		if !ok || path.Ext(f.Name) == ".prov" {
			continue
		}
		name, _, _ := strings.Cut(rest, "/")
		if _, ok := subcharts[name]; !ok {
			names = append(names, name)
		}
		subcharts[name] = append(subcharts[name], f)
	}

	for _, name := range names {
		sub := where + "charts/" + name
		switch {
		case strings.IndexAny(name, "_.") == 0:
			continue // Helm skips these too
		case path.Ext(name) == ".tgz":
			// Files refuses a path that is both a file and a directory, so an
			// archive subchart is the group's only file.
			inner, err := b.archive(subcharts[name][0].Data, sub+": ")
			if err != nil {
				return nil, err
			}
			if _, err := b.checkChart(inner, sub+": ", depth+1); err != nil {
				return nil, err
			}
		default:
			var inner []*loader.BufferedFile
			for _, f := range subcharts[name] {
				if rel, ok := strings.CutPrefix(f.Name, "charts/"+name+"/"); ok {
					inner = append(inner, &loader.BufferedFile{Name: rel, Data: f.Data})
				}
			}
			if _, err := b.checkChart(inner, sub+"/", depth+1); err != nil {
				return nil, err
			}
		}
	}
	return values, nil
}

// yaml checks one YAML file with safeyaml and charges its nodes, aliases
// expanded, to the archive's YAML budget: each document is bounded by
// lim.YAML, but a chart can hold thousands of them, and a few hundred bytes
// of aliases can expand to MaxNodes in every one. It returns the limits it
// checked the file with.
func (b *budget) yaml(data []byte, name string) (safeyaml.Limits, error) {
	lim := b.lim.YAML
	if b.yamlNodes < int64(lim.MaxNodes) {
		if b.yamlNodes <= 0 {
			return lim, refuse("%s: YAML files add up to more than %d nodes", name, b.lim.YAML.MaxNodes)
		}
		lim.MaxNodes = int(b.yamlNodes)
	}
	n, err := safeyaml.Parse(data, lim)
	if err != nil {
		if lim.MaxNodes < b.lim.YAML.MaxNodes && errors.Is(err, safeyaml.ErrLimit) {
			err = fmt.Errorf("%w (%d of the archive's %d YAML nodes were left)", err, lim.MaxNodes, b.lim.YAML.MaxNodes)
		}
		return lim, refuse("%s: %w", name, err)
	}
	b.yamlNodes -= expandedNodes(n, map[*yaml.Node]int64{})
	return lim, nil
}

// expandedNodes counts the nodes under n with every alias replaced by what it
// names, as a decoder builds them. Parse has bounded the depth and the total,
// and memo keeps the count linear in the document as written.
func expandedNodes(n *yaml.Node, memo map[*yaml.Node]int64) int64 {
	if n == nil {
		return 0
	}
	if c, ok := memo[n]; ok {
		return c
	}
	memo[n] = 1 // a node that reaches itself counts once
	c := int64(1)
	if n.Kind == yaml.AliasNode {
		c = expandedNodes(n.Alias, memo)
	}
	for _, k := range n.Content {
		c += expandedNodes(k, memo)
	}
	memo[n] = c
	return c
}
