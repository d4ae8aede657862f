module example.com/net

go 1.24.0
