package alert

import (
	"errors"
	"fmt"

	"github.com/hamba/avro/v2"
)

// Errors of decoding, detectable with errors.Is.
var (
	// ErrUnknownSchema means a message's schema id is not in the Registry:
	// its schema has not been published or registered yet.
	ErrUnknownSchema = errors.New("unknown schema id")
	// ErrMalformed means a message or payload is not valid for its schema:
	// bad wire header, truncated or corrupt Avro, or trailing bytes.
	ErrMalformed = errors.New("malformed alert")
)

// DecodeOption changes how payloads are decoded.
type DecodeOption func(*decodeConfig)

type decodeConfig struct {
	skipBytes bool
	fields    map[string]bool
}

// WithFields builds only the named top-level fields of the record and skips
// the others, which are then absent from the map. A filter whose expressions
// read only alert.diaSource need not build the history, the object and the
// cutouts of every alert.
func WithFields(names ...string) DecodeOption {
	return func(c *decodeConfig) {
		c.fields = make(map[string]bool, len(names))
		for _, n := range names {
			c.fields[n] = true
		}
	}
}

// WithoutBytes leaves every bytes and fixed value (the image cutouts of an
// alert) nil instead of copying it out of the payload. Filters rarely look
// at cutouts; skipping them saves a copy and an allocation of ~80 KB per
// Rubin-size alert.
func WithoutBytes() DecodeOption {
	return func(c *decodeConfig) { c.skipBytes = true }
}

func newDecodeConfig(opts []DecodeOption) decodeConfig {
	var c decodeConfig
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Decode decodes an Avro binary payload (no wire header) written with
// schema, which must be a record schema, into a normalised generic record
// that CEL can evaluate:
//
//   - records and maps: map[string]any
//   - arrays: []any
//   - unions: the value of the branch written (nil for null), not hamba's
//     map[string]any{"type name": value} wrapper
//   - int and long: int64 (logical types such as timestamps stay int64)
//   - float and double: float64
//   - bytes and fixed: []byte, copied (nil with WithoutBytes)
//   - string: string; enum: the symbol as a string; boolean: bool
//
// The payload must hold exactly one record: trailing bytes are an error.
// Errors wrap ErrMalformed. Decode never panics, whatever the input.
//
// Decode compiles the schema on every call; to decode many payloads use a
// Decoder, which keeps compiled schemas in its Registry.
func Decode(schema avro.Schema, payload []byte, opts ...DecodeOption) (map[string]any, error) {
	if schema == nil {
		return nil, errors.New("decode alert: nil schema")
	}
	return decodePlan(compile(schema), payload, newDecodeConfig(opts))
}

// decodePlan decodes payload with a compiled plan.
func decodePlan(root *node, payload []byte, cfg decodeConfig) (rec map[string]any, err error) {
	if root.kind != kRecord {
		return nil, fmt.Errorf("decode alert: top-level schema is %s, want a record", root.name)
	}
	defer func() {
		// The decoder checks every bound; this only guards against bugs.
		if p := recover(); p != nil {
			rec, err = nil, fmt.Errorf("%w: decoder panic on %s payload: %v", ErrMalformed, root.name, p)
		}
	}()
	r := binReader{buf: payload, skipBytes: cfg.skipBytes, fields: cfg.fields}
	v := r.record(root)
	if r.err == nil && r.pos != len(payload) {
		r.fail("%d trailing bytes after the record", len(payload)-r.pos)
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: decode %d-byte payload as %s: %w", ErrMalformed, len(payload), root.name, r.err)
	}
	return v.(map[string]any), nil
}

// Decoder decodes wire-format messages whose schemas are in a Registry.
// It is safe for concurrent use.
type Decoder struct {
	reg *Registry
	cfg decodeConfig
}

// NewDecoder returns a Decoder that looks schema ids up in reg. Schemas added
// to reg later are seen by the Decoder.
func NewDecoder(reg *Registry, opts ...DecodeOption) *Decoder {
	if reg == nil {
		reg = NewRegistry()
	}
	return &Decoder{reg: reg, cfg: newDecodeConfig(opts)}
}

// Registry returns the registry the Decoder reads schemas from.
func (d *Decoder) Registry() *Registry { return d.reg }

// DecodeMessage decodes a Confluent wire-format message (see ParseWire) into
// a normalised record (see Decode) and returns it with the message's schema
// id. An id missing from the Registry gives an error wrapping
// ErrUnknownSchema (the id is still returned); a bad header or payload one
// wrapping ErrMalformed.
func (d *Decoder) DecodeMessage(msg []byte) (map[string]any, uint32, error) {
	id, payload, err := ParseWire(msg)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	rec, err := d.DecodePayload(id, payload)
	return rec, id, err
}

// DecodePayload decodes an Avro payload written with the schema registered
// under id. Errors are as for DecodeMessage.
func (d *Decoder) DecodePayload(id uint32, payload []byte) (map[string]any, error) {
	e := d.reg.entry(id)
	if e == nil {
		return nil, fmt.Errorf("%w %d: register or publish its schema before decoding", ErrUnknownSchema, id)
	}
	return decodePlan(e.plan, payload, d.cfg)
}
