package timing

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// The plots are hand-made SVG: a chart is a set of series drawn over
// linear x (visit number) and y (seconds) axes, with a legend.

type point struct{ x, y float64 }

// series is one thing to draw: a polyline with dots, or a band between
// lo and hi, or a dashed horizontal reference line.
type series struct {
	label  string
	color  string
	points []point // line + dots; a NaN y breaks the line
	lo, hi []point // band (same x, in order); a NaN y breaks the band
	ref    *float64
}

type chart struct {
	title, yLabel, xLabel string
	series                []series
	width, height         float64
}

const (
	marginLeft   = 64.0
	marginRight  = 20.0
	marginBottom = 46.0
)

// render returns the chart as an <svg> element.
func (c chart) render() string {
	xs, ys := []float64{}, []float64{}
	for _, s := range c.series {
		for _, p := range append(append(append([]point{}, s.points...), s.lo...), s.hi...) {
			if math.IsNaN(p.y) {
				continue
			}
			xs = append(xs, p.x)
			ys = append(ys, p.y)
		}
		if s.ref != nil {
			ys = append(ys, *s.ref)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %g %g" width="100%%" role="img" aria-label="%s">`,
		c.width, c.height, esc(c.title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(c.title))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%g" height="%g" fill="#ffffff"/>`, c.width, c.height)
	legend, legendH := c.legendLayout()
	marginTop := legendH + 16
	plotW := c.width - marginLeft - marginRight
	plotH := c.height - marginTop - marginBottom
	hasData := false
	for _, s := range c.series {
		if len(s.points) > 0 || len(s.lo) > 0 {
			hasData = true
		}
	}
	if !hasData {
		fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle" class="nodata">no complete visit to plot</text></svg>`,
			c.width/2, c.height/2)
		return b.String()
	}

	xmin, xmax := minMax(xs)
	if xmin == xmax {
		xmin, xmax = xmin-1, xmax+1
	}
	ymin, ymax := minMax(ys)
	ymin = math.Min(ymin, 0)
	yticks := niceTicks(ymin, ymax, 6)
	ymin, ymax = yticks[0], yticks[len(yticks)-1]
	X := func(x float64) float64 { return marginLeft + (x-xmin)/(xmax-xmin)*plotW }
	Y := func(y float64) float64 { return marginTop + (ymax-y)/(ymax-ymin)*plotH }

	// Grid and y axis.
	b.WriteString(`<g class="grid">`)
	for _, t := range yticks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, marginLeft, Y(t), marginLeft+plotW, Y(t))
	}
	b.WriteString(`</g><g class="ticks">`)
	for _, t := range yticks {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, marginLeft-8, Y(t)+4, tickLabel(t, yticks))
	}
	// X ticks: integer visit numbers.
	for _, t := range niceTicks(xmin, xmax, 8) {
		if t < xmin || t > xmax || t != math.Trunc(t) {
			continue
		}
		fmt.Fprintf(&b, `<line class="tick" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, X(t), marginTop+plotH, X(t), marginTop+plotH+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%.0f</text>`, X(t), marginTop+plotH+18, t)
	}
	b.WriteString(`</g>`)
	// Axes.
	fmt.Fprintf(&b, `<g class="axis"><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`,
		marginLeft, marginTop, marginLeft, marginTop+plotH, marginLeft, marginTop+plotH, marginLeft+plotW, marginTop+plotH)
	if ymin < 0 {
		fmt.Fprintf(&b, `<line class="zero" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, marginLeft, Y(0), marginLeft+plotW, Y(0))
	}
	b.WriteString(`</g>`)
	fmt.Fprintf(&b, `<text class="label" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, marginLeft+plotW/2, c.height-8, esc(c.xLabel))
	fmt.Fprintf(&b, `<text class="label" transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">%s</text>`, marginTop+plotH/2, esc(c.yLabel))

	// Series: bands first, then reference lines, then lines and dots.
	for _, s := range c.series {
		for _, run := range runs(len(s.lo), func(i int) bool { return math.IsNaN(s.lo[i].y) || math.IsNaN(s.hi[i].y) }) {
			var pts []string
			for i := run[0]; i < run[1]; i++ {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", X(s.hi[i].x), Y(s.hi[i].y)))
			}
			for i := run[1] - 1; i >= run[0]; i-- {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", X(s.lo[i].x), Y(s.lo[i].y)))
			}
			if run[1]-run[0] == 1 { // a lone visit: a thin bar
				x := X(s.lo[run[0]].x)
				pts = []string{
					fmt.Sprintf("%.1f,%.1f", x-3, Y(s.hi[run[0]].y)), fmt.Sprintf("%.1f,%.1f", x+3, Y(s.hi[run[0]].y)),
					fmt.Sprintf("%.1f,%.1f", x+3, Y(s.lo[run[0]].y)), fmt.Sprintf("%.1f,%.1f", x-3, Y(s.lo[run[0]].y)),
				}
			}
			fmt.Fprintf(&b, `<polygon points="%s" fill="%s" fill-opacity="0.22" stroke="%s" stroke-opacity="0.5" stroke-width="1"/>`,
				strings.Join(pts, " "), s.color, s.color)
		}
	}
	for _, s := range c.series {
		if s.ref == nil {
			continue
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="6 4"/>`,
			marginLeft, Y(*s.ref), marginLeft+plotW, Y(*s.ref), s.color)
	}
	for _, s := range c.series {
		if len(s.points) == 0 {
			continue
		}
		for _, run := range runs(len(s.points), func(i int) bool { return math.IsNaN(s.points[i].y) }) {
			var pts []string
			for _, p := range s.points[run[0]:run[1]] {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", X(p.x), Y(p.y)))
			}
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round"/>`, strings.Join(pts, " "), s.color)
		}
		if len(s.points) <= 200 {
			for _, p := range s.points {
				if math.IsNaN(p.y) {
					continue
				}
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>visit %.0f: %.3f s</title></circle>`, X(p.x), Y(p.y), s.color, p.x, p.y)
			}
		}
	}

	// Legend above the plot.
	for i, s := range c.series {
		fmt.Fprintf(&b, `<g class="legend" transform="translate(%.1f %.1f)">`, legend[i].x, legend[i].y)
		switch {
		case len(s.lo) > 0:
			fmt.Fprintf(&b, `<rect x="0" y="-7" width="22" height="12" fill="%s" fill-opacity="0.22" stroke="%s" stroke-opacity="0.5"/>`, s.color, s.color)
		case s.ref != nil:
			fmt.Fprintf(&b, `<line x1="0" y1="0" x2="22" y2="0" stroke="%s" stroke-width="1.5" stroke-dasharray="6 4"/>`, s.color)
		default:
			fmt.Fprintf(&b, `<line x1="0" y1="0" x2="22" y2="0" stroke="%s" stroke-width="2"/><circle cx="11" cy="0" r="3" fill="%s"/>`, s.color, s.color)
		}
		fmt.Fprintf(&b, `<text x="28" y="4">%s</text></g>`, esc(s.label))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// legendLayout places the legend entries in rows above the plot and
// returns their positions and the height the rows take.
func (c chart) legendLayout() (pos []point, height float64) {
	x, y := marginLeft, 16.0
	for _, s := range c.series {
		w := legendWidth(s.label)
		if x+w > c.width-marginRight && x > marginLeft {
			x, y = marginLeft, y+20
		}
		pos = append(pos, point{x, y})
		x += w
	}
	return pos, y + 10
}

// legendWidth estimates the width of a legend entry (12 px sans-serif
// averages under 7 px per character).
func legendWidth(label string) float64 { return 28 + 7*float64(len([]rune(label))) + 22 }

func minMax(v []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range v {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	if len(v) == 0 {
		return 0, 1
	}
	return lo, hi
}

// runs returns the [start, end) index ranges of consecutive elements that
// are not breaks.
func runs(n int, isBreak func(i int) bool) [][2]int {
	var out [][2]int
	start := -1
	for i := 0; i <= n; i++ {
		if i < n && !isBreak(i) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			out = append(out, [2]int{start, i})
			start = -1
		}
	}
	return out
}

// niceTicks returns evenly spaced round values (steps of 1, 2 or 5 × 10^k)
// covering [lo, hi] with about n intervals.
func niceTicks(lo, hi float64, n int) []float64 {
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag * 10
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*mag {
			step = m * mag
			break
		}
	}
	start := math.Floor(lo/step) * step
	var ticks []float64
	for t := start; t <= hi+step*1e-9 || len(ticks) < 2; t += step {
		ticks = append(ticks, math.Round(t/step)*step)
	}
	if ticks[len(ticks)-1] < hi {
		ticks = append(ticks, ticks[len(ticks)-1]+step)
	}
	return ticks
}

// tickLabel formats a tick with just enough decimals for its step.
func tickLabel(t float64, ticks []float64) string {
	dec := 0
	if len(ticks) > 1 {
		step := ticks[1] - ticks[0]
		dec = max(0, int(math.Ceil(-math.Log10(step)-1e-9)))
	}
	return fmt.Sprintf("%.*f", dec, t)
}

func esc(s string) string { return html.EscapeString(s) }
