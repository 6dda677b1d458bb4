package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
)

// The records of the registry's topic, in the format of Confluent Schema
// Registry's own _schemas topic, so that either registry can read the
// other's topic: a JSON key naming the record and a JSON value (a tombstone
// deletes the key under compaction).
//
//	key   {"keytype":"SCHEMA","subject":"alerts-value","version":1,"magic":1}
//	value {"subject":"alerts-value","version":1,"id":1100,"schema":"{...}","deleted":false}
//
//	key   {"keytype":"CONFIG","subject":null,"magic":0}
//	value {"compatibilityLevel":"NONE"}
//
// Other key types Confluent writes (NOOP, MODE, DELETE_SUBJECT,
// CLEAR_SUBJECT) are read and ignored.
const (
	KeySchema = "SCHEMA"
	KeyConfig = "CONFIG"
)

// ValueSubject is the subject of a topic's values under Confluent's
// TopicNameStrategy, the default of its serializers: the producer registers
// the alerts' schemas under ValueSubject("alerts").
func ValueSubject(topic string) string { return topic + "-value" }

// Key is a record key of the registry's topic.
type Key struct {
	KeyType string  `json:"keytype"`
	Subject *string `json:"subject"`
	Version int     `json:"version,omitempty"`
	Magic   int     `json:"magic"`
}

// SchemaValue is the value of a SCHEMA record: one version of a subject.
type SchemaValue struct {
	Subject    string `json:"subject"`
	Version    int    `json:"version"`
	ID         int    `json:"id"`
	SchemaType string `json:"schemaType,omitempty"` // empty: AVRO
	Schema     string `json:"schema"`
	Deleted    bool   `json:"deleted"`
}

// ConfigValue is the value of a CONFIG record.
type ConfigValue struct {
	CompatibilityLevel string `json:"compatibilityLevel"`
}

// SchemaRecord returns the key and value of the record that registers v,
// as compact JSON without HTML escaping (which would make a schema's text
// longer).
func SchemaRecord(v SchemaValue) (key, value []byte) {
	subject := v.Subject
	return marshal(Key{KeyType: KeySchema, Subject: &subject, Version: v.Version, Magic: 1}), marshal(v)
}

func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // strings and numbers always encode
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// ValidID reports whether id fits the wire format's 4 bytes as Confluent's
// ids do: 1 to 2^31-1.
func ValidID(id int) bool { return id >= 1 && id <= math.MaxInt32 }

// Record is one decoded record of the topic: a schema version, a
// configuration, or (Other) a key type this registry ignores.
type Record struct {
	Key       Key
	Schema    *SchemaValue // KeySchema; nil on a tombstone
	Config    *ConfigValue // KeyConfig; nil on a tombstone
	Tombstone bool
	Other     bool
}

// MaxRecordBytes bounds what DecodeRecord accepts: a schema record holds one
// schema text (Rubin's v11 alert with its docs is about 70 KB).
const MaxRecordBytes = 8 << 20

// DecodeRecord decodes a record of the topic. It fails on a key or value
// that is not what Confluent's format says, naming what is wrong.
func DecodeRecord(key, value []byte) (Record, error) {
	if len(key) > MaxRecordBytes || len(value) > MaxRecordBytes {
		return Record{}, fmt.Errorf("registry record of %d+%d bytes is over the %d-byte limit", len(key), len(value), MaxRecordBytes)
	}
	var r Record
	if err := json.Unmarshal(key, &r.Key); err != nil {
		return Record{}, fmt.Errorf("registry record key %.80q: %w", key, err)
	}
	r.Tombstone = value == nil
	switch r.Key.KeyType {
	case KeySchema:
		if r.Key.Subject == nil || r.Key.Version < 1 {
			return Record{}, fmt.Errorf("registry record key %.80q: a SCHEMA key needs a subject and a version from 1", key)
		}
		if r.Tombstone {
			return r, nil
		}
		var v SchemaValue
		if err := json.Unmarshal(value, &v); err != nil {
			return Record{}, fmt.Errorf("registry schema record %.80q: %w", key, err)
		}
		if v.Subject != *r.Key.Subject || v.Version != r.Key.Version {
			return Record{}, fmt.Errorf("registry schema record %.80q holds %s version %d", key, v.Subject, v.Version)
		}
		if !ValidID(v.ID) {
			return Record{}, fmt.Errorf("registry schema record %.80q has id %d", key, v.ID)
		}
		if v.SchemaType != "" && v.SchemaType != "AVRO" {
			r.Other = true // a Protobuf or JSON schema: not ours to decode
			return r, nil
		}
		r.Schema = &v
	case KeyConfig:
		if r.Tombstone {
			return r, nil
		}
		var v ConfigValue
		if err := json.Unmarshal(value, &v); err != nil {
			return Record{}, fmt.Errorf("registry config record %.80q: %w", key, err)
		}
		r.Config = &v
	default:
		r.Other = true
	}
	return r, nil
}
