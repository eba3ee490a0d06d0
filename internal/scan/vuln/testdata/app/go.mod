module example.test/app

go 1.24

require example.test/vulnlib v1.0.0
