package alert

import (
	"github.com/hamba/avro/v2"
)

// kind is the Avro type of a plan node.
type kind uint8

const (
	kNull kind = iota
	kBool
	kInt
	kLong
	kFloat
	kDouble
	kBytes
	kString
	kRecord
	kEnum
	kArray
	kMap
	kUnion
	kFixed
	kUnsupported
)

// node is a compiled schema: a tree (a graph for recursive schemas) that the
// decoder interprets without going back to avro.Schema and its interfaces.
// Nodes are immutable once compiled and shared by concurrent decoders.
type node struct {
	kind     kind
	name     string      // full name of named types, type name otherwise
	fields   []fieldNode // kRecord
	items    *node       // kArray items, kMap values
	branches []*node     // kUnion
	symbols  []string    // kEnum
	size     int         // kFixed
	minSize  int         // smallest possible encoding, in bytes
}

type fieldNode struct {
	name string
	node *node
}

// compile turns s into a plan. It never fails: a schema type the decoder
// does not know compiles to a kUnsupported node that errors when reached.
func compile(s avro.Schema) *node {
	return compileNode(s, map[string]*node{})
}

func compileNode(s avro.Schema, named map[string]*node) *node {
	switch s := s.(type) {
	case *avro.RefSchema:
		return compileNode(s.Schema(), named)
	case *avro.NullSchema:
		return &node{kind: kNull, name: "null"}
	case *avro.PrimitiveSchema:
		return compilePrimitive(s.Type())
	case *avro.RecordSchema:
		if n, ok := named[s.FullName()]; ok {
			return n
		}
		n := &node{kind: kRecord, name: s.FullName()}
		named[s.FullName()] = n
		n.fields = make([]fieldNode, len(s.Fields()))
		for i, f := range s.Fields() {
			fn := compileNode(f.Type(), named)
			n.fields[i] = fieldNode{name: f.Name(), node: fn}
			n.minSize += fn.minSize // 0 for a recursive reference in progress
		}
		return n
	case *avro.EnumSchema:
		if n, ok := named[s.FullName()]; ok {
			return n
		}
		n := &node{kind: kEnum, name: s.FullName(), symbols: s.Symbols(), minSize: 1}
		named[s.FullName()] = n
		return n
	case *avro.FixedSchema:
		if n, ok := named[s.FullName()]; ok {
			return n
		}
		n := &node{kind: kFixed, name: s.FullName(), size: s.Size(), minSize: s.Size()}
		named[s.FullName()] = n
		return n
	case *avro.ArraySchema:
		return &node{kind: kArray, name: "array", items: compileNode(s.Items(), named), minSize: 1}
	case *avro.MapSchema:
		return &node{kind: kMap, name: "map", items: compileNode(s.Values(), named), minSize: 1}
	case *avro.UnionSchema:
		n := &node{kind: kUnion, name: "union", minSize: 1}
		for _, t := range s.Types() {
			n.branches = append(n.branches, compileNode(t, named))
		}
		return n
	default:
		return &node{kind: kUnsupported, name: string(s.Type())}
	}
}

func compilePrimitive(t avro.Type) *node {
	switch t {
	case avro.Null:
		return &node{kind: kNull, name: "null"}
	case avro.Boolean:
		return &node{kind: kBool, name: "boolean", minSize: 1}
	case avro.Int:
		return &node{kind: kInt, name: "int", minSize: 1}
	case avro.Long:
		return &node{kind: kLong, name: "long", minSize: 1}
	case avro.Float:
		return &node{kind: kFloat, name: "float", minSize: 4}
	case avro.Double:
		return &node{kind: kDouble, name: "double", minSize: 8}
	case avro.Bytes:
		return &node{kind: kBytes, name: "bytes", minSize: 1}
	case avro.String:
		return &node{kind: kString, name: "string", minSize: 1}
	default:
		return &node{kind: kUnsupported, name: string(t)}
	}
}

// field returns the record field called name, or nil.
func (n *node) field(name string) *node {
	for i := range n.fields {
		if n.fields[i].name == name {
			return n.fields[i].node
		}
	}
	return nil
}
