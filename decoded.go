package session

import (
	"bytes"
	"hash/maphash"
	"reflect"
	"sync/atomic"
)

// decoded keeps decoded values across requests, so that a value stored
// unchanged is decoded once rather than by every request that reads it. It
// serves only a type whose values share nothing a request could change in
// place (see shareable). It is direct-mapped, like the signer's cache of
// verified tokens: one slot per keyed hash of the encoded value, which keeps
// a value once it was looked up twice in a row there, so a value rewritten
// on every request (a counter) costs nothing but a hash. Its memory is
// bounded: decodedSlots slots of at most maxDecoded encoded bytes each.
type decoded[V any] struct {
	seed  maphash.Seed
	slots [decodedSlots]decodedSlot[V]
}

const (
	decodedSlots = 1024
	maxDecoded   = 256 // longer encoded values are decoded every time
)

type decodedSlot[V any] struct {
	seen atomic.Uint64                   // hash of the last value looked up here
	kept atomic.Pointer[decodedValue[V]] // never changed once stored
}

type decodedValue[V any] struct {
	raw []byte // a copy of the encoded value: v's strings may share its memory
	v   V
}

// newDecoded returns the cache for values of type V, or nil when V can hold
// something mutable.
func newDecoded[V any]() *decoded[V] {
	if !shareable(reflect.TypeFor[V]()) {
		return nil
	}
	return &decoded[V]{seed: maphash.MakeSeed()}
}

// shareable reports whether values of t can be handed to several requests
// at once: t holds no pointer, slice, map, channel, function or interface,
// only numbers, strings (immutable), and arrays and structs of them.
func shareable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128, reflect.String:
		return true
	case reflect.Array:
		return shareable(t.Elem())
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if !shareable(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}

// decode decodes raw into *v with c, or copies the value kept for raw. A
// nil d decodes.
func (d *decoded[V]) decode(c Codec, raw []byte, v *V) error {
	if d == nil || len(raw) > maxDecoded {
		return c.Unmarshal(raw, v)
	}
	h := maphash.Bytes(d.seed, raw)
	slot := &d.slots[h%decodedSlots]
	if k := slot.kept.Load(); k != nil && string(k.raw) == string(raw) {
		*v = k.v
		return nil
	}
	if slot.seen.Swap(h) != h { // first look-up: not kept yet
		return c.Unmarshal(raw, v)
	}
	k := &decodedValue[V]{raw: bytes.Clone(raw)}
	if err := c.Unmarshal(k.raw, &k.v); err != nil {
		return err
	}
	slot.kept.Store(k)
	*v = k.v
	return nil
}
