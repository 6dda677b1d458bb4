package timing

// eventID is what makes an event unique: the same stage reporting the same
// thing. A workload restarted after a crash may send an event again (it
// cannot know whether the first copy reached the hub); a report counts it
// once.
type eventID struct {
	kind              Kind
	run, name, source string
	visit             int64
	rank              int
}

func (e Event) id() eventID {
	return eventID{kind: e.Kind, run: e.Run, name: e.Name, source: e.Source, visit: e.Visit, rank: e.Rank}
}

// Dedup returns the events with every repeat of an earlier event (same
// kind, run, visit, name, source and rank) removed, first copies kept in
// order, and how many repeats it removed.
func Dedup(evs []Event) ([]Event, int) {
	seen := make(map[eventID]bool, len(evs))
	out := evs[:0:0]
	for _, e := range evs {
		if seen[e.id()] {
			continue
		}
		seen[e.id()] = true
		out = append(out, e)
	}
	return out, len(evs) - len(out)
}
