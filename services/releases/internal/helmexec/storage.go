package helmexec

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"sync"

	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// maxRecordBytes is Kubernetes' limit on a Secret's data (corev1's
// MaxSecretSize), which holds Helm's record of a revision: the release as
// JSON, gzipped, base64'd.
const maxRecordBytes = 1 << 20

// recordGuard is the storage driver of one action: Helm's Secrets driver,
// plus a check that the record fits before it is written. Helm writes a
// revision's record before applying anything of it, so a release too large
// to record fails with nothing applied.
//
// Until the first record passes, the writes Helm makes before it (pruning
// history beyond MaxHistory, superseding an uninstalled revision on
// reinstall) are held back, so a refused record changes nothing either.
// Before that first record it also creates the namespace when asked to,
// which Helm would otherwise do before any of this, and refuses to start
// an install or upgrade whose caller has given up.
type recordGuard struct {
	driver.Driver
	o *op

	mu      sync.Mutex
	hold    bool // hold back writes until the first Create
	held    []heldWrite
	before  func() error // run once, after the check, before the first record
	created *release.Release
}

type heldWrite struct {
	del bool
	key string
	rls *release.Release
}

func (g *recordGuard) Create(key string, rls *release.Release) error {
	if err := checkRecord(rls); err != nil {
		g.mu.Lock()
		g.held = nil
		g.mu.Unlock()
		return err
	}
	g.mu.Lock()
	first := g.hold
	if first && (g.o.kind == "install" || g.o.kind == "upgrade") && g.o.ctx.Err() != nil {
		// The caller gave up before anything was recorded: leave it so.
		g.held = nil
		g.mu.Unlock()
		return fmt.Errorf("not started: %w", g.o.ctx.Err())
	}
	held, before := g.held, g.before
	g.held, g.before, g.hold = nil, nil, false
	g.created = rls
	g.mu.Unlock()
	var errs []error
	for _, w := range held {
		if w.del {
			if _, err := g.Driver.Delete(w.key); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		// Helm ignores a failed status update of an older revision too.
		if err := g.Driver.Update(w.key, w.rls); err != nil {
			g.o.logf("update of a previous revision failed: %s", err)
		}
	}
	if len(errs) > 0 {
		// As Helm's pruning does: the record is not written.
		return errs[0]
	}
	if before != nil {
		if err := before(); err != nil {
			return err
		}
	}
	rls.Labels = withOperation(rls.Labels, g.o.operation)
	g.o.noteRecord(rls, true)
	return g.Driver.Create(key, rls)
}

func (g *recordGuard) Update(key string, rls *release.Release) error {
	g.mu.Lock()
	if g.hold {
		g.held = append(g.held, heldWrite{key: key, rls: rls})
		g.mu.Unlock()
		return nil
	}
	g.mu.Unlock()
	// Not checked: an update changes a revision's status and description,
	// and a record that fitted at Create fits after (the API server would
	// refuse it otherwise).
	g.o.noteRecord(rls, false)
	return g.Driver.Update(key, rls)
}

func (g *recordGuard) Delete(key string) (*release.Release, error) {
	g.mu.Lock()
	if g.hold {
		g.held = append(g.held, heldWrite{del: true, key: key})
		g.mu.Unlock()
		// Helm's pruning does not look at what it deleted.
		return nil, nil
	}
	g.mu.Unlock()
	return g.Driver.Delete(key)
}

// OperationLabel, on Helm's record of a revision, names the Slipway
// operation that made it.
const OperationLabel = "slipway.dev/operation"

// withOperation is a new revision's labels naming op as its maker. Helm's
// rollback copies the labels of the revision it copies, so the label is
// removed when no operation acts (a recovery's rollback). labels is not
// changed: Helm shares the map with the older revision.
func withOperation(labels map[string]string, op string) map[string]string {
	out := maps.Clone(labels)
	delete(out, OperationLabel)
	if op == "" {
		return out
	}
	if out == nil {
		out = map[string]string{}
	}
	out[OperationLabel] = op
	return out
}

// MadeBy reports the revisions in hist that operation op recorded.
func MadeBy(hist []*release.Release, op string) []*release.Release {
	var out []*release.Release
	for _, h := range hist {
		if op != "" && h.Labels[OperationLabel] == op {
			out = append(out, h)
		}
	}
	return out
}

// checkRecord fails with ErrRecordTooLarge when rls's record would not fit
// in a Secret. Most records are far below the limit: the JSON alone tells,
// and only a large one is compressed to know its exact size.
func checkRecord(rls *release.Release) error {
	b, err := json.Marshal(rls)
	if err != nil {
		return err
	}
	// gzip never grows data by more than this (stored blocks and header).
	if base64.StdEncoding.EncodedLen(len(b)+len(b)/64+64) <= maxRecordBytes {
		return nil
	}
	n, err := encodedSize(b)
	if err != nil {
		return err
	}
	if n > maxRecordBytes {
		return &tooLargeError{name: rls.Name, revision: rls.Version, size: n}
	}
	return nil
}

// recordSize is the size of rls's record as Helm's storage driver encodes
// it (driver.encodeRelease, unexported): JSON, gzip at best compression,
// standard base64.
func recordSize(rls *release.Release) (int, error) {
	b, err := json.Marshal(rls)
	if err != nil {
		return 0, err
	}
	return encodedSize(b)
}

func encodedSize(js []byte) (int, error) {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return 0, err
	}
	if _, err := w.Write(js); err != nil {
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	return base64.StdEncoding.EncodedLen(buf.Len()), nil
}
