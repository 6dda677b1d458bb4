package registry

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The registry's API contract, shared by the service (package service),
// the client and the provider (which must not link the Kafka clients):
// names, limits and the request and response shapes of the Confluent
// Schema Registry API that this project uses.

// DefaultPort is the port registries listen on by convention (Confluent's).
const DefaultPort = 8081

// ContentType is the media type of the Confluent Schema Registry API.
const ContentType = "application/vnd.schemaregistry.v1+json"

// MaxBodyBytes bounds a request's body: a schema text with its docs
// (Rubin's v11 alert schema is about 70 KB).
const MaxBodyBytes = 1 << 20

// Role is what a user of the registry may do.
type Role string

const (
	// RoleRead may read schemas and subjects (every GET and the look-up
	// POST /subjects/{s}).
	RoleRead Role = "read"
	// RoleWrite may also register schemas.
	RoleWrite Role = "write"
)

// User is one account of the registry. A users file (minibroker registry
// --users) is a JSON array of them.
type User struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	Role     Role   `json:"role"`
}

// ParseUsers reads a users file and checks each user.
func ParseUsers(data []byte) ([]User, error) {
	var users []User
	if err := json.Unmarshal(data, &users); err != nil {
		return nil, fmt.Errorf("registry users: %w", err)
	}
	seen := map[string]bool{}
	for i, u := range users {
		switch {
		case seen[u.Name]:
			return nil, fmt.Errorf("registry user %s: listed twice", u.Name)
		case u.Name == "" || strings.Contains(u.Name, ":"):
			return nil, fmt.Errorf("registry user %d: name %q must be non-empty and without ':'", i, u.Name)
		case u.Password == "":
			return nil, fmt.Errorf("registry user %s: empty password", u.Name)
		case u.Role != RoleRead && u.Role != RoleWrite:
			return nil, fmt.Errorf("registry user %s: role %q, want %q or %q", u.Name, u.Role, RoleRead, RoleWrite)
		}
		seen[u.Name] = true
	}
	return users, nil
}

// RegisterRequest is the body of POST /subjects/{s}/versions and
// POST /subjects/{s}. ID asks for a given id, as an import does.
type RegisterRequest struct {
	Schema     string            `json:"schema"`
	SchemaType string            `json:"schemaType,omitempty"`
	References []json.RawMessage `json:"references,omitempty"`
	ID         int               `json:"id,omitempty"`
}

// SchemaResponse is the answer of GET /schemas/ids/{id}.
type SchemaResponse struct {
	Schema string `json:"schema"`
}

// VersionResponse is a subject's version, as GET
// /subjects/{s}/versions/{v} and the look-up POST /subjects/{s} return it.
type VersionResponse struct {
	Subject string `json:"subject"`
	ID      int    `json:"id"`
	Version int    `json:"version"`
	Schema  string `json:"schema"`
}
