module github.com/slipwayhq/slipway/gateway

go 1.26
