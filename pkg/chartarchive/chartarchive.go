// Package chartarchive reads Helm chart archives (.tgz) fetched from tenants'
// repositories. Every archive is hostile input: it is read under hard limits on
// size, file count and YAML shape, counted as the bytes stream rather than taken
// from headers, so a crafted archive costs bounded memory and time and is
// refused with a reason instead of reaching Helm's loader.
package chartarchive

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/slipwayhq/slipway/pkg/safeyaml"
)

// Limits bound what reading one archive may cost. Zero (or negative) fields
// take the defaults below.
type Limits struct {
	MaxCompressed   int64 // archive bytes; default 10 MiB
	MaxDecompressed int64 // sum of file sizes; default 50 MiB
	MaxFiles        int   // regular files; default 5000 (directory entries are bounded by the same number)
	MaxFileBytes    int64 // one file; default 5 MiB
	// MaxNesting bounds subchart levels (charts/ inside charts/, as directories
	// or as archives) that Load and Read will descend; default 10.
	MaxNesting int
	// YAML bounds each YAML file Helm's loader would parse; YAML.MaxNodes
	// also bounds all of them together.
	YAML safeyaml.Limits
}

// Defaults of Limits' zero fields.
const (
	DefaultMaxCompressed   = 10 << 20
	DefaultMaxDecompressed = 50 << 20
	DefaultMaxFiles        = 5000
	DefaultMaxFileBytes    = 5 << 20
	DefaultMaxNesting      = 10
)

// ErrRefused is wrapped by every error Files, Load and Read return for an
// archive: the rest of the message says which entry and which rule or limit.
var ErrRefused = errors.New("chart archive refused")

func (l Limits) withDefaults() Limits {
	if l.MaxCompressed <= 0 {
		l.MaxCompressed = DefaultMaxCompressed
	}
	if l.MaxDecompressed <= 0 {
		l.MaxDecompressed = DefaultMaxDecompressed
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = DefaultMaxFileBytes
	}
	if l.MaxNesting <= 0 {
		l.MaxNesting = DefaultMaxNesting
	}
	// The archive-wide YAML budget needs the number safeyaml would default to.
	if l.YAML.MaxNodes <= 0 {
		l.YAML.MaxNodes = safeyaml.DefaultMaxNodes
	}
	return l
}

// refuse builds an error wrapping ErrRefused and whatever %w the format holds,
// so callers can still tell a YAML limit (safeyaml.ErrLimit) from the rest.
func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrRefused, fmt.Errorf(format, args...))
}

// Digest returns "sha256:<hex>" of an archive, the form OCI and Helm
// provenance use, so digests compare as strings across sources.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}
