package session

import "github.com/gofiber/fiber/v2"

// New returns the Fiber middleware for cfg. A bad configuration is a
// programming error: New panics with the error NewManager would return (use
// NewManager to handle it instead).
func New[V, F any](cfg Config[V, F]) fiber.Handler {
	m, err := NewManager(cfg)
	if err != nil {
		panic(err)
	}
	return m.Handler()
}

// Get returns the request's session, loading it on the first call: the cookie
// is verified and the store read once per request, later calls return the
// same *Session. A missing, expired, undecodable or forged session yields a
// fresh one. A store failure is an error (a *StoreError); so is a request
// that no middleware of these types serves (ErrNoMiddleware), or that two or
// more do (ErrAmbiguous: use their Manager's Get).
func Get[V, F any](c *fiber.Ctx) (*Session[V, F], error) {
	return FromRequest[V, F](c.Context())
}

// Handler returns the Fiber middleware: it makes the session available to
// Get and, after the rest of the chain, saves it if it changed. A failed
// save, and a *StoreError the chain returns, are answered by
// Config.ErrorHandler.
func (m *Manager[V, F]) Handler() fiber.Handler {
	return func(c *fiber.Ctx) error {
		if m.cfg.Next != nil && m.cfg.Next(c) {
			return c.Next()
		}
		err, failed := m.Serve(c.Context(), c.Next)
		if failed {
			return m.cfg.ErrorHandler(c, err)
		}
		return err
	}
}

// Get returns the session of a request that passed through m's Handler. It
// works whatever other managers serve the request, of any types.
func (m *Manager[V, F]) Get(c *fiber.Ctx) (*Session[V, F], error) {
	return m.session(c.Context())
}
