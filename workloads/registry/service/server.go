// Package service is the schema registry service: a Store that keeps the
// registry's state (package registry) in step with its Kafka topic, and
// the Confluent Schema Registry REST API over it (`minibroker registry`).
// It links the Kafka clients; the contract others need (users, settings,
// ports, request shapes) is in package registry, which does not.
package service

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
)

// Error codes of the Confluent Schema Registry API, whose first three digits
// are the HTTP status.
const (
	codeUnauthorized    = 40101
	codeForbidden       = 40301
	codeSubjectNotFound = 40401
	codeVersionNotFound = 40402
	codeSchemaNotFound  = 40403
	codeNoSuchEndpoint  = 40400
	codeInvalidSchema   = 42201
	codeInvalidVersion  = 42202
	codeNotPermitted    = 42205
	codeBackend         = 50001
	codeTimeout         = 50002
)

// Limits on what a request may cost.
const (
	requestTimeout = 30 * time.Second
	// maxInFlight bounds the requests served at once, and so the memory
	// their bodies take (registry.MaxBodyBytes each).
	maxInFlight = 16
)

// Server serves the Confluent Schema Registry REST API over a Store: the
// read endpoints the serializers and deserializers of Confluent's clients
// use, registration and look-up. Users (HTTP Basic) each have a registry.Role; with
// no users every request is allowed.
type Server struct {
	store *Store
	users map[string]registry.User
	log   *slog.Logger
	slots chan struct{} // one per request in flight
}

// NewServer returns the API over store for users.
func NewServer(store *Store, users []registry.User, log *slog.Logger) *Server {
	m := map[string]registry.User{}
	for _, u := range users {
		m[u.Name] = u
	}
	return &Server{store: store, users: m, log: log, slots: make(chan struct{}, maxInFlight)}
}

// apiError is a response in Confluent's error shape. Its HTTP status is
// the code's first three digits, or the code itself when it has only three
// (405, as Confluent's server answers a method a path does not take).
type apiError struct {
	Code    int    `json:"error_code"`
	Message string `json:"message"`
	allow   string // the Allow header of a 405
}

func (e *apiError) status() int {
	if e.Code < 1000 {
		return e.Code
	}
	return e.Code / 100
}

func (e *apiError) Error() string { return e.Message }

