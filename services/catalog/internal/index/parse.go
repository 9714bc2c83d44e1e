package index

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"go.yaml.in/yaml/v3"

	"github.com/slipwayhq/slipway/pkg/safeyaml"
)

// errNoSplit says the document is not in the layout parseSplit can cut
// safely; Parse then decodes it whole.
var errNoSplit = errors.New("index: document not in split layout")

// wholeLimits scales the per-part YAML limits to a document decoded whole, so
// that a document too irregular to split is held to the same budget per byte.
func wholeLimits(size int, lim Limits) safeyaml.Limits {
	parts := size/lim.YAML.MaxBytes + 1
	return safeyaml.Limits{
		MaxBytes:   size + 1,
		MaxDepth:   lim.YAML.MaxDepth + 1, // the top-level mapping holds entries
		MaxAliases: lim.YAML.MaxAliases * parts,
		MaxNodes:   lim.YAML.MaxNodes * parts,
	}
}

func parseErr(what string, err error) error {
	if errors.Is(err, safeyaml.ErrLimit) {
		return fmt.Errorf("%w: %s: %w", ErrTooLarge, what, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrInvalid, what, err)
}

// parseWhole decodes the document as one YAML tree.
func parseWhole(data []byte, lim Limits) (*Index, error) {
	n, err := safeyaml.Parse(data, wholeLimits(len(data), lim))
	if err != nil {
		return nil, parseErr("parse index", err)
	}
	root := deref(n)
	if root == nil || root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: top level is not a mapping", ErrInvalid)
	}
	var h header
	var entries *yaml.Node
	if err := h.read(root, func(val *yaml.Node) error {
		if entries != nil {
			return fmt.Errorf("%w: entries given twice", ErrInvalid)
		}
		entries = val
		return nil
	}); err != nil {
		return nil, err
	}
	if entries = deref(entries); entries == nil || entries.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: no entries mapping", ErrInvalid)
	}
	d := newDecoder()
	charts := make([]chartResult, 0, len(entries.Content)/2)
	total := 0
	for i := 0; i+1 < len(entries.Content); i += 2 {
		c := d.chart(entries.Content[i], entries.Content[i+1])
		if total += c.entries; total > lim.MaxVersions {
			return nil, fmt.Errorf("%w: more than MaxVersions %d chart versions", ErrTooLarge, lim.MaxVersions)
		}
		charts = append(charts, c)
	}
	return assemble(h, charts, lim)
}

// read takes apiVersion and generated from a top-level mapping and hands
// entries' value to entries.
func (h *header) read(m *yaml.Node, entries func(*yaml.Node) error) error {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := deref(m.Content[i]), m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			continue
		}
		isEntries, err := h.set(k.Value, v)
		if err != nil {
			return err
		}
		if isEntries {
			if err := entries(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// set reads one top-level key other than entries, and says whether key is
// entries. Keys match case-insensitively, as Helm's encoding/json decoding
// matches them.
func (h *header) set(key string, v *yaml.Node) (isEntries bool, err error) {
	switch strings.ToLower(key) {
	case "apiversion":
		h.apiVersion, err = helmString(v)
	case "generated":
		h.generated, err = helmTime(v)
	case "entries":
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: %s: %w", ErrInvalid, key, err)
	}
	return false, nil
}

// parseSplit decodes a block-layout document chart by chart, in parallel.
// Each part is parsed by yaml.v3 as a document of its own, within the
// per-chart limits (lim.YAML); the layout check in split and the checks here
// (every part parses, each chart part is a one-key mapping, nothing outside
// entries names entries) make that the same tree the whole document would
// give. Anything else is errNoSplit.
func parseSplit(data []byte, lim Limits) (*Index, error) {
	sp, ok := split(data)
	if !ok {
		return nil, errNoSplit
	}
	var h header
	for i, part := range [][]byte{sp.head, sp.tail} {
		n, err := safeyaml.Parse(part, lim.YAML)
		if err != nil {
			if errors.Is(err, safeyaml.ErrLimit) {
				return nil, parseErr("parse index header", err)
			}
			return nil, errNoSplit
		}
		m := deref(n)
		if m == nil || m.Kind == 0 || m.Kind == yaml.DocumentNode && len(m.Content) == 0 {
			continue // blank or comments only
		}
		if m.Kind != yaml.MappingNode {
			return nil, errNoSplit
		}
		entriesSeen := false
		err = h.read(m, func(v *yaml.Node) error {
			// Only the head's own entries line, with nothing under it here.
			if i != 0 || entriesSeen || !isNull(v) {
				return errNoSplit
			}
			entriesSeen = true
			return nil
		})
		if err != nil || i == 0 && !entriesSeen {
			return nil, errNoSplit // the whole document gives the error
		}
	}

	charts, err := decodeParallel(len(sp.charts), lim, func() partParser {
		return func(i int) (*yaml.Node, *yaml.Node, int, bool, error) {
			n, err := safeyaml.Parse(sp.charts[i], lim.YAML)
			if err != nil {
				if errors.Is(err, safeyaml.ErrLimit) {
					return nil, nil, 0, false, parseErr(fmt.Sprintf("chart at line %d", sp.lines[i]), err)
				}
				return nil, nil, 0, false, errNoSplit
			}
			m := deref(n)
			if m == nil || m.Kind != yaml.MappingNode || len(m.Content) != 2 {
				return nil, nil, 0, false, errNoSplit
			}
			// yaml.v3 copies every scalar out of the part, so nothing the
			// decoder keeps holds on to the document.
			return m.Content[0], m.Content[1], sp.lines[i] - 1, false, nil
		}
	})
	if err != nil {
		return nil, err
	}
	return assemble(h, charts, lim)
}

// partParser parses chart part i into its entries key and value, the line
// the part starts after, and whether the values are substrings of a larger
// text (and so must be cloned to be kept). The nodes are valid until its next
// call.
type partParser func(i int) (key, val *yaml.Node, off int, substrings bool, err error)

// decodeParallel decodes n chart parts with GOMAXPROCS workers, each with its
// own parser from newParser and its own decoder, and counts versions against
// MaxVersions as it goes so an oversized index stops early. The first error
// wins, except that a limit refuses the index whatever else failed.
func decodeParallel(n int, lim Limits, newParser func() partParser) ([]chartResult, error) {
	charts := make([]chartResult, n)
	var (
		next, total atomic.Int64
		mu          sync.Mutex
		firstErr    error
		failed      atomic.Bool
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil || !errors.Is(firstErr, ErrTooLarge) && errors.Is(err, ErrTooLarge) {
			firstErr = err
		}
		mu.Unlock()
		failed.Store(true)
	}
	work := func() {
		d := newDecoder()
		parse := newParser()
		for !failed.Load() {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			key, val, off, substrings, err := parse(i)
			if err != nil {
				fail(err)
				return
			}
			if seq := deref(val); seq != nil && seq.Kind == yaml.SequenceNode {
				if total.Add(int64(len(seq.Content))) > int64(lim.MaxVersions) {
					fail(fmt.Errorf("%w: more than MaxVersions %d chart versions", ErrTooLarge, lim.MaxVersions))
					return
				}
			}
			d.off, d.clone = off, substrings
			charts[i] = d.chart(key, val)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return charts, nil
}
