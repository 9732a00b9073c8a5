// Command _example is a small Fiber app that signs in, counts, flashes,
// lists the user's devices and signs out (here or everywhere else) with typed
// sessions. Run it with `go run ./_example` and open
// http://localhost:3000 (PORT changes the port; SESSION_SECRET, 32 bytes or
// more, keeps sessions across restarts).
//
// Every form and fetch is protected from cross-site request forgery: forms
// carry the token in a hidden field, the counter's fetch in the
// X-CSRF-Token header, and a cross-site post is refused with 403.
package main

import (
	"errors"
	"fmt"
	"html/template"
	"log"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fibersession/session"
)

// User is the signed-in user, kept under the value key "user".
type User struct {
	Name string `json:"name"` // as typed at sign-in
}

// Val is a session value: the user, or a counter.
type Val struct {
	User  *User `json:"user,omitempty"`  // under "user"
	Count int   `json:"count,omitempty"` // under a counter's name
}

// Msg is a flash message.
type Msg struct {
	Level string `json:"level"` // "info" or "error"
	Text  string `json:"text"`  // shown as it is
}

func main() {
	var secrets [][]byte
	if s := os.Getenv("SESSION_SECRET"); s != "" {
		secrets = [][]byte{[]byte(s)}
	}
	app, err := newApp(session.Config[Val, Msg]{
		Secrets: secrets,
		// Secure cookies are accepted from http://localhost by browsers; set
		// CookieInsecure only if you serve plain HTTP on another host name.
	})
	if err != nil {
		log.Fatal(err)
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "3000"
	}
	slog.Info("listening", "url", "http://localhost:"+port)
	log.Fatal(app.Listen(":" + port))
}

// newApp returns the example app. Its routes are also the end-to-end fixture.
func newApp(cfg session.Config[Val, Msg]) (*fiber.App, error) {
	// The devices list shows each session's browser and address. The
	// default store, in memory, keeps the index of each user's sessions.
	cfg.Devices = true
	m, err := session.NewManager(cfg)
	if err != nil {
		return nil, err
	}
	csrf, err := session.NewCSRF(m, session.CSRFConfig{})
	if err != nil {
		return nil, err
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true, ErrorHandler: errorPage})
	app.Use(m.Handler(), csrf.Handler()) // every POST below needs a token

	app.Get("/", func(c *fiber.Ctx) error {
		st, err := state(c, m)
		if err != nil {
			return err
		}
		// The token for the page's forms and fetch. A visitor without a
		// session gets it in a cookie: showing the sign-in form stores nothing.
		if st.Token, err = session.CSRFToken(c); err != nil {
			return err
		}
		c.Type("html", "utf-8")
		return page.Execute(c.Response().BodyWriter(), st)
	})

	app.Get("/api/state", func(c *fiber.Ctx) error {
		st, err := state(c, m)
		if err != nil {
			return err
		}
		return c.JSON(st)
	})

	app.Post("/login", func(c *fiber.Ctx) error {
		name := strings.TrimSpace(c.FormValue("name"))
		if name == "" || len(name) > 64 {
			return c.Status(fiber.StatusBadRequest).SendString("name: 1 to 64 characters")
		}
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.RegenerateID(true) // a new id, and a new CSRF token
		s.SetOwner(name)     // listed among name's devices
		s.Set("user", Val{User: &User{Name: name}})
		s.Flash("notice", Msg{"info", "Welcome, " + name})
		return c.Redirect("/", fiber.StatusSeeOther)
	})

	app.Post("/logout", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		s.Destroy()
		s.Flash("notice", Msg{"info", "Signed out"})
		return c.Redirect("/", fiber.StatusSeeOther)
	})

	app.Post("/logout-others", func(c *fiber.Ctx) error {
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		n, err := s.DestroyOthers(c.UserContext())
		if err != nil {
			return err
		}
		text := fmt.Sprintf("Signed out of %d other devices", n)
		if n == 1 {
			text = "Signed out of 1 other device"
		}
		s.Flash("notice", Msg{"info", text})
		return c.Redirect("/", fiber.StatusSeeOther)
	})

	app.Post("/count/:key", func(c *fiber.Ctx) error {
		key := c.Params("key")
		if key == "user" {
			return c.Status(fiber.StatusBadRequest).SendString("reserved key")
		}
		s, err := m.Get(c)
		if err != nil {
			return err
		}
		v, _ := s.Get(key)
		v.Count++
		s.Set(key, v)
		return c.JSON(fiber.Map{"key": key, "value": v.Count})
	})
	return app, nil
}

