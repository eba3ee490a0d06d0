module github.com/aegis-platform/aegis/internal/e2e/testdata/invoker

go 1.26

require github.com/aegis-platform/aegis/sdk/go v0.0.0

replace github.com/aegis-platform/aegis/sdk/go => ../../../../sdk/go
