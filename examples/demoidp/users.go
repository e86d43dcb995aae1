package demoidp

import (
	"errors"
	"fmt"
	"strings"

	"github.com/crewjam/saml/samlidp"
	"golang.org/x/crypto/bcrypt"
)

// User is a demo account. Its password is shown on the login page.
type User struct {
	// Username is what the person types to sign in. Empty means Email.
	Username string `json:"username,omitempty"`

	// Password is shown on the login page next to the account.
	Password string `json:"password"`

	// Email is the NameID and the email attribute of the assertions.
	Email string `json:"email"`

	// Name is the displayName attribute of the assertions. Empty means
	// the part of Email before the @.
	Name string `json:"name,omitempty"`
}

// DemoPassword is the password of every account in DefaultUsers.
const DemoPassword = "demo"

// DefaultUsers returns the accounts of the demo: four people at Acme
// (acme.test) and one at Globex (globex.test), all with DemoPassword.
// Their names have an accent and an apostrophe, which pages must escape.
func DefaultUsers() []User {
	people := []struct{ email, name string }{
		{"alice@acme.test", "Alice Martin"},
		{"bob@acme.test", "Bob Nguyen"},
		{"carol@acme.test", "Carol Díaz"},
		{"dave@acme.test", "Dave O'Brien"},
		{"erin@globex.test", "Erin Kowalski"},
	}
	users := make([]User, len(people))
	for i, p := range people {
		users[i] = User{
			Username: p.email,
			Password: DemoPassword,
			Email:    p.email,
			Name:     p.name,
		}
	}
	return users
}

// checkUsers fills in the defaults of each user and checks that every
// account has an email and a password, and that no username is taken
// twice.
func checkUsers(in []User) ([]User, error) {
	users := make([]User, len(in))
	seen := make(map[string]bool, len(in))
	for i, u := range in {
		u = normalizeUser(u)
		if err := checkUser(u); err != nil {
			return nil, fmt.Errorf("user %d: %w", i+1, err)
		}
		if seen[u.Username] {
			return nil, fmt.Errorf("user %q is configured twice", u.Username)
		}
		seen[u.Username] = true
		users[i] = u
	}
	return users, nil
}

// normalizeUser returns u in lower case, with its defaults filled in.
func normalizeUser(u User) User {
	u.Email = strings.ToLower(strings.TrimSpace(u.Email))
	if u.Username == "" {
		u.Username = u.Email
	}
	u.Username = strings.ToLower(strings.TrimSpace(u.Username))
	if u.Name == "" {
		u.Name, _, _ = strings.Cut(u.Email, "@")
	}
	return u
}

// checkUser checks one account with its defaults filled in.
func checkUser(u User) error {
	local, domain, ok := strings.Cut(u.Email, "@")
	switch {
	case !ok || local == "" || domain == "" || strings.Contains(domain, "@"):
		return fmt.Errorf("email %q is not an email address", u.Email)
	case u.Password == "":
		return fmt.Errorf("%s has no password", u.Email)
	case strings.ContainsAny(u.Username, "/?#"):
		// The username is a key of samlidp's store, which is
		// path-like.
		return fmt.Errorf("username %q has one of / ? #", u.Username)
	}
	return nil
}

// putUsers stores the accounts for samlidp. The passwords are hashed at
// bcrypt's lowest cost: they are printed on the login page anyway.
func putUsers(store samlidp.Store, users []User) error {
	for _, u := range users {
		hash, err := bcrypt.GenerateFromPassword([]byte(u.Password),
			bcrypt.MinCost)
		if err != nil {
			return fmt.Errorf("hashing the password of %s: %w", u.Email, err)
		}
		stored := samlidp.User{
			Name:           u.Username,
			HashedPassword: hash,
			Email:          u.Email,
			CommonName:     u.Name,
		}
		if err := store.Put("/users/"+u.Username, &stored); err != nil {
			return fmt.Errorf("storing user %s: %w", u.Username, err)
		}
	}
	return nil
}

// errUnknownUser is returned by userByName for a username no account has.
var errUnknownUser = errors.New("unknown user")

// userByName returns the account with the given username, compared
// without regard to case.
func (idp *IDP) userByName(name string) (User, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	for _, u := range idp.users {
		if u.Username == name {
			return u, nil
		}
	}
	return User{}, errUnknownUser
}
