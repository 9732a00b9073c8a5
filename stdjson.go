package session

import (
	"bytes"
	"encoding/json"
)

// stdMarshal appends the encoding/json encoding of v to dst, without HTML
// escaping, as sonic writes it: the JSON codec where sonic does not run.
func stdMarshal(dst []byte, v any) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return dst, err
	}
	b := buf.Bytes()
	return b[:len(b)-1], nil // Encode ends with a newline
}

// stdUnmarshal decodes data into v with encoding/json.
func stdUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
