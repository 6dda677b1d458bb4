package ec2lab

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TagUnreachable is a tag key tests may put on instances that must get no
// node; use it with ByTag(TagUnreachable, "true") as Options.Unreachable.
const TagUnreachable = "ec2lab:unreachable"

// ByTag returns a predicate for Options.Unreachable that picks instances
// carrying tag key with the given value.
func ByTag(key, value string) func(types.Instance) bool {
	return func(inst types.Instance) bool {
		for _, t := range inst.Tags {
			if aws.ToString(t.Key) == key && aws.ToString(t.Value) == value {
				return true
			}
		}
		return false
	}
}
