package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Client settings, named as Confluent's clients name them (Python's
// SchemaRegistryClient takes the same keys), so one properties file serves
// both: `minibroker produce --registry FILE`, and the provider's outputs.
const (
	SettingURL      = "url"
	SettingUserInfo = "basic.auth.user.info" // USER:PASSWORD
	SettingCA       = "ssl.ca.location"      // PEM file of the CA to trust
)

// clientTimeout bounds one request.
const clientTimeout = 30 * time.Second

// Client is a small Confluent Schema Registry client: registration (for the
// producer) and schemas by id.
type Client struct {
	base       *url.URL
	user, pass string
	http       *http.Client
}

// NewClient returns a client for the settings (SettingURL and, optionally,
// SettingUserInfo and SettingCA).
func NewClient(settings map[string]string) (*Client, error) {
	u, err := url.Parse(settings[SettingURL])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("schema registry %s %q: want http(s)://HOST:PORT", SettingURL, settings[SettingURL])
	}
	c := &Client{base: u, http: &http.Client{Timeout: clientTimeout}}
	if info := settings[SettingUserInfo]; info != "" {
		var ok bool
		if c.user, c.pass, ok = strings.Cut(info, ":"); !ok {
			return nil, fmt.Errorf("schema registry %s: want USER:PASSWORD", SettingUserInfo)
		}
	}
	if path := settings[SettingCA]; path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("schema registry %s: %w", SettingCA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("schema registry %s %s: no PEM certificate", SettingCA, path)
		}
		c.http.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return c, nil
}

// Register registers schema text under subject, with id (0: the registry's
// rule), and returns the id it holds.
func (c *Client) Register(ctx context.Context, subject, text string, id int) (int, error) {
	req := RegisterRequest{Schema: text, ID: id}
	var out struct {
		ID int `json:"id"`
	}
	err := c.do(ctx, http.MethodPost, "/subjects/"+url.PathEscape(subject)+"/versions", req, &out)
	return out.ID, err
}

// Schema returns the schema text registered under id.
func (c *Client) Schema(ctx context.Context, id int) (string, error) {
	var out SchemaResponse
	err := c.do(ctx, http.MethodGet, "/schemas/ids/"+strconv.Itoa(id), nil, &out)
	return out.Schema, err
}

// APIError is an error answer of a registry, in Confluent's shape.
type APIError struct {
	Status  int
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("schema registry: HTTP %d, error %d: %s", e.Status, e.Code, e.Message)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	target := strings.TrimRight(c.base.String(), "/") + path // path is escaped
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("Accept", ContentType)
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("schema registry %s %s: %w", method, target, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes))
	if err != nil {
		return fmt.Errorf("schema registry %s %s: %w", method, target, err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, ae) != nil || ae.Message == "" {
			ae.Message = strings.TrimSpace(string(data))
		}
		return fmt.Errorf("%s %s: %w", method, path, ae)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("schema registry %s %s: answer %.80q: %w", method, path, data, err)
	}
	return nil
}
