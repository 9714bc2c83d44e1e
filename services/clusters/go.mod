module github.com/slipwayhq/slipway/services/clusters

go 1.26
