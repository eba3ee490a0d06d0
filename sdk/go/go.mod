module github.com/aegis-platform/aegis/sdk/go

go 1.26