// errorPage answers an error with its status code and that status's text,
// never with the error's message. Fiber's default error handler sends the
// message, and for a request that fasthttp cannot parse the message quotes
// the request's headers, its cookies included: a page that echoes them
// hands the HttpOnly session cookie to whatever script can read the
// response (see SECURITY.md). Server errors are logged without the request's
// headers; parse errors, which quote them, are not logged at all.
func errorPage(c *fiber.Ctx, err error) error {
	code := fiber.StatusInternalServerError
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code = fe.Code
	}
	if code >= fiber.StatusInternalServerError {
		slog.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
	return c.Status(code).SendString(http.StatusText(code))
}

// State is what the page and /api/state show.
type State struct {
	User    *string        `json:"user"`    // nil when signed out
	Counts  map[string]int `json:"counts"`  // every counter by name
	Flash   []string       `json:"flash"`   // the messages of the previous request
	Devices []Device       `json:"devices"` // the user's sessions, latest first
	Token   string         `json:"-"`       // the page's CSRF token
}

// Device is one of the signed-in user's sessions. It holds no session id.
type Device struct {
	UserAgent string    `json:"userAgent"` // of its latest write
	IP        string    `json:"ip"`        // of its latest write
	Created   time.Time `json:"created"`   // its sign-in
	LastSeen  time.Time `json:"lastSeen"`  // to within Config.TouchInterval
	Current   bool      `json:"current"`   // the session of this request
}

func state(c *fiber.Ctx, m *session.Manager[Val, Msg]) (State, error) {
	s, err := m.Get(c)
	if err != nil {
		return State{}, err
	}
	st := State{Counts: map[string]int{}, Flash: []string{}, Devices: []Device{}}
	if v, ok := s.Get("user"); ok && v.User != nil {
		st.User = &v.User.Name
	}
	for _, k := range s.Keys() {
		if k != "user" {
			v, _ := s.Get(k)
			st.Counts[k] = v.Count
		}
	}
	devices, err := s.Devices(c.UserContext()) // none when signed out
	if err != nil {
		return State{}, err
	}
	for _, d := range devices {
		st.Devices = append(st.Devices, Device{d.UserAgent, d.IP, d.Created.UTC(), d.LastSeen.UTC(), d.Current})
	}
	keys := s.FlashKeys()
	sort.Strings(keys)
	for _, k := range keys {
		if msg, ok := s.GetFlash(k); ok {
			st.Flash = append(st.Flash, msg.Text)
		}
	}
	return st, nil
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fibersession example</title>
<meta name="csrf-token" content="{{.Token}}">
<style>body{font:16px system-ui;max-width:32rem;margin:3rem auto}.flash{background:#eef;padding:.5rem 1rem}</style>
</head><body>
<h1>fibersession</h1>
{{range .Flash}}<p class="flash">{{.}}</p>{{end}}
{{if .User}}
<p>Signed in as <strong>{{.User}}</strong>.</p>
<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="{{.Token}}"><button>Sign out</button></form>
<h2>Your devices</h2>
<ul>{{range .Devices}}
<li class="device">{{or .UserAgent "Unknown browser"}} at {{or .IP "an unknown address"}}, signed in {{.Created.Format "2006-01-02 15:04 MST"}}, last seen {{.LastSeen.Format "2006-01-02 15:04 MST"}}{{if .Current}} <em>this device</em>{{end}}</li>{{end}}
</ul>
{{if gt (len .Devices) 1}}<form method="post" action="/logout-others"><input type="hidden" name="csrf_token" value="{{.Token}}"><button>Sign out of all other devices</button></form>{{end}}
{{else}}
<form method="post" action="/login"><input type="hidden" name="csrf_token" value="{{.Token}}"><label>Name <input name="name" required maxlength="64"></label> <button>Sign in</button></form>
{{end}}
<p><button type="button" id="apples">Count apples</button></p>
{{if .Counts}}<ul>{{range $k, $v := .Counts}}<li>{{$k}}: {{$v}}</li>{{end}}</ul>{{end}}
<script>
document.getElementById("apples").onclick = async () => {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const r = await fetch("/count/apples", {method: "POST", headers: {"X-CSRF-Token": token}});
  if (r.ok) location.reload(); else alert(await r.text());
};
</script>
</body></html>
`))
