package alert

// Go mirrors of schema/alert.avsc, encoded by hamba/avro through the avro
// tags. Nil pointers and nil slices encode as the null branch of
// ["null", T] unions.

type diaSourceRec struct {
	DiaSourceID    int64   `avro:"diaSourceId"`
	Visit          int64   `avro:"visit"`
	Detector       int32   `avro:"detector"`
	DiaObjectID    *int64  `avro:"diaObjectId"`
	MidpointMjdTai float64 `avro:"midpointMjdTai"`
	Ra             float64 `avro:"ra"`
	Dec            float64 `avro:"dec"`
	X              float32 `avro:"x"`
	Y              float32 `avro:"y"`
	PsfFlux        float32 `avro:"psfFlux"`
	PsfFluxErr     float32 `avro:"psfFluxErr"`
	Snr            float32 `avro:"snr"`
	Band           string  `avro:"band"`
}

type diaObjectRec struct {
	DiaObjectID  int64    `avro:"diaObjectId"`
	Ra           float64  `avro:"ra"`
	Dec          float64  `avro:"dec"`
	NDiaSources  int32    `avro:"nDiaSources"`
	UPsfFluxMean *float32 `avro:"u_psfFluxMean"`
	GPsfFluxMean *float32 `avro:"g_psfFluxMean"`
	RPsfFluxMean *float32 `avro:"r_psfFluxMean"`
	IPsfFluxMean *float32 `avro:"i_psfFluxMean"`
	ZPsfFluxMean *float32 `avro:"z_psfFluxMean"`
	YPsfFluxMean *float32 `avro:"y_psfFluxMean"`
}

type alertRec struct {
	DiaSourceID      int64          `avro:"diaSourceId"`
	DiaSource        diaSourceRec   `avro:"diaSource"`
	PrvDiaSources    []diaSourceRec `avro:"prvDiaSources"`
	DiaObject        *diaObjectRec  `avro:"diaObject"`
	CutoutDifference []byte         `avro:"cutoutDifference"`
	CutoutScience    []byte         `avro:"cutoutScience"`
	CutoutTemplate   []byte         `avro:"cutoutTemplate"`
}

// bandFlux returns the per-band mean flux slot of o for band b.
func (o *diaObjectRec) bandFlux(b int) **float32 {
	switch b {
	case 0:
		return &o.UPsfFluxMean
	case 1:
		return &o.GPsfFluxMean
	case 2:
		return &o.RPsfFluxMean
	case 3:
		return &o.IPsfFluxMean
	case 4:
		return &o.ZPsfFluxMean
	default:
		return &o.YPsfFluxMean
	}
}