func errorf(code int, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ServeHTTP routes the API's paths. At most maxInFlight requests run at
// once; the others wait for a slot within their timeout.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	r = r.WithContext(ctx)
	var out any
	var err error
	select {
	case s.slots <- struct{}{}:
		out, err = s.route(r)
		<-s.slots
	case <-ctx.Done():
		err = fmt.Errorf("waiting for a request slot: %w", ctx.Err())
	}
	w.Header().Set("Content-Type", registry.ContentType)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = errorf(codeBackend, "%v", err)
			if errors.Is(err, context.DeadlineExceeded) {
				ae.Code = codeTimeout
			}
			s.log.Error("schema registry request", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		if ae.Code == codeUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="minibroker schema registry"`)
		}
		if ae.allow != "" {
			w.Header().Set("Allow", ae.allow)
		}
		w.WriteHeader(ae.status())
		_ = json.NewEncoder(w).Encode(ae)
		return
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) route(r *http.Request) (any, error) {
	role, err := s.authenticate(r)
	if err != nil {
		return nil, err
	}
	// Split the escaped path, so that a subject may hold an escaped "/".
	parts := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
	for i, p := range parts {
		var err error
		if parts[i], err = url.PathUnescape(p); err != nil {
			return nil, errorf(codeNoSuchEndpoint, "Bad path %s: %v", r.URL.EscapedPath(), err)
		}
	}
	methods := s.endpoint(r, role, parts)
	if methods == nil {
		return nil, errorf(codeNoSuchEndpoint, "HTTP %s %s is not part of this registry's API", r.Method, r.URL.Path)
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet // net/http sends no body for HEAD
	}
	serve, ok := methods[method]
	if !ok {
		allow := make([]string, 0, len(methods)+1)
		for m := range methods {
			allow = append(allow, m)
		}
		if methods[http.MethodGet] != nil {
			allow = append(allow, http.MethodHead)
		}
		slices.Sort(allow)
		return nil, &apiError{Code: http.StatusMethodNotAllowed, Message: "HTTP 405 Method Not Allowed", allow: strings.Join(allow, ", ")}
	}
	return serve()
}

// endpoint returns how each method is served on the path parts, or nil for
// a path that is not part of the API.
func (s *Server) endpoint(r *http.Request, role registry.Role, parts []string) map[string]func() (any, error) {
	get := func(f func() (any, error)) map[string]func() (any, error) {
		return map[string]func() (any, error){http.MethodGet: f}
	}
	switch {
	case len(parts) == 1 && parts[0] == "":
		return get(func() (any, error) { return map[string]any{}, nil })
	case len(parts) == 1 && parts[0] == "config":
		return get(func() (any, error) {
			var level string
			s.store.Read(func(st *registry.State) { level = st.Compatibility() })
			return registry.ConfigValue{CompatibilityLevel: level}, nil
		})
	case len(parts) == 2 && parts[0] == "config":
		return get(func() (any, error) { return s.subjectConfig(r, parts[1]) })
	case len(parts) == 3 && parts[0] == "schemas" && parts[1] == "ids":
		return get(func() (any, error) { return s.schemaByID(r, parts[2]) })
	case len(parts) == 4 && parts[0] == "schemas" && parts[1] == "ids" && parts[3] == "versions":
		return get(func() (any, error) { return s.idVersions(r, parts[2]) })
	case len(parts) == 1 && parts[0] == "subjects":
		return get(func() (any, error) {
			var subjects []string
			s.store.Read(func(st *registry.State) { subjects = st.Subjects() })
			return nonNil(subjects), nil
		})
	case len(parts) == 2 && parts[0] == "subjects":
		return map[string]func() (any, error){http.MethodPost: func() (any, error) { return s.lookup(r, parts[1]) }}
	case len(parts) == 3 && parts[0] == "subjects" && parts[2] == "versions":
		return map[string]func() (any, error){
			http.MethodGet: func() (any, error) { return s.versions(parts[1]) },
			http.MethodPost: func() (any, error) {
				if role != registry.RoleWrite {
					return nil, errorf(codeForbidden, "This user may not register schemas")
				}
				return s.register(r, parts[1])
			},
		}
	case len(parts) == 4 && parts[0] == "subjects" && parts[2] == "versions":
		return get(func() (any, error) { return s.version(parts[1], parts[3]) })
	case len(parts) == 5 && parts[0] == "subjects" && parts[2] == "versions" && parts[4] == "schema":
		return get(func() (any, error) {
			v, err := s.version(parts[1], parts[3])
			if err != nil {
				return nil, err
			}
			return json.RawMessage(v.Schema), nil
		})
	}
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// authenticate checks HTTP Basic credentials and returns the user's role
// (RoleWrite when the registry has no users). Passwords are compared as
// SHA-256 digests in constant time, an unknown user's against the digest
// of nothing, so timing tells neither a password's length nor whether a
// user exists.
func (s *Server) authenticate(r *http.Request) (registry.Role, error) {
	if len(s.users) == 0 {
		return registry.RoleWrite, nil
	}
	name, pass, ok := r.BasicAuth()
	u, known := s.users[name]
	got, want := sha256.Sum256([]byte(pass)), sha256.Sum256([]byte(u.Password))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || !ok || !known {
		return "", errorf(codeUnauthorized, "Unauthorized: this registry needs HTTP Basic credentials")
	}
	return u.Role, nil
}

func (s *Server) schemaByID(r *http.Request, idText string) (any, error) {
	id, err := strconv.Atoi(idText)
	if err != nil || id < 1 {
		return nil, errorf(codeSchemaNotFound, "Schema %s not found", idText)
	}
	text, ok := s.schemaText(r.Context(), id)
	if !ok {
		return nil, errorf(codeSchemaNotFound, "Schema %d not found", id)
	}
	return registry.SchemaResponse{Schema: text}, nil
}

// schemaText looks an id up, reading the topic to its end first when the
// id is unknown (another writer may have just registered it).
func (s *Server) schemaText(ctx context.Context, id int) (string, bool) {
	var text string
	var ok bool
	s.store.Read(func(st *registry.State) { text, ok = st.Schema(id) })
	if !ok && s.store.Sync(ctx) == nil {
		s.store.Read(func(st *registry.State) { text, ok = st.Schema(id) })
	}
	return text, ok
}

func (s *Server) idVersions(r *http.Request, idText string) (any, error) {
	id, err := strconv.Atoi(idText)
	if err != nil || id < 1 {
		return nil, errorf(codeSchemaNotFound, "Schema %s not found", idText)
	}
	if _, ok := s.schemaText(r.Context(), id); !ok {
		return nil, errorf(codeSchemaNotFound, "Schema %d not found", id)
	}
	var vs []registry.SubjectVersion
	s.store.Read(func(st *registry.State) { vs = st.IDVersions(id) })
	return nonNil(vs), nil
}

func (s *Server) subjectConfig(r *http.Request, subject string) (any, error) {
	if r.URL.Query().Get("defaultToGlobal") != "true" {
		return nil, errorf(codeSubjectNotFound, "Subject '%s' does not have subject-level compatibility configured", subject)
	}
	var level string
	s.store.Read(func(st *registry.State) { level = st.Compatibility() })
	return registry.ConfigValue{CompatibilityLevel: level}, nil
}

func (s *Server) versions(subject string) (any, error) {
	var vs []int
	s.store.Read(func(st *registry.State) { vs = st.Versions(subject) })
	if len(vs) == 0 {
		return nil, errorf(codeSubjectNotFound, "Subject '%s' not found.", subject)
	}
	return vs, nil
}

func (s *Server) version(subject, versionText string) (registry.VersionResponse, error) {
	n := -1
	if versionText != "latest" && versionText != "-1" {
		var err error
		if n, err = strconv.Atoi(versionText); err != nil || n < 1 {
			return registry.VersionResponse{}, errorf(codeInvalidVersion, "The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", versionText)
		}
	}
	var v registry.SchemaValue
	var subjectKnown, ok bool
	s.store.Read(func(st *registry.State) {
		subjectKnown = len(st.Versions(subject)) > 0
		v, ok = st.Version(subject, n)
	})
	switch {
	case !subjectKnown:
		return registry.VersionResponse{}, errorf(codeSubjectNotFound, "Subject '%s' not found.", subject)
	case !ok:
		return registry.VersionResponse{}, errorf(codeVersionNotFound, "Version %s not found.", versionText)
	}
	return registry.VersionResponse{Subject: v.Subject, ID: v.ID, Version: v.Version, Schema: v.Schema}, nil
}

func readRegisterRequest(r *http.Request) (registry.RegisterRequest, error) {
	var req registry.RegisterRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, registry.MaxBodyBytes+1))
	if err != nil {
		return req, errorf(codeInvalidSchema, "Reading the request: %v", err)
	}
	if len(body) > registry.MaxBodyBytes {
		return req, errorf(codeInvalidSchema, "The request is over %d bytes", registry.MaxBodyBytes)
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, errorf(codeInvalidSchema, "The request is not a JSON schema registration: %v", err)
	}
	switch {
	case req.SchemaType != "" && req.SchemaType != "AVRO":
		return req, errorf(codeInvalidSchema, "Schema type %s is not supported: this registry holds Avro schemas", req.SchemaType)
	case len(req.References) > 0:
		return req, errorf(codeInvalidSchema, "Schema references are not supported: register a self-contained schema")
	case req.ID != 0 && !registry.ValidID(req.ID):
		return req, errorf(codeInvalidSchema, "Schema id %d is not valid: ids are 1 to 2^31-1", req.ID)
	}
	return req, nil
}

func (s *Server) register(r *http.Request, subject string) (any, error) {
	if subject == "" {
		return nil, errorf(codeInvalidSchema, "The subject is empty")
	}
	req, err := readRegisterRequest(r)
	if err != nil {
		return nil, err
	}
	v, err := s.store.Register(r.Context(), subject, req.Schema, req.ID)
	switch {
	case errors.Is(err, registry.ErrInvalidSchema):
		return nil, errorf(codeInvalidSchema, "Invalid schema: %v", err)
	case errors.Is(err, registry.ErrIDTaken):
		return nil, errorf(codeNotPermitted, "Registering this schema is not permitted: %v", err)
	case err != nil:
		return nil, err
	}
	s.log.Info("schema registered", "subject", subject, "version", v.Version, "id", v.ID)
	return struct {
		ID int `json:"id"`
	}{v.ID}, nil
}

func (s *Server) lookup(r *http.Request, subject string) (any, error) {
	req, err := readRegisterRequest(r)
	if err != nil {
		return nil, err
	}
	schema, err := registry.Parse(req.Schema)
	if err != nil {
		return nil, errorf(codeInvalidSchema, "Invalid schema: %v", err)
	}
	if err := s.store.Sync(r.Context()); err != nil {
		return nil, err
	}
	var plan registry.Plan
	var known bool
	s.store.Read(func(st *registry.State) {
		known = len(st.Versions(subject)) > 0
		plan, err = st.PlanRegister(subject, schema, req.Schema, 0)
	})
	switch {
	case !known:
		return nil, errorf(codeSubjectNotFound, "Subject '%s' not found.", subject)
	case err != nil || !plan.Existing:
		return nil, errorf(codeSchemaNotFound, "Schema not found")
	}
	v := plan.Value
	return registry.VersionResponse{Subject: v.Subject, ID: v.ID, Version: v.Version, Schema: v.Schema}, nil
}
