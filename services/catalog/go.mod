module github.com/slipwayhq/slipway/services/catalog

go 1.26
