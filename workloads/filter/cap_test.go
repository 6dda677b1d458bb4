package filter

import (
	"slices"
	"testing"
)

func TestCap(t *testing.T) {
	c := NewCap(3)
	for want := 1; want <= 3; want++ {
		if rank, ok := c.Admit(7); !ok || rank != want {
			t.Fatalf("admit %d: got %d, %v", want, rank, ok)
		}
	}
	if rank, ok := c.Admit(7); ok || rank != 0 {
		t.Fatalf("4th alert admitted: %d, %v", rank, ok)
	}
	// Another visit has its own quota; interleaving is fine.
	if rank, ok := c.Admit(8); !ok || rank != 1 {
		t.Fatalf("visit 8: %d, %v", rank, ok)
	}
	if _, ok := c.Admit(7); ok {
		t.Fatal("visit 7 reopened")
	}
	if c.Count(7) != 3 || c.Count(8) != 1 || c.Count(9) != 0 || c.Max() != 3 {
		t.Fatalf("counts %d %d %d", c.Count(7), c.Count(8), c.Count(9))
	}
}

func TestCapUnlimited(t *testing.T) {
	for _, max := range []int{0, -1} {
		c := NewCap(max)
		for i := 1; i <= 1000; i++ {
			if rank, ok := c.Admit(1); !ok || rank != i {
				t.Fatalf("max %d: admit %d got %d, %v", max, i, rank, ok)
			}
		}
	}
}

func TestCapBoundedMemory(t *testing.T) {
	c := NewCap(1)
	// An endless stream: the table never grows beyond CapVisits.
	for v := int64(0); v < 10*CapVisits; v++ {
		if _, ok := c.Admit(v); !ok {
			t.Fatalf("visit %d refused", v)
		}
		if c.used > CapVisits {
			t.Fatalf("used %d", c.used)
		}
	}
	last := int64(10*CapVisits - 1)
	// The CapVisits most recent visits are remembered and full.
	for v := last - CapVisits + 1; v <= last; v++ {
		if _, ok := c.Admit(v); ok {
			t.Fatalf("recent visit %d admitted twice", v)
		}
	}
	// An evicted visit gets a fresh quota (documented choice).
	if rank, ok := c.Admit(last - CapVisits); !ok || rank != 1 {
		t.Fatalf("evicted visit: %d, %v", rank, ok)
	}
}

func BenchmarkCapAdmit(b *testing.B) {
	c := NewCap(20)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Admit(int64(i / 10000))
	}
}

func TestCapRestoreResumesRanks(t *testing.T) {
	c := NewCap(3)
	for _, v := range []int64{10, 11, 11, 12, 12, 12, 12} {
		c.Admit(v)
	}
	saved := c.Recent(2)
	if want := []VisitCount{{12, 3}, {11, 2}}; !slices.Equal(saved, want) {
		t.Fatalf("Recent(2) = %v, want %v", saved, want)
	}
	r := NewCap(3)
	r.Restore(saved)
	if rank, ok := r.Admit(11); !ok || rank != 3 {
		t.Errorf("restored visit 11: Admit = %d, %v; want rank 3", rank, ok)
	}
	if _, ok := r.Admit(12); ok {
		t.Error("restored visit 12 was full but admitted one more")
	}
	if rank, _ := r.Admit(10); rank != 1 {
		t.Errorf("visit 10 was not saved, so it starts again: rank %d, want 1", rank)
	}
}
