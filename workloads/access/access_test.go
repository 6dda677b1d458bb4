package access

import (
	"strings"
	"testing"
)

// A plan may only touch its owner's users, and refuses what Kafka would.
func TestPlanCheck(t *testing.T) {
	ok := Plan{Owner: "group.g.", Clusters: []ClusterPlan{{Bootstrap: "mb-mirror-a:9092", Users: []User{
		{Name: UserName("group.g.", "reader", "f"), Password: strings.Repeat("x", 16), Grants: ReaderGrants("F", "minibroker-schemas", "group.g.reader.f")},
	}}}}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*Plan){
		"owner without separator": func(p *Plan) { p.Owner = "group.g" },
		"another owner's user":    func(p *Plan) { p.Clusters[0].Users[0].Name = "group.gh.reader" },
		"short password":          func(p *Plan) { p.Clusters[0].Users[0].Password = "short" },
		"unknown resource":        func(p *Plan) { p.Clusters[0].Users[0].Grants[0].Resource = "table" },
		"no bootstrap":            func(p *Plan) { p.Clusters[0].Bootstrap = "" },
		"user twice": func(p *Plan) {
			p.Clusters[0].Users = append(p.Clusters[0].Users, p.Clusters[0].Users[0])
		},
	} {
		p := ok
		p.Clusters = []ClusterPlan{{Bootstrap: ok.Clusters[0].Bootstrap, Users: []User{ok.Clusters[0].Users[0]}}}
		p.Clusters[0].Users[0].Grants = append([]Grant(nil), ok.Clusters[0].Users[0].Grants...)
		mutate(&p)
		if p.Check() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
