// Package e2e drives Slipway end to end: the five real binaries (as make
// run starts them) on the real environment of tools/devstack, through the
// REST API only, as users do.
package e2e

import (
	"testing"

	"github.com/slipwayhq/slipway/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
