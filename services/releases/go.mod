module github.com/slipwayhq/slipway/services/releases

go 1.26
