//go:build amd64 || arm64

package session

import (
	"sync"
	"unsafe"

	"github.com/bytedance/sonic"
	sonicdec "github.com/bytedance/sonic/decoder"
	sonicenc "github.com/bytedance/sonic/encoder"
)

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
