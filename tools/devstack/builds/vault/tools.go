//go:build tools

// This file keeps github.com/hashicorp/vault in go.mod through `go mod tidy`;
// the binary is built with `go build github.com/hashicorp/vault`.
package vaultbuild

import _ "github.com/hashicorp/vault"
