// Package alert provides the alert packets of the mini-broker: the
// synthetic Avro schema and a fast deterministic generator for it, the
// Confluent wire format, registry-free schema ids, a normalising decoder
// whose output CEL filters can evaluate, dotted field paths, and replay of
// real alert files (Avro Object Container Files such as Rubin's).
//
// The synthetic schema (schema/alert.avsc, namespace minibroker.v1) is
// modelled on the Rubin (LSST) alert packet and uses the same field names,
// so one filter expression such as
//
//	alert.diaSource.snr > 5.0 && alert.diaSource.psfFlux > 36310.0
//
// works on synthetic and on real Rubin alerts alike.
//
// A message on the wire is [0x00][schema id, 4 bytes big-endian][Avro binary
// payload]. Schema ids are not issued by a registry service: SchemaID derives
// them from the CRC-64-AVRO fingerprint of the schema's Parsing Canonical
// Form, so producer and consumers agree without talking to each other.
//
// Everything in this package is immutable after construction or guarded
// internally; the package holds no mutable global state.
package alert
