module example.com/bench/gohttp

go 1.26

require github.com/aegis-platform/aegis/sdk/go v0.0.0

replace github.com/aegis-platform/aegis/sdk/go => ../../../sdk/go
