// Package natsstore keeps sessions in a NATS JetStream key-value bucket, so
// every app instance connected to the NATS cluster shares them and the
// bucket's replicas survive the loss of a server.
//
//	nc, _ := nats.Connect(url, nats.MaxReconnects(-1))
//	js, _ := jetstream.New(nc)
//	kv, _ := natsstore.CreateBucket(ctx, js, "sessions", 7*24*time.Hour)
//	store, _ := natsstore.New(ctx, kv, natsstore.Config{})
//
// # TTL and the bucket
//
// A key-value bucket has one TTL for all its keys (KeyValueConfig.TTL, the
// stream's MaxAge): the server removes a value that long after it was
// written. Sessions have TTLs of their own, so the store keeps each record's
// absolute expiry inside the value (8 bytes of big-endian Unix milliseconds
// from the app's clock, before the data) and treats a value past it as
// absent: it is never returned, touched or compared equal, and a
// compare-and-set with a nil old may overwrite it. The bucket TTL is only the
// garbage collector that eventually removes the bytes. Hence:
//
//   - The bucket TTL must be at least the longest TTL a session can get,
//     which is the middleware's AbsoluteTimeout (remember-me idle timeouts are
//     capped by it). New reads the bucket's TTL once, and Set, CompareAndSet
//     and Touch refuse a longer ttl with an error wrapping ErrTTLTooLong
//     rather than letting the server drop a session early. A bucket TTL of 0
//     accepts any ttl but never removes anything: expired records, and the
//     markers Delete leaves, stay until they are overwritten.
//   - Expired records occupy the bucket until the bucket TTL has passed since
//     their last write, so size the bucket (MaxBytes) for the sessions
//     written within one bucket TTL.
//   - The server's clock decides when the bucket TTL has passed and the app's
//     clock decides when a session expires; keep them in sync (NTP), or give
//     the bucket TTL a margin above AbsoluteTimeout.
//
// Per-message TTLs (servers 2.11+, KeyValueConfig.LimitMarkerTTL) are not
// used: nats.go can set them only on Create, not on Update, and the store
// rewrites records with Update, so the bucket TTL is the one that works on
// every JetStream server (tested against 2.9).
//
// # Compare-and-set
//
// CompareAndSet uses the bucket's per-key revisions. With a nil old it calls
// Create, which fails if the key holds a value; if that value turns out to be
// expired, it is replaced with Update against its revision. With a non-nil
// old it reads the value and its revision, compares the record with old, and
// writes with Update against that revision, so a write by anyone in between
// makes it report false. Touch is the same guarded rewrite with the data
// unchanged (KV has no TTL-only update): a touch that loses to a concurrent
// write is dropped, since that write set its own expiry.
//
// # Large records
//
// A NATS message is limited by the server's max_payload (1 MiB by default).
// Records longer than Config.ChunkSize are split into chunk keys named
// "<key>.<chunk set>.<n>", written before the record's own key, which then
// holds the chunk set's name, the number of chunks and the SHA-256 of the
// data instead of the data. Every write of such a record writes a new chunk
// set and, once the key points to it, purges the old one; reads verify the
// hash and re-read when a concurrent write purged the chunks they were
// reading; a compare-and-set compares old with the hash. Chunks that a
// failed or cancelled write could not purge, and those of a chunked record
// that Set replaces, are removed by the bucket TTL. Session records are
// normally far below the limit, so this costs nothing then.
//
// # Listing, counting, clearing
//
// The store implements session.Scanner, session.Counter and session.Clearer
// with a watcher (an ordered push consumer) on its own keys, which delivers
// the latest value of each key:
//
//   - Scan watches the session keys without their values, and reads the
//     records of each 1000 keys with a Get each (a chunked record from its
//     chunks), calling fn for each live one, until the watcher has
//     delivered every key there was when it started. Expired records and
//     values the store did not write are skipped. fn may call the store
//     (Delete included). The watcher does not wait for fn: nats.go buffers
//     what the server sends ahead, which is then each key's metadata (some
//     700 bytes a key), never the records (storetest.RunAdmin: 7 MB of live
//     heap at most while listing 10,000 records of 2 KiB).
//   - Count is exact: it counts the live records, not the expired ones the
//     bucket still holds, so it transfers every record's value (not its
//     chunks), as Scan does.
//   - Clear purges every session key, chunk key and owner index key of the
//     store, 16 at a time, each leaving a purge marker as Delete does.
//
// With a context that has no deadline, each wait for the server during a
// watch is bounded by 5 seconds (the time fn runs does not count), and a
// stalled watch fails with an error matching context.DeadlineExceeded.
//
// Only the store's own keys are read or purged. With the prefix P split into
// D, up to and including its last '.', and the rest R, a session's key is
// P+id (one token after D), a chunk's P+id+".<chunk set>.<n>" (three) and an
// owner's index P+"=owner.<owner>" (two); the store watches D* (and D*.*.*
// for chunks, those whose last two tokens are numbers as the store writes
// them, and P=owner.* for the index) and keeps the keys that start with P.
// So stores whose prefixes end in '.', and one whose prefix is "", share a
// bucket without seeing one another's keys, nested prefixes ("a." and
// "a.b.") included. The exceptions: a prefix that does not end in '.'
// claims every one-token key after D that starts with it (the store with
// prefix "app" sees the records of the one with prefix "app2"); and a key
// under a prefix two tokens longer, such as "a.b.7" under "a.b." next to "",
// looks like a chunk key when its last two tokens are numbers (the
// middleware's ids never are). Ids that contain '.' (the middleware's never
// do) are stored and read, but not listed, counted or cleared.
//
// # Owner index
//
// The store implements session.OwnerIndex with one key per owner,
// P+"=owner.<owner>", where <owner> is the owner in unpadded base64url ("="
// for the empty owner): one token of key characters for any owner, so no
// two owners share a key ("a" and "a.b", owners with wildcards, spaces or
// any bytes) and no owner's key is a session's or a chunk's. Its value lists
// the owner's entries: for each, its time (until, Unix milliseconds) and
// the id, which may be any string. So Owned is one Get, whatever the size
// of the bucket (a watcher filtered on one owner's keys would cost the
// server a pass over the whole bucket on JetStream 2.9), and Own and Disown
// are a read-modify-write: they read the value, drop the entries whose time
// has passed, add, move or remove the entry, and write the value back with
// Update against the revision read (Create for a new owner, a purge when no
// entry is left), reading again when another write came first (with a
// short random back-off; 100 concurrent Own of one owner take about a second
// or two). A Disown that removes nothing writes nothing.
//
// An owner's entries must fit in one message: about 50 bytes each for the
// middleware's ids, so some 20,000 within the server's default max_payload;
// beyond, Own fails. The store has no background cleanup: the entries of an
// owner who never signs in again stay until the bucket TTL has passed since
// the owner's key was last written, which is no earlier than the last
// entry's time because Own, like Set, refuses an until further away than
// the bucket TTL (ErrTTLTooLong). With a bucket TTL of 0 they stay until
// the owner's next Own or Disown, or Clear.
//
// # Timeouts and the connection
//
// The store does no I/O of its own beyond the calls it is given a context
// for. A context without a deadline is bounded by the JetStream context's
// default timeout (5 seconds; jetstream.WithDefaultTimeout, in nats.go v1.41
// and later, changes it); set the middleware's StoreTimeout to fail sooner. A
// context that is already done fails a call before any I/O. Recommended
// client options:
// nats.MaxReconnects(-1) so the client keeps reconnecting after an outage,
// and nats.ReconnectBufSize(-1) so requests made while disconnected fail at
// once instead of being buffered (a buffered write can otherwise reach the
// server after its caller has given up with a timeout).
//
// # Errors
//
// A missing or expired record is session.ErrNotFound. Every other error
// names the package and what failed ("natsstore: get: ...", "natsstore:
// update: ...", "natsstore: bucket status: ...") and wraps the error of
// nats.go; when the call's context has ended, it also matches
// context.Canceled or context.DeadlineExceeded.
//
// # Ownership
//
// The connection, the JetStream context and the bucket stay the caller's:
// the store closes nothing and starts no goroutines that outlive a call, so
// it has no Close.
package natsstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fibersession/session/internal/ctxerr"
)

