package pipeline

import (
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
)

// Source makes the alerts of a visit. Implementations are safe for concurrent
// use: the producer's parallel senders share one.
type Source interface {
	// Alert appends alert index of visit, in the Confluent wire format, to dst.
	Alert(dst []byte, visit int64, index int) ([]byte, error)
	// Schemas lists the schemas the alerts are written with, to publish.
	Schemas() []avro.Schema
}

// Synthetic is a Source of generated alerts in the project's own schema.
type Synthetic struct {
	gen *alert.Generator
	id  uint32
}

// NewSynthetic returns generated alerts, deterministic for seed, with cutouts
// of cutoutBytes each (0 for small alerts).
func NewSynthetic(seed int64, cutoutBytes int) *Synthetic {
	return &Synthetic{gen: alert.NewGenerator(seed, cutoutBytes), id: alert.SchemaID(alert.SyntheticSchema())}
}

func (s *Synthetic) Alert(dst []byte, visit int64, index int) ([]byte, error) {
	dst = alert.AppendWire(dst, s.id, nil)
	dst, _, err := s.gen.Alert(dst, visit, index)
	return dst, err
}

func (s *Synthetic) Schemas() []avro.Schema { return []avro.Schema{alert.SyntheticSchema()} }

// Replay is a Source that cycles through the alerts of Avro container files,
// each written with its file's own schema, with the visit field rewritten.
type Replay struct {
	r         *alert.Replay
	visitPath string
	ids       map[avro.Schema]uint32 // every schema of the files, read-only after load
	bufs      sync.Pool
}

// NewReplay loads the alerts of the given Avro Object Container Files,
// reading past their bad blocks (see alert.LoadOCF), and returns the
// blocks skipped, once per file, for the caller to report: the replay
// cycles through the alerts of the other blocks.
func NewReplay(visitPath string, paths ...string) (*Replay, []alert.SkippedBlock, error) {
	r, skipped, err := alert.LoadOCF(paths...)
	if err != nil {
		return nil, nil, err
	}
	ids := map[avro.Schema]uint32{}
	for _, sc := range r.Schemas() {
		ids[sc] = alert.SchemaID(sc)
	}
	return &Replay{r: r, visitPath: visitPath, ids: ids}, skipped, nil
}

func (s *Replay) Alert(dst []byte, visit int64, index int) ([]byte, error) {
	buf, _ := s.bufs.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	defer s.bufs.Put(buf)
	payload, schema, err := s.r.Alert((*buf)[:0], visit, index, s.visitPath)
	if err != nil {
		return dst, fmt.Errorf("replay alert %d of visit %d: %w", index, visit, err)
	}
	*buf = payload
	return alert.AppendWire(dst, s.ids[schema], payload), nil
}

func (s *Replay) Schemas() []avro.Schema { return s.r.Schemas() }

// Warnings lists the invalid defaults of the files' schemas that loading
// ignored (see alert.ParseSchemaLenient), once per file, to report.
func (s *Replay) Warnings() []alert.FileWarning { return s.r.Warnings() }
