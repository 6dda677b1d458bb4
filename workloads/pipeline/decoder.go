package pipeline

import (
	"context"
	"errors"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
)

// AlertDecoder decodes the alerts of a stream into records, learning their
// schemas from the schemas topic as a filter does: what `minibroker
// consume --format json` writes.
type AlertDecoder struct {
	dec  *alert.Decoder
	book *schemaBook
}

// NewAlertDecoder reads schemas from schemasTopic at bootstrap with the
// connection settings conn (kclient.ConnSettings).
func NewAlertDecoder(bootstrap string, conn map[string]string, schemasTopic string) *AlertDecoder {
	reg := alert.NewRegistry()
	return &AlertDecoder{dec: alert.NewDecoder(reg), book: &schemaBook{reg: reg, bootstrap: bootstrap, conn: conn, topic: schemasTopic}}
}

// Decode decodes one alert in the Confluent wire format, first learning
// its schema if it is not known yet.
func (d *AlertDecoder) Decode(ctx context.Context, value []byte) (map[string]any, error) {
	rec, id, err := d.dec.DecodeMessage(value)
	if errors.Is(err, alert.ErrUnknownSchema) {
		known, lerr := d.book.learn(ctx, id)
		if lerr != nil {
			return nil, lerr
		}
		if known {
			rec, _, err = d.dec.DecodeMessage(value)
		}
	}
	return rec, err
}
