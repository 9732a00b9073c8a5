//go:build !amd64 && !arm64

package session

// Marshal encodes v as JSON.
func (JSON) Marshal(v any) ([]byte, error) { return stdMarshal(nil, v) }

// AppendMarshal appends the JSON encoding of v to dst.
func (JSON) AppendMarshal(dst []byte, v any) ([]byte, error) { return stdMarshal(dst, v) }

// Unmarshal decodes JSON data into v.
func (JSON) Unmarshal(data []byte, v any) error { return stdUnmarshal(data, v) }
