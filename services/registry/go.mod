module github.com/slipwayhq/slipway/services/registry

go 1.26.0

require (
	github.com/distribution/reference v0.6.0 // indirect
	github.com/go-kit/kit v0.13.0 // indirect
	github.com/google/go-cmp v0.7.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	google.golang.org/genproto v0.0.0-20261019180522-ce908d29299b // indirect
)
