package filter

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckDeployable(t *testing.T) {
	ok := []Spec{
		{Name: "a", Expr: "true"},
		{Name: "b", Expr: "true", Output: "b-out", CostLimit: MaxCostLimit},
		{Name: "c", Expr: "true", CostLimit: 1},
	}
	if err := CheckDeployable(ok); err != nil {
		t.Fatalf("good specs refused: %v", err)
	}
	bad := []Spec{
		{Name: "alerts", Expr: "true"},                                   // 0: the name is the output
		{Name: "x", Expr: "true", Output: "minibroker-schemas"},          // 1
		{Name: "y", Expr: "true", Output: "shared-deadletter"},           // 2
		{Name: "z", Expr: "true", Output: "__consumer_offsets"},          // 3
		{Name: "dup", Expr: "true", Output: "a.b"},                       // 4
		{Name: "dup2", Expr: "true", Output: "a.b"},                      // 5: same output
		{Name: "dup3", Expr: "true", Output: "a_b"},                      // 6: collides with a.b
		{Name: "costly", Expr: "true", CostLimit: MaxCostLimit + 1},      // 7
		{Name: "spaced", Expr: "true", Output: "no spaces"},              // 8
		{Name: "fine", Expr: "true", Output: "minibroker-timing-copies"}, // free
	}
	err := CheckDeployable(bad)
	if err == nil {
		t.Fatal("bad specs accepted")
	}
	for _, want := range []string{
		`filter "alerts": output topic "alerts" is reserved: the full alert stream`,
		`filter "x": output topic "minibroker-schemas" is reserved`,
		`filter "y": output topic "shared-deadletter" is reserved: a filter process's dead letters`,
		`filter "z": output topic "__consumer_offsets" is reserved: Kafka's internal topics`,
		`filter "dup2": output topic "a.b" already written by filter "dup"`,
		`filter "dup3": output topic "a_b" collides with "a.b" of filter "dup"`,
		`filter "costly": cost limit 1000001 is above the most a filter may set, 1000000`,
		`filter "spaced": invalid output topic "no spaces"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if strings.Contains(err.Error(), `"fine"`) {
		t.Errorf("a free topic refused: %v", err)
	}
	var se *SpecError
	if !errors.As(err, &se) || se.Index != 0 {
		t.Errorf("errors are not *SpecError with the index: %#v", se)
	}
	if t.Failed() {
		t.Log(err)
	}
}
