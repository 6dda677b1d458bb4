package filter

// testAlert returns a realistic normalised alert record (as the Avro decoder
// produces it), with nprv previous sources.
func testAlert(id int64, visit int64, snr, flux float64, nprv int) map[string]any {
	src := func(sid int64, v int64, f float64) map[string]any {
		return map[string]any{
			"diaSourceId":    sid,
			"visit":          v,
			"detector":       int64(42),
			"diaObjectId":    int64(9000000 + id),
			"midpointMjdTai": 60000.125 + float64(v)/1000,
			"ra":             150.1234,
			"raErr":          1e-5,
			"dec":            -30.5678,
			"decErr":         1e-5,
			"x":              1024.5,
			"y":              2048.25,
			"psfFlux":        f,
			"psfFluxErr":     f / snr,
			"snr":            snr,
			"apFlux":         f * 1.02,
			"apFluxErr":      f / snr * 1.1,
			"band":           "r",
			"isDipole":       false,
			"extendedness":   nil,
			"reliability":    0.97,
		}
	}
	var prv any
	if nprv > 0 {
		list := make([]any, nprv)
		for i := range list {
			list[i] = src(id*100+int64(i), visit-int64(i+1), flux*(0.9+0.01*float64(i)))
		}
		prv = list
	}
	return map[string]any{
		"diaSourceId":   id,
		"diaSource":     src(id, visit, flux),
		"prvDiaSources": prv,
		"diaObject": map[string]any{
			"diaObjectId": int64(9000000 + id),
			"ra":          150.1234,
			"dec":         -30.5678,
			"nDiaSources": int64(nprv + 1),
		},
		"ssObject":         nil,
		"cutoutDifference": make([]byte, 4096),
		"cutoutScience":    make([]byte, 4096),
		"cutoutTemplate":   nil,
	}
}
