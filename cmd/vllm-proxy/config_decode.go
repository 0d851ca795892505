package main

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// The file is parsed into goccy's AST and walked against fileConfig's yaml tags by hand,
// rather than decoded in one call, so that every unknown key and every bad value is
// reported (a decoder stops at the first) and each carries its line and column.

// position is a 1-based line and column in the config file.
type position struct{ line, col int }

// configError is one bad setting.
type configError struct {
	where string // "config.yaml:3:8", "--listen", "VLLM_PXY_BACKENDS"
	pos   position
	key   string // "routing.max_retries"; empty for syntax errors
	msg   string
}

func (e configError) Error() string {
	if e.key == "" {
		return e.where + ": " + e.msg
	}
	return e.where + ": " + e.key + ": " + e.msg
}

// configErrors is every problem found in one pass; it is what loadConfig returns.
type configErrors []configError

func (es configErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sorted orders errors by where they are, file errors by line and column.
func (es configErrors) sorted() configErrors {
	out := slices.Clone(es)
	slices.SortStableFunc(out, func(a, b configError) int {
		if c := strings.Compare(a.where[:len(a.where)-len(posSuffix(a))], b.where[:len(b.where)-len(posSuffix(b))]); c != 0 {
			return c
		}
		if a.pos.line != b.pos.line {
			return a.pos.line - b.pos.line
		}
		return a.pos.col - b.pos.col
	})
	return out
}

func posSuffix(e configError) string {
	if e.pos.line == 0 {
		return ""
	}
	return fmt.Sprintf(":%d:%d", e.pos.line, e.pos.col)
}

type decoder struct {
	path string
	pos  map[string]position
	errs configErrors
}

func (d *decoder) errAt(p position, key, format string, args ...any) {
	where := d.path
	if p.line > 0 {
		where = fmt.Sprintf("%s:%d:%d", d.path, p.line, p.col)
	}
	d.errs = append(d.errs, configError{where: where, pos: p, key: key, msg: fmt.Sprintf(format, args...)})
}

// nodePos is where a node starts. goccy puts a block mapping's token on its first ':',
// so a mapping is placed at its first key instead.
func nodePos(n ast.Node) position {
	switch m := n.(type) {
	case nil:
		return position{}
	case *ast.MappingValueNode:
		return nodePos(m.Key)
	case *ast.MappingNode:
		if !m.IsFlowStyle && len(m.Values) > 0 {
			return nodePos(m.Values[0].Key)
		}
	}
	if t := n.GetToken(); t != nil && t.Position != nil {
		return position{t.Position.Line, t.Position.Column}
	}
	return position{}
}

func tokenPos(t *token.Token) position {
	if t == nil || t.Position == nil {
		return position{}
	}
	return position{t.Position.Line, t.Position.Column}
}

func (d *decoder) decodeFile(data []byte, cfg *fileConfig) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		var se *yaml.SyntaxError
		if errors.As(err, &se) {
			d.errAt(tokenPos(se.Token), "", "YAML syntax: %s", se.Message)
			return
		}
		d.errAt(position{}, "", "YAML syntax: %v", err)
		return
	}
	var bodies []ast.Node
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			if _, ok := doc.Body.(*ast.CommentGroupNode); !ok {
				bodies = append(bodies, doc.Body)
			}
		}
	}
	switch len(bodies) {
	case 0:
		return // an empty file: all defaults
	case 1:
	default:
		d.errAt(nodePos(bodies[1]), "", "want one YAML document, found %d", len(bodies))
		return
	}
	d.decode(bodies[0], reflect.ValueOf(cfg).Elem(), "")
}

