//go:build !unix

package sqltest

import "os/exec"

func serverUser() (*osUser, error) { return nil, errUnsupported }

func (u *osUser) apply(*exec.Cmd) {}

func processAlive(int) bool { return true }
