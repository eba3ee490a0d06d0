module example.test/vulnlib

go 1.24