// decode stores node into v, the field at key, recording where the value is. A null (or
// absent) value leaves the default.
func (d *decoder) decode(node ast.Node, v reflect.Value, key string) {
	switch n := node.(type) {
	case nil, *ast.NullNode:
		return
	case *ast.AnchorNode, *ast.AliasNode, *ast.TagNode, *ast.MergeKeyNode:
		d.errAt(nodePos(node), key, "anchors, aliases, tags and merge keys are not supported")
		return
	case *ast.CommentGroupNode:
		return
	default:
		_ = n
	}
	p := nodePos(node)
	if key != "" {
		d.pos[key] = p
	}
	want := func(what string) { d.errAt(p, key, "want %s, got %s", what, describe(node)) }
	switch v.Type() {
	case reflect.TypeFor[time.Duration]():
		s, ok := scalarString(node)
		dur, err := time.ParseDuration(s)
		if !ok || err != nil {
			want("a duration such as 500ms, 5s or 1m30s")
			return
		}
		v.SetInt(int64(dur))
		return
	case reflect.TypeFor[byteSize]():
		if in, ok := node.(*ast.IntegerNode); ok {
			if n, ok := intValue(in); ok && n >= 0 {
				v.SetInt(n)
				return
			}
		} else if s, ok := scalarString(node); ok {
			if b, err := parseByteSize(s); err == nil {
				v.SetInt(int64(b))
				return
			}
		}
		want("a size in bytes such as 1048576, 512KiB, 32MiB or 1GiB")
		return
	case reflect.TypeFor[triState]():
		if b, ok := node.(*ast.BoolNode); ok {
			v.SetInt(int64(map[bool]triState{true: triTrue, false: triFalse}[b.Value]))
			return
		}
		if s, ok := scalarString(node); ok && strings.EqualFold(s, "auto") {
			v.SetInt(int64(triAuto))
			return
		}
		want("true, false or auto")
		return
	}
	switch v.Kind() {
	case reflect.String:
		s, ok := scalarString(node)
		if !ok {
			want("a string")
			return
		}
		v.SetString(s)
	case reflect.Int, reflect.Int64:
		in, ok := node.(*ast.IntegerNode)
		n, inRange := int64(0), false
		if ok {
			n, inRange = intValue(in)
		}
		if !inRange || (v.Kind() == reflect.Int && (n > math.MaxInt32 || n < math.MinInt32)) {
			want("an integer")
			return
		}
		v.SetInt(n)
	case reflect.Float64:
		var f float64
		switch n := node.(type) {
		case *ast.FloatNode:
			f = n.Value
		case *ast.IntegerNode:
			i, ok := intValue(n)
			if !ok {
				want("a number")
				return
			}
			f = float64(i)
		default:
			want("a number")
			return
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			want("a finite number")
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		b, ok := node.(*ast.BoolNode)
		if !ok {
			want("true or false")
			return
		}
		v.SetBool(b.Value)
	case reflect.Slice:
		seq, ok := node.(*ast.SequenceNode)
		if !ok {
			want("a list")
			return
		}
		out := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
		for i, item := range seq.Values {
			elem := out.Index(i)
			if elem.Kind() == reflect.Struct {
				if _, isNull := item.(*ast.NullNode); isNull || item == nil {
					d.errAt(nodePos(item), fmt.Sprintf("%s[%d]", key, i), "want a mapping, got an empty entry")
					continue
				}
			}
			d.decode(item, elem, fmt.Sprintf("%s[%d]", key, i))
		}
		v.Set(out)
	case reflect.Struct:
		d.decodeStruct(node, v, key, want)
	default:
		d.errAt(p, key, "internal: no decoder for %s", v.Type())
	}
}

func (d *decoder) decodeStruct(node ast.Node, v reflect.Value, key string, want func(string)) {
	var entries []*ast.MappingValueNode
	switch m := node.(type) {
	case *ast.MappingNode:
		entries = m.Values
	case *ast.MappingValueNode: // goccy's form of a one-key mapping
		entries = []*ast.MappingValueNode{m}
	default:
		want("a mapping")
		return
	}
	fields := map[string]int{}
	var names []string
	for i := range v.NumField() {
		if tag := v.Type().Field(i).Tag.Get("yaml"); tag != "" {
			fields[tag] = i
			names = append(names, tag)
		}
	}
	seen := map[string]bool{}
	for _, e := range entries {
		kp := nodePos(e.Key)
		name, ok := scalarString(e.Key)
		if !ok {
			d.errAt(kp, key, "want a plain key, got %s", describe(e.Key))
			continue
		}
		full := joinKey(key, name)
		i, known := fields[name]
		switch {
		case !known:
			d.errAt(kp, full, "unknown key (known keys here: %s)", strings.Join(names, ", "))
			continue
		case seen[name]:
			d.errAt(kp, full, "duplicate key")
			continue
		}
		seen[name] = true
		d.decode(e.Value, v.Field(i), full)
	}
}

func joinKey(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// scalarString is the text of a string-like scalar: plain, quoted or a block literal.
func scalarString(n ast.Node) (string, bool) {
	switch s := n.(type) {
	case *ast.StringNode:
		return s.Value, true
	case *ast.LiteralNode:
		if s.Value != nil {
			return s.Value.Value, true
		}
	}
	return "", false
}

func intValue(n *ast.IntegerNode) (int64, bool) {
	switch x := n.Value.(type) {
	case int64:
		return x, true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

// describe names what a node is, for "want X, got Y".
func describe(n ast.Node) string {
	switch x := n.(type) {
	case *ast.StringNode:
		return "the string " + strconv.Quote(x.Value)
	case *ast.IntegerNode:
		return "the integer " + x.GetToken().Value
	case *ast.FloatNode:
		return "the number " + x.GetToken().Value
	case *ast.BoolNode:
		return "the boolean " + x.GetToken().Value
	case *ast.SequenceNode:
		return "a list"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.LiteralNode:
		return "a block string"
	case nil, *ast.NullNode:
		return "nothing"
	}
	return n.Type().String()
}