// ErrTTLTooLong is wrapped by the error of a write whose ttl exceeds the
// bucket's TTL (see the package documentation).
var ErrTTLTooLong = errors.New("natsstore: ttl exceeds the bucket's TTL")

// DefaultChunkSize is the default Config.ChunkSize: half of the server's
// default max_payload, leaving room for headers.
const DefaultChunkSize = 512 << 10

// Config holds the store's options. The zero value is ready to use.
type Config struct {
	// Prefix is put before every session id to make its key, so that one
	// bucket can hold the sessions of several apps. It may hold the
	// characters of a NATS key (A-Z a-z 0-9 - _ = / .), must not start with
	// '.' or contain "..", and should end with a separator such as '.'.
	// Default: "" (the key is the session id).
	Prefix string

	// ChunkSize is the largest record stored in one message; longer ones
	// are split into chunks of this size. Keep it below the server's
	// max_payload minus about 1 KiB. Default: DefaultChunkSize (512 KiB).
	ChunkSize int
}

// Store is a session.Store on a JetStream key-value bucket. It implements
// session.Toucher, session.TTLGetter, session.CompareAndSetter,
// session.Scanner, session.Counter, session.Clearer and session.OwnerIndex,
// and is safe for concurrent use. It has no Close: the bucket is the
// caller's.
type Store struct {
	kv     jetstream.KeyValue
	prefix string
	chunk  int
	maxTTL time.Duration // the bucket's TTL; 0: no limit
}

