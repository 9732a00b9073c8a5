// The CI tools (doccheck, modproxy). Not published: nothing outside .ci
// imports it.
module github.com/fibersession/session/ci

go 1.23

require golang.org/x/mod v0.2.0

require golang.org/x/xerrors v0.0.0-20191011141410-1b5146add898 // indirect
