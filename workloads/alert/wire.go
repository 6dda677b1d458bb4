package alert

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Confluent wire format constants.
const (
	// MagicByte is the first byte of every wire-format message.
	MagicByte byte = 0x00
	// WireHeaderSize is the length of the header before the Avro payload:
	// the magic byte and a 4-byte big-endian schema id.
	WireHeaderSize = 5
)

// Errors returned by ParseWire; they are wrapped with details.
var (
	// ErrShortMessage means a message is shorter than the 5-byte header.
	ErrShortMessage = errors.New("wire message shorter than the 5-byte header")
	// ErrBadMagic means a message does not start with the magic byte 0x00,
	// so it is not in the Confluent wire format.
	ErrBadMagic = errors.New("wire message does not start with magic byte 0x00")
)

// AppendWire appends the Confluent wire-format message for payload to dst:
// byte 0x00, schemaID as 4 bytes big-endian, then payload.
//
// AppendWire(dst, id, nil) appends only the header, so a payload can then be
// encoded in place after it (e.g. by Generator.Alert) without a copy.
func AppendWire(dst []byte, schemaID uint32, payload []byte) []byte {
	dst = append(dst, MagicByte)
	dst = binary.BigEndian.AppendUint32(dst, schemaID)
	return append(dst, payload...)
}

// ParseWire splits a wire-format message into its schema id and Avro
// payload. The payload aliases msg. Errors wrap ErrShortMessage or
// ErrBadMagic.
func ParseWire(msg []byte) (schemaID uint32, payload []byte, err error) {
	if len(msg) < WireHeaderSize {
		return 0, nil, fmt.Errorf("%w: got %d bytes", ErrShortMessage, len(msg))
	}
	if msg[0] != MagicByte {
		return 0, nil, fmt.Errorf("%w: got 0x%02x (plain Avro or JSON without the Confluent header?)", ErrBadMagic, msg[0])
	}
	return binary.BigEndian.Uint32(msg[1:5]), msg[WireHeaderSize:], nil
}
