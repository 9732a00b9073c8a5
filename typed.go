package session

import (
	"encoding/json"
	"log/slog"
	"reflect"
)

// warnUntyped logs a warning when V or F holds an interface type anywhere
// (any, map[string]any, a struct field of type error, ...) and the codec is
// the JSON default: JSON decodes into the static type, so a value stored as
// an int comes back as float64, and a struct as map[string]any, on the next
// request.
func warnUntyped[V, F any](log *slog.Logger, c Codec) {
	if _, ok := c.(JSON); !ok {
		return
	}
	for _, t := range []reflect.Type{reflect.TypeOf((*V)(nil)).Elem(), reflect.TypeOf((*F)(nil)).Elem()} {
		if path, ok := interfaceIn(t, "", map[reflect.Type]bool{}); ok {
			log.Warn("session: the JSON codec cannot restore the concrete types behind an interface: numbers come back as float64 and structs as map[string]any on later requests; use concrete types (see the README's \"Typed values\")",
				"type", t.String(), "at", path)
		}
	}
}

var unmarshaler = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()

// interfaceIn returns the path to the first interface type within t.
func interfaceIn(t reflect.Type, path string, seen map[reflect.Type]bool) (string, bool) {
	if seen[t] {
		return "", false
	}
	seen[t] = true
	if reflect.PointerTo(t).Implements(unmarshaler) {
		return "", false // decodes itself
	}
	switch t.Kind() {
	case reflect.Interface:
		if path == "" {
			path = t.String()
		}
		return path, true
	case reflect.Pointer:
		return interfaceIn(t.Elem(), path, seen)
	case reflect.Slice, reflect.Array:
		return interfaceIn(t.Elem(), path+"[]", seen)
	case reflect.Map:
		return interfaceIn(t.Elem(), path+"[key]", seen)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() || f.Tag.Get("json") == "-" {
				continue
			}
			if p, ok := interfaceIn(f.Type, path+"."+f.Name, seen); ok {
				return p, true
			}
		}
	}
	return "", false
}
