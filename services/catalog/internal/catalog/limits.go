package catalog

import (
	"errors"
	"fmt"
	"regexp"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/slipwayhq/slipway/pkg/chartarchive"
	"github.com/slipwayhq/slipway/pkg/outbound"
	"github.com/slipwayhq/slipway/services/catalog/internal/fetch"
	"github.com/slipwayhq/slipway/services/catalog/internal/index"
)

// DefaultMaxIndexBytes is the largest index a repository may serve.
const DefaultMaxIndexBytes = 50 << 20

// Limits bound what the catalog reads from repositories.
type Limits struct {
	// Index bounds index.yaml files (MaxBytes: DefaultMaxIndexBytes).
	Index index.Limits
	// Archive bounds chart archives.
	Archive chartarchive.Limits
	// MaxOCIVersions bounds the versions an OCI repository sync reads.
	MaxOCIVersions int
}

func (l Limits) withDefaults() Limits {
	if l.Index.MaxBytes == 0 {
		l.Index.MaxBytes = DefaultMaxIndexBytes
	}
	if l.Archive.MaxCompressed == 0 {
		l.Archive.MaxCompressed = 10 << 20
	}
	if l.MaxOCIVersions == 0 {
		l.MaxOCIVersions = 5000
	}
	return l
}

// chartName is a chart name: an index key, or OCI path components.
var chartName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$`)

// filesCache keeps the parsed files of recently shown chart versions, by
// scope and digest, and makes concurrent first reads share one download.
type filesCache struct {
	lru    *lru.Cache[string, *chartarchive.Contents]
	flight singleflight.Group
}

func newFilesCache(n int) *filesCache {
	c, _ := lru.New[string, *chartarchive.Contents](n) // n > 0: never fails
	return &filesCache{lru: c}
}

func (c *filesCache) get(scope, digest string) (*chartarchive.Contents, bool) {
	return c.lru.Get(scope + "\x00" + digest)
}

func (c *filesCache) put(scope, digest string, v *chartarchive.Contents) {
	c.lru.Add(scope+"\x00"+digest, v)
}

// fetchError turns a repository fetch failure into the catalog's error:
// unavailable when retrying may help, unprocessable when the repository
// answered and will answer the same.
func fetchError(err error) error {
	switch {
	case errors.Is(err, fetch.ErrUnavailable):
		return fmt.Errorf("%w: %v", ErrRepositoryUnavailable, err)
	case errors.Is(err, outbound.ErrDenied), errors.Is(err, fetch.ErrTooLarge), errors.Is(err, fetch.ErrNotFound),
		errors.Is(err, fetch.ErrUnauthorized), errors.Is(err, fetch.ErrNotChart):
		return fmt.Errorf("%w: %v", ErrUnprocessable, err)
	}
	// TLS failures and the like: the repository's doing, and the text says
	// what (x509: certificate signed by unknown authority).
	return fmt.Errorf("%w: %v", ErrUnprocessable, outbound.RedactError(err))
}
