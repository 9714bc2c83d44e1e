package registry

import (
	"os"
	"testing"

	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
	"github.com/slipwayhq/slipway/pkg/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(func() int { return sqltest.Run(m) })) }
