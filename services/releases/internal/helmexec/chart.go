package helmexec

import (
	"helm.sh/helm/v3/pkg/chart"
)

// cloneChart copies what Helm changes in a chart it installs: processing
// dependencies drops disabled subcharts from the chart, rewrites its
// metadata's dependency list and merges imported values. Callers may keep
// a loaded chart (the catalog caches them) and run it with other values or
// concurrently, so each action gets its own copy. Templates and files are
// shared: Helm only reads them.
func cloneChart(c *chart.Chart) *chart.Chart {
	if c == nil {
		return nil
	}
	n := &chart.Chart{
		Raw:       c.Raw,
		Lock:      c.Lock,
		Templates: c.Templates,
		Values:    cloneValues(c.Values),
		Schema:    c.Schema,
		Files:     c.Files,
	}
	if c.Metadata != nil {
		m := *c.Metadata
		if c.Metadata.Dependencies != nil {
			m.Dependencies = make([]*chart.Dependency, len(c.Metadata.Dependencies))
			for i, d := range c.Metadata.Dependencies {
				if d != nil {
					dc := *d
					m.Dependencies[i] = &dc
				}
			}
		}
		n.Metadata = &m
	}
	if deps := c.Dependencies(); len(deps) > 0 {
		copies := make([]*chart.Chart, len(deps))
		for i, d := range deps {
			copies[i] = cloneChart(d)
		}
		n.SetDependencies(copies...)
	}
	return n
}

// cloneValues copies maps and slices; other values are immutable or shared.
func cloneValues(v map[string]any) map[string]any {
	if v == nil {
		return nil
	}
	out := make(map[string]any, len(v))
	for k, x := range v {
		out[k] = cloneValue(x)
	}
	return out
}

func cloneValue(x any) any {
	switch t := x.(type) {
	case map[string]any:
		return cloneValues(t)
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = cloneValue(e)
		}
		return s
	}
	return x
}
