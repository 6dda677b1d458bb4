package pipeline

import "sort"

// offsetRanges is a set of offsets of one partition, kept as sorted,
// disjoint [start, end) ranges: the offsets the main loop dropped while a
// filter was deferred come mostly in runs (a flood of copies or of
// undecodable alerts), so a flood costs a range, not an entry per alert.
type offsetRanges [][2]int64

// add puts o in the set.
func (r *offsetRanges) add(o int64) {
	s := *r
	if n := len(s); n > 0 && s[n-1][1] == o {
		s[n-1][1] = o + 1 // the usual case: the next offset of a run
		return
	}
	i := sort.Search(len(s), func(i int) bool { return s[i][1] >= o })
	switch {
	case i < len(s) && s[i][0] <= o && o < s[i][1]:
		return // already in
	case i < len(s) && s[i][1] == o:
		s[i][1] = o + 1
		if i+1 < len(s) && s[i+1][0] == o+1 { // joins the next
			s[i][1] = s[i+1][1]
			s = append(s[:i+1], s[i+2:]...)
		}
	case i < len(s) && s[i][0] == o+1:
		s[i][0] = o
	default:
		s = append(s, [2]int64{})
		copy(s[i+1:], s[i:])
		s[i] = [2]int64{o, o + 1}
	}
	*r = s
}

// contains reports whether o is in the set.
func (r offsetRanges) contains(o int64) bool {
	i := sort.Search(len(r), func(i int) bool { return r[i][1] > o })
	return i < len(r) && r[i][0] <= o
}

// dropBelow removes the offsets below low.
func (r *offsetRanges) dropBelow(low int64) {
	s := *r
	i := sort.Search(len(s), func(i int) bool { return s[i][1] > low })
	s = s[i:]
	if len(s) > 0 && s[0][0] < low {
		s[0][0] = low
	}
	*r = s
}
