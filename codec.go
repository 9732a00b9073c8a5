package session

// Codec encodes the session's values and flash messages, one value at a time.
// The record around them (timestamps, keys, versions) has its own format, so a
// codec only ever sees a V or an F.
type Codec interface {
	// Marshal returns the encoding of v, a *V or a *F.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v, a *V or a *F. The session never changes
	// data, and keeps it for the rest of the request: decoded values may
	// share its memory.
	Unmarshal(data []byte, v any) error
}

// Appender is implemented by codecs that can append an encoding to a buffer.
// The record is then written without an allocation per value.
type Appender interface {
	// AppendMarshal appends the encoding of v to dst and returns the result.
	AppendMarshal(dst []byte, v any) ([]byte, error)
}

// JSON is the default codec, compatible with encoding/json's struct tags. On
// amd64 and arm64 it is bytedance/sonic; elsewhere (386, arm, riscv64, ...),
// where sonic does not run, it is encoding/json. Both read what the other
// writes, so apps on different platforms can share one store. It does not
// escape HTML. Decoded strings may share memory with the record they come
// from, which is never modified.
//
// JSON decodes into the static type: with V = any, numbers come back as
// float64 and structs as map[string]any on later requests. Use a concrete V
// (see the README's "Typed values").
type JSON struct{}
