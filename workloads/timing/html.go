package timing

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

// WriteHTML writes the report as one self-contained HTML page (inline CSS
// and SVG, no script, no external resource; also well-formed XML): the
// comparison with the 2018 prototype, two plots of per-visit figures
// (producer send time, last filter done and consumer latency band; filter
// lag band), the summary table and the per-visit, per-filter and
// per-consumer tables.
func (r Report) WriteHTML(w io.Writer) error {
	if err := pageTemplate.Execute(w, r.htmlPage()); err != nil {
		return fmt.Errorf("writing timing HTML: %w", err)
	}
	return nil
}

type htmlCard struct {
	Label, Original, Ours, Verdict, Class string
}

type htmlRow struct {
	Cells []string
	Class string
}

type htmlPage struct {
	Subtitle  string
	Cards     []htmlCard
	Latency   template.HTML
	Lag       template.HTML
	Summary   []htmlRow
	Visits    []htmlRow
	Filters   []htmlRow
	Consumers []htmlRow
	// Quarantines: filter, visit, when, why.
	Quarantines []htmlRow
	Warnings    []string
	TotalsLine  string
}

func (r Report) htmlPage() htmlPage {
	t := r.Totals
	p := htmlPage{Warnings: r.Warnings}
	var sub []string
	if len(t.Runs) > 0 {
		sub = append(sub, "run "+strings.Join(t.Runs, ", "))
	}
	sub = append(sub, fmt.Sprintf("%d visits (%d complete, %d incomplete)", t.Visits, t.Complete, t.Incomplete),
		fmt.Sprintf("%d filters", t.Filters), fmt.Sprintf("%d consumers", t.Consumers))
	p.Subtitle = strings.Join(sub, " · ")
	p.TotalsLine = fmt.Sprintf("%d alerts (%.1f MB) produced · %d selected · %d received · %d dead letters (produce %d, filter %d, consume %d)",
		t.Alerts, float64(t.Bytes)/1e6, t.Selected, t.Received,
		t.DeadLetters.Total, t.DeadLetters.Produce, t.DeadLetters.Filter, t.DeadLetters.Consume)

	for _, c := range r.comparisons() {
		card := htmlCard{Label: c.label, Original: c.originalText(), Ours: c.oursText()}
		switch {
		case c.n == 0:
			card.Verdict, card.Class = "no data", "nodata"
		case !c.known:
			card.Original, card.Verdict, card.Class = "not recorded", "no 2018 figure to compare", "nodata"
		case c.ours <= c.original:
			card.Verdict, card.Class = fmt.Sprintf("%.2f s faster", (c.original-c.ours).Seconds()), "better"
		default:
			card.Verdict, card.Class = fmt.Sprintf("%.2f s slower", (c.ours-c.original).Seconds()), "worse"
		}
		p.Cards = append(p.Cards, card)
	}

	p.Latency, p.Lag = r.plots()

	row := func(label string, s Summary) htmlRow {
		return htmlRow{Cells: []string{label, fmt.Sprint(s.N), secs(s.Mean, s.N), secs(s.P50, s.N), secs(s.P99, s.N), secs(s.Max, s.N), secs(s.Min, s.N)}}
	}
	tp := r.Throughput
	p.Summary = []htmlRow{
		row("producer visit send time (s)", r.Producer),
		row("filter lag (s)", r.FilterLag),
		row("20th alert at consumer (s)", r.ConsumerLatency),
		row("visit start to filter done (s)", r.FilterDone),
		{Cells: []string{"producer throughput (MB/s)", fmt.Sprint(tp.N), rate(tp.Mean, tp.N), rate(tp.P50, tp.N), rate(tp.P99, tp.N), rate(tp.Max, tp.N), rate(tp.Min, tp.N)}},
	}
	for _, v := range r.Visits {
		if !v.Complete {
			p.Visits = append(p.Visits, htmlRow{Class: "incomplete", Cells: []string{fmt.Sprint(v.Visit), "-", "-", "-", "-",
				fmt.Sprint(v.FiltersFinished), "-", "-", "-", "-", fmt.Sprint(v.ConsumerCount), "-", "-", fmt.Sprint(v.Selected), fmt.Sprint(v.DeadLetters)}})
			continue
		}
		p.Visits = append(p.Visits, htmlRow{Cells: []string{fmt.Sprint(v.Visit), fmt.Sprint(v.Alerts),
			fmt.Sprintf("%.3f", float64(v.Bytes)/1e6), secs(v.Send, 1), fmt.Sprintf("%.3f", v.MBps), fmt.Sprint(v.FiltersFinished),
			secs(v.Lag.Min, v.Lag.N), secs(v.Lag.P50, v.Lag.N), secs(v.Lag.Max, v.Lag.N), secs(v.Done.Max, v.Done.N), fmt.Sprint(v.ConsumerCount),
			secs(v.Latency.P50, v.Latency.N), secs(v.Latency.Max, v.Latency.N), fmt.Sprint(v.Selected), fmt.Sprint(v.DeadLetters)}})
	}
	for _, f := range r.Filters {
		s, d := f.Lag, f.Done
		p.Filters = append(p.Filters, htmlRow{Cells: []string{f.Name, fmt.Sprint(f.Visits), secs(s.Mean, s.N), secs(s.P50, s.N),
			secs(s.P99, s.N), secs(s.Max, s.N), secs(d.Mean, d.N), secs(d.Max, d.N),
			fmt.Sprint(f.Matched), fmt.Sprint(f.Selected), fmt.Sprint(f.DeadLetters), errorKinds(f.Errors), fmt.Sprint(f.QuarantinedVisits)}})
	}
	for _, q := range r.Quarantines {
		p.Quarantines = append(p.Quarantines, htmlRow{Cells: []string{q.Filter, fmt.Sprint(q.Visit), q.At.UTC().Format("15:04:05.000"), q.Reason}})
	}
	for _, c := range r.Consumers {
		s := c.Latency
		p.Consumers = append(p.Consumers, htmlRow{Cells: []string{c.Name, c.Source, fmt.Sprint(c.Visits), secs(s.Mean, s.N),
			secs(s.P50, s.N), secs(s.P99, s.N), secs(s.Max, s.N), fmt.Sprint(c.Received), fmt.Sprint(c.DeadLetters)}})
	}
	return p
}

