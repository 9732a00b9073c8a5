package session

import "github.com/bytedance/sonic"

// Codec encodes the session's values and flash messages, one value at a time.
// The record around them (timestamps, keys, versions) has its own format, so a
// codec only ever sees a V or an F.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSON is the default codec: JSON through bytedance/sonic, compatible with
// encoding/json's struct tags. It does not escape HTML and does not sort map
// keys, which is what sonic's default configuration does.
type JSON struct{}

// Marshal encodes v as JSON.
func (JSON) Marshal(v any) ([]byte, error) { return sonic.ConfigDefault.Marshal(v) }

// Unmarshal decodes JSON data into v.
func (JSON) Unmarshal(data []byte, v any) error { return sonic.ConfigDefault.Unmarshal(data, v) }
