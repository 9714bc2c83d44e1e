module github.com/slipwayhq/slipway/tools

go 1.26
