package ctxerr

import (
	"context"
	"errors"
	"testing"
)

func TestWrap(t *testing.T) {
	errIO := errors.New("i/o timeout")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for name, tc := range map[string]struct {
		ctx  context.Context
		err  error
		want string
		is   []error
	}{
		"nil":             {context.Background(), nil, "", nil},
		"live context":    {context.Background(), errIO, "teststore: get: i/o timeout", []error{errIO}},
		"ended context":   {cancelled, errIO, "teststore: get: context canceled: i/o timeout", []error{errIO, context.Canceled}},
		"already says so": {cancelled, context.Canceled, "teststore: get: context canceled", []error{context.Canceled}},
	} {
		t.Run(name, func(t *testing.T) {
			got := Wrap(tc.ctx, "teststore: get", tc.err)
			if tc.err == nil {
				if got != nil {
					t.Fatalf("Wrap(nil) = %v", got)
				}
				return
			}
			if got.Error() != tc.want {
				t.Errorf("Wrap = %q, want %q", got, tc.want)
			}
			for _, e := range tc.is {
				if !errors.Is(got, e) {
					t.Errorf("%v does not match %v", got, e)
				}
			}
		})
	}
}
