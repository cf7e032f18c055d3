module github.com/ssehub/sse

go 1.24
