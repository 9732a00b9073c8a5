package rueidisstore

// Rechecks returns how many Gets found in the cache something else than
// what this store wrote last, and asked the server.
func (s *Store) Rechecks() int64 { return s.rechecks.Load() }
