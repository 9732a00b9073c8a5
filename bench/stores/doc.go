// Package stores benchmarks the session stores against Fiber v2's
// middleware/session over the matching gofiber/storage adapter, where that
// needs a dependency that the store's own module must not carry (Redis:
// github.com/gofiber/storage/redis/v3). It is a module of its own so that the
// store modules' go.mod files name only what their packages need:
//
//	go test ./bench/stores -run '^$' -bench . -benchmem -count 3
//
// The package has no code of its own; everything is in its tests.
package stores
