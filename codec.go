package session

import (
	"sync"
	"unsafe"

	"github.com/bytedance/sonic"
	sonicdec "github.com/bytedance/sonic/decoder"
	sonicenc "github.com/bytedance/sonic/encoder"
)

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

// JSON is the default codec: JSON through bytedance/sonic, compatible with
// encoding/json's struct tags. It does not escape HTML and does not sort map
// keys (sonic's default configuration). Decoded strings share memory with
// the record they come from, which is never modified.
type JSON struct{}

// Marshal encodes v as JSON.
func (JSON) Marshal(v any) ([]byte, error) { return sonic.ConfigDefault.Marshal(v) }

// AppendMarshal appends the JSON encoding of v to dst.
func (JSON) AppendMarshal(dst []byte, v any) ([]byte, error) {
	err := sonicenc.EncodeInto(&dst, v, 0) // sonic's default configuration
	return dst, err
}

// Unmarshal decodes JSON data into v.
func (JSON) Unmarshal(data []byte, v any) error {
	d := decoders.Get().(*sonicdec.Decoder)
	d.Reset(unsafe.String(unsafe.SliceData(data), len(data)))
	err := d.Decode(v)
	if err == nil {
		err = d.CheckTrailings()
	}
	d.Reset("")
	decoders.Put(d)
	return err
}

// decoders are reused: sonic's configured Unmarshal allocates one per call.
var decoders = sync.Pool{New: func() any { return sonicdec.NewDecoder("") }}
