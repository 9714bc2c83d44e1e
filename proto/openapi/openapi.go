// Package openapi holds the OpenAPI document generated from Slipway's protos
// (`make generate`), which the gateway serves.
package openapi

import _ "embed"

//go:embed slipway.swagger.json
var document []byte

// Document returns the merged OpenAPI v2 document of every service.
func Document() []byte { return document }
