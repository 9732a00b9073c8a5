// Package session is typed, signed sessions with flash messages for Fiber v2
// and plain fasthttp.
//
//	app.Use(session.New(session.Config[User, Msg]{Secrets: [][]byte{key}}))
//
//	app.Post("/login", func(c *fiber.Ctx) error {
//		s, err := session.Get[User, Msg](c) // loads lazily, once per request
//		if err != nil {
//			return err // the store failed
//		}
//		s.RegenerateID(true)
//		s.Set("user", User{ID: 7, Name: "ada"})
//		s.Flash("notice", Msg{"info", "Welcome back"})
//		return c.Redirect("/", fiber.StatusSeeOther)
//	})
//
// A session holds values of type V and flash messages of type F under string
// keys. The middleware reads nothing until a handler asks for the session,
// writes only a session that changed, and extends an unchanged one's idle
// expiry with a cheap touch at most once per Config.TouchInterval. A flash
// message is seen by the next request that loads the session and then
// dropped. The cookie carries a 256-bit random id signed with HMAC-SHA256; a
// client never chooses its id. Records live in a Store: the in-memory store
// by default, or one of the modules under stores/.
package session
