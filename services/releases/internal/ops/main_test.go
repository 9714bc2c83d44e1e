package ops

import (
	"testing"

	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
)

func TestMain(m *testing.M) { sqltest.Main(m) }
