//go:build !unix

package sqltest

import (
	"errors"
	"os/exec"
)

var errUnsupported = errors.New("the postgres test server needs a unix system")

func serverUser() (*osUser, error) { return nil, errUnsupported }

func (u *osUser) apply(*exec.Cmd) {}

func processAlive(int) bool { return true }