// Plot colours.
const (
	colProducer = "#2563eb"
	colConsumer = "#16a34a"
	colFilter   = "#ea580c"
	colOriginal = "#6b7280"
)

// plots draws the per-visit latency chart and the filter lag chart.
func (r Report) plots() (latency, lag template.HTML) {
	var send, done, latP50, latLo, latHi, lagP50, lagLo, lagHi []point
	gap := math.NaN()
	for _, v := range r.Visits {
		x := float64(v.Visit)
		if !v.Complete { // break the lines: nothing is known of this visit
			for _, s := range []*[]point{&send, &done, &latP50, &latLo, &latHi, &lagP50, &lagLo, &lagHi} {
				if n := len(*s); n > 0 && !math.IsNaN((*s)[n-1].y) {
					*s = append(*s, point{x, gap})
				}
			}
			continue
		}
		send = append(send, point{x, v.Send.Seconds()})
		if v.Done.N > 0 {
			done = append(done, point{x, v.Done.Max.Seconds()})
		}
		if v.Latency.N > 0 {
			latP50 = append(latP50, point{x, v.Latency.P50.Seconds()})
			latLo = append(latLo, point{x, v.Latency.Min.Seconds()})
			latHi = append(latHi, point{x, v.Latency.Max.Seconds()})
		}
		if v.Lag.N > 0 {
			lagP50 = append(lagP50, point{x, v.Lag.P50.Seconds()})
			lagLo = append(lagLo, point{x, v.Lag.Min.Seconds()})
			lagHi = append(lagHi, point{x, v.Lag.Max.Seconds()})
		}
	}
	ref := func(d time.Duration) *float64 { return ptr(d.Seconds()) }
	lat := chart{
		title: "Per-visit producer send time, last filter done and 20th alert at consumer", xLabel: "visit", yLabel: "seconds",
		width: 960, height: 360,
		series: []series{
			{label: "consumers min–max", color: colConsumer, lo: latLo, hi: latHi},
			{label: "20th alert at consumer (median)", color: colConsumer, points: latP50},
			{label: "producer send time", color: colProducer, points: send},
			{label: "last filter done", color: colFilter, points: done},
			{label: "2018: send max 15.76 s", color: colProducer, ref: ref(OriginalProducerVisitMax)},
			{label: "2018: consumer mean 5.28 s", color: colOriginal, ref: ref(OriginalConsumerLatencyMean)},
		},
	}
	lg := chart{
		title: "Per-visit filter lag (filter finished − producer finished)", xLabel: "visit", yLabel: "seconds",
		width: 960, height: 300,
		series: []series{
			{label: "filters min–max", color: colFilter, lo: lagLo, hi: lagHi},
			{label: "filter lag (median)", color: colFilter, points: lagP50},
			{label: "2018: mean 0.25 s", color: colOriginal, ref: ref(OriginalFilterLagMean)},
		},
	}
	return template.HTML(lat.render()), template.HTML(lg.render())
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<title>Mini-broker timing report</title>
<style>
:root { --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f8fafc; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1040px; margin: 0 auto; padding: 28px 24px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 10px; }
.sub, .totals { color: var(--muted); margin: 2px 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(240px, 1fr)); gap: 14px; margin-top: 22px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
.card .label { color: var(--muted); font-size: 13px; }
.card .ours { font-size: 28px; font-weight: 650; margin: 4px 0 2px; }
.card .orig { font-size: 13px; color: var(--muted); }
.card .verdict { font-size: 13px; font-weight: 600; }
.better .verdict { color: #15803d; }
.worse .verdict { color: #b91c1c; }
.nodata .verdict { color: var(--muted); }
figure { margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 10px; }
figcaption { color: var(--muted); font-size: 13px; padding: 4px 6px 0; }
svg { display: block; font: 12px system-ui, sans-serif; }
svg .grid line { stroke: #eef0f3; }
svg .axis line { stroke: #9ca3af; }
svg .axis line.zero { stroke: #374151; stroke-dasharray: 2 3; }
svg .ticks text { fill: var(--muted); }
svg .ticks line { stroke: #9ca3af; }
svg .label { fill: var(--ink); font-size: 13px; }
svg .legend text { fill: var(--ink); }
svg .nodata { fill: var(--muted); font-size: 16px; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); border-radius: 10px; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 8px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { background: #f3f4f6; font-weight: 600; }
th:first-child, td:first-child { text-align: left; }
td.text { text-align: left; }
tr.incomplete td { color: #b45309; background: #fffbeb; }
details { margin-top: 8px; }
summary { cursor: pointer; color: var(--muted); margin-bottom: 8px; }
.scroll { overflow-x: auto; }
ul.warnings li { color: #b45309; }
footer { color: var(--muted); font-size: 12px; margin-top: 36px; }
</style>
</head>
<body>
<main>
<h1>Mini-broker timing report</h1>
<p class="sub">{{.Subtitle}}</p>
<p class="totals">{{.TotalsLine}}</p>

<section class="cards">
{{- range .Cards}}
<div class="card {{.Class}}"><div class="label">{{.Label}}</div><div class="ours">{{.Ours}}</div><div class="orig">2018 prototype: {{.Original}}</div><div class="verdict">{{.Verdict}}</div></div>
{{- end}}
</section>

<h2>Latency per visit</h2>
<figure>{{.Latency}}<figcaption>Producer send time: from the start of the visit to the last alert acknowledged. Last filter done: from the start of the visit to the last of its filters finishing it. Consumer latency: from the start of the visit to the arrival of its 20th (last-ranked) filtered alert; the band spans all consumers, the line is their median. Dashed: the 2018 prototype.</figcaption></figure>

<h2>Filter lag per visit</h2>
<figure>{{.Lag}}<figcaption>From the producer having finished a visit to each filter having processed its last alert; the band spans all filters, the line is their median. Negative values come from skewed clocks.</figcaption></figure>

<h2>Summary</h2>
<div class="scroll"><table>
<thead><tr><th>figure</th><th>N</th><th>mean</th><th>p50</th><th>p99</th><th>max</th><th>min</th></tr></thead>
<tbody>
{{- range .Summary}}
<tr>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{- end}}
</tbody></table></div>

<h2>Visits</h2>
<details open="open"><summary>{{len .Visits}} visits (times in seconds)</summary>
<div class="scroll"><table>
<thead><tr><th>visit</th><th>alerts</th><th>MB</th><th>send</th><th>MB/s</th><th>filters</th><th>lag min</th><th>lag p50</th><th>lag max</th><th>done max</th><th>consumers</th><th>lat p50</th><th>lat max</th><th>selected</th><th>dead</th></tr></thead>
<tbody>
{{- range .Visits}}
<tr{{if .Class}} class="{{.Class}}"{{end}}>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{- end}}
</tbody></table></div>
</details>
{{if .Filters}}
<h2>Filters</h2>
<details><summary>{{len .Filters}} filters (lag, and done from the visit's start, in seconds)</summary>
<div class="scroll"><table>
<thead><tr><th>filter</th><th>visits</th><th>lag mean</th><th>p50</th><th>p99</th><th>max</th><th>done mean</th><th>done max</th><th>matched</th><th>selected</th><th>dead letters</th><th>runtime errors</th><th>quarantined visits</th></tr></thead>
<tbody>
{{- range .Filters}}
<tr>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{- end}}
</tbody></table></div>
</details>
{{end}}
{{- if .Quarantines}}
<h2>Quarantines</h2>
<div class="scroll"><table>
<thead><tr><th>filter</th><th>visit</th><th>at (UTC)</th><th>why</th></tr></thead>
<tbody>
{{- range .Quarantines}}
<tr>{{range .Cells}}<td class="text">{{.}}</td>{{end}}</tr>
{{- end}}
</tbody></table></div>
{{end}}
{{- if .Consumers}}
<h2>Consumers</h2>
<details><summary>{{len .Consumers}} consumers (latency in seconds)</summary>
<div class="scroll"><table>
<thead><tr><th>consumer</th><th>source</th><th>visits</th><th>latency mean</th><th>p50</th><th>p99</th><th>max</th><th>received</th><th>dead letters</th></tr></thead>
<tbody>
{{- range .Consumers}}
<tr>{{range $i, $c := .Cells}}<td{{if eq $i 1}} class="text"{{end}}>{{$c}}</td>{{end}}</tr>
{{- end}}
</tbody></table></div>
</details>
{{end}}
{{- if .Warnings}}
<h2>Warnings</h2>
<ul class="warnings">
{{- range .Warnings}}
<li>{{.}}</li>
{{- end}}
</ul>
{{end}}
<footer>Percentiles are nearest-rank. The 2018 prototype: producer 15.76 s per visit at most, filter lag 0.25 s on average, 20th alert at the consumer 5.28 s after the visit started on average; its figure from the start of a visit to each filter done is not recorded here.</footer>
</main>
</body>
</html>
`))