// BucketConfig is the bucket configuration CreateBucket uses: one revision
// per key (so a purged session leaves no older revisions behind), file
// storage, and ttl as the bucket TTL. Adjust it (Replicas, MaxBytes,
// Placement) and pass it to jetstream.JetStream.CreateOrUpdateKeyValue to
// create a replicated bucket.
func BucketConfig(bucket string, ttl time.Duration) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "fibersession sessions",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
	}
}

// CreateBucket creates the bucket with BucketConfig(bucket, ttl), or binds to
// it and updates it to that configuration if it exists. Pass the session
// AbsoluteTimeout (or more) as ttl.
func CreateBucket(ctx context.Context, js jetstream.JetStream, bucket string, ttl time.Duration) (jetstream.KeyValue, error) {
	if ttl < 0 {
		return nil, errors.New("natsstore: negative bucket TTL")
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, BucketConfig(bucket, ttl))
	if err != nil {
		return nil, ctxerr.Wrap(ctx, "natsstore: create bucket", err)
	}
	return kv, nil
}

// New returns a store on kv. It reads the bucket's status once under ctx,
// to learn its TTL, and fails if kv is nil, cfg is invalid or the bucket
// cannot be reached. The bucket stays the caller's.
func New(ctx context.Context, kv jetstream.KeyValue, cfg Config) (*Store, error) {
	if kv == nil {
		return nil, errors.New("natsstore: nil KeyValue")
	}
	if !validPrefix(cfg.Prefix) {
		return nil, fmt.Errorf("natsstore: invalid key prefix %q", cfg.Prefix)
	}
	switch {
	case cfg.ChunkSize == 0:
		cfg.ChunkSize = DefaultChunkSize
	case cfg.ChunkSize < 0:
		return nil, errors.New("natsstore: negative ChunkSize")
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, ctxerr.Wrap(ctx, "natsstore: bucket status", err)
	}
	return &Store{kv: kv, prefix: cfg.Prefix, chunk: cfg.ChunkSize, maxTTL: st.TTL()}, nil
}

// validPrefix reports whether p followed by a session id is a valid key.
func validPrefix(p string) bool {
	if p == "" {
		return true
	}
	if p[0] == '.' || strings.Contains(p, "..") {
		return false
	}
	for _, c := range []byte(p) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '_' || c == '=' || c == '/' || c == '.':
		default:
			return false
		}
	}
	return true
}
