package graph

import (
	"bytes"
	"encoding/json"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// merger puts deferred payloads into the initial payload's data at their
// paths. The data is parsed only along the paths it is merged at; the rest
// stays the bytes gqlgen wrote, and keys keep their order (a deferred field
// replaces the null gqlgen left at its place), so the merged answer is the
// one the operation without @defer gives, byte for byte.
type merger struct {
	oc   *graphql.OperationContext // for the types along a path; nil: a payload's null data is not merged
	root *jvalue
}

func newMerger(oc *graphql.OperationContext, data json.RawMessage) *merger {
	return &merger{oc: oc, root: &jvalue{raw: dataOrNull(data)}}
}

// add merges resp's data at resp.Path and reports whether it could: false
// when the object at the path is missing or null (not sent yet, or nulled).
// Null data (a non-null field of the fragment failed) nulls the nearest
// nullable position at or above the path, as the error would have without
// @defer.
func (m *merger) add(resp *graphql.Response) bool {
	target := m.root.at(resp.Path)
	if target == nil || !target.parse() || !target.isObject() {
		return false
	}
	data := &jvalue{raw: dataOrNull(resp.Data)}
	if data.isNull() {
		if m.oc != nil {
			m.nullify(resp.Path)
		}
		return true
	}
	if !data.parse() || !data.isObject() {
		return false
	}
	for _, f := range data.fields {
		target.set(f.key, f.val)
	}
	return true
}

// nullify sets to null the nearest position at or above path whose type is
// nullable; the whole data when there is none.
func (m *merger) nullify(path ast.Path) {
	types := typesAlong(m.oc, path)
	for i := len(path); i > 0; i-- {
		if t := types[i-1]; t != nil && t.NonNull {
			continue
		}
		parent := m.root.at(path[:i-1])
		if parent == nil || !parent.parse() {
			return
		}
		null := &jvalue{raw: json.RawMessage("null")}
		switch el := path[i-1].(type) {
		case ast.PathName:
			parent.set(string(el), null)
		case ast.PathIndex:
			if int(el) < len(parent.items) {
				parent.items[el] = null
			}
		}
		return
	}
	m.root = &jvalue{raw: json.RawMessage("null")}
}

// typesAlong returns the type of the value at each prefix of path in the
// operation (nil where it cannot tell).
func typesAlong(oc *graphql.OperationContext, path ast.Path) []*ast.Type {
	out := make([]*ast.Type, len(path))
	if oc == nil || oc.Operation == nil {
		return out
	}
	set := oc.Operation.SelectionSet
	typeName := "Query"
	var cur *ast.Type
	for i, el := range path {
		switch el := el.(type) {
		case ast.PathName:
			var found *graphql.CollectedField
			fields := graphql.CollectFields(oc, set, []string{typeName})
			for j := range fields {
				if fields[j].Alias == string(el) {
					found = &fields[j]
					break
				}
			}
			if found == nil || found.Definition == nil {
				return out
			}
			cur, set = found.Definition.Type, found.Selections
		case ast.PathIndex:
			if cur == nil || cur.Elem == nil {
				return out
			}
			cur = cur.Elem
		}
		out[i] = cur
		typeName = cur.Name()
	}
	return out
}

func (m *merger) bytes() json.RawMessage {
	var buf bytes.Buffer
	m.root.write(&buf)
	return buf.Bytes()
}

// jvalue is a JSON value, parsed on demand: raw until parse, then an
// object's fields or an array's items (a scalar stays raw).
type jvalue struct {
	raw    json.RawMessage
	parsed bool
	fields []jfield  // an object's, in order
	items  []*jvalue // an array's
	kind   byte      // '{', '[' or 0 (scalar, null), once parsed
}

type jfield struct {
	key string
	val *jvalue
}

func (v *jvalue) isObject() bool { return v.parsed && v.kind == '{' }

func (v *jvalue) isNull() bool { return bytes.Equal(bytes.TrimSpace(v.raw), []byte("null")) }

// parse parses one level; it reports false for bytes that are not JSON.
func (v *jvalue) parse() bool {
	if v.parsed {
		return true
	}
	raw := bytes.TrimSpace(v.raw)
	if len(raw) == 0 {
		return false
	}
	switch raw[0] {
	case '{', '[':
	default:
		v.parsed = true
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return false
	}
	kind := raw[0]
	var fields []jfield
	var items []*jvalue
	for dec.More() {
		var key string
		if kind == '{' {
			tok, err := dec.Token()
			if err != nil {
				return false
			}
			key, _ = tok.(string)
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return false
		}
		if kind == '{' {
			fields = append(fields, jfield{key, &jvalue{raw: val}})
		} else {
			items = append(items, &jvalue{raw: val})
		}
	}
	v.parsed, v.kind, v.fields, v.items, v.raw = true, kind, fields, items, nil
	return true
}

// at returns the value at path, or nil when a step is missing or null.
func (v *jvalue) at(path ast.Path) *jvalue {
	cur := v
	for _, el := range path {
		if cur.isNull() || !cur.parse() {
			return nil
		}
		switch el := el.(type) {
		case ast.PathName:
			if cur.kind != '{' {
				return nil
			}
			var next *jvalue
			for _, f := range cur.fields {
				if f.key == string(el) {
					next = f.val
					break
				}
			}
			if next == nil {
				return nil
			}
			cur = next
		case ast.PathIndex:
			if cur.kind != '[' || int(el) < 0 || int(el) >= len(cur.items) {
				return nil
			}
			cur = cur.items[el]
		default:
			return nil
		}
	}
	if cur.isNull() {
		return nil
	}
	return cur
}

// set replaces the value of key in a parsed object, or appends it.
func (v *jvalue) set(key string, val *jvalue) {
	for i := range v.fields {
		if v.fields[i].key == key {
			v.fields[i].val = val
			return
		}
	}
	v.fields = append(v.fields, jfield{key, val})
}

func (v *jvalue) write(buf *bytes.Buffer) {
	if !v.parsed || v.kind == 0 {
		if len(v.raw) == 0 {
			buf.WriteString("null")
			return
		}
		buf.Write(v.raw)
		return
	}
	if v.kind == '[' {
		buf.WriteByte('[')
		for i, it := range v.items {
			if i > 0 {
				buf.WriteByte(',')
			}
			it.write(buf)
		}
		buf.WriteByte(']')
		return
	}
	buf.WriteByte('{')
	for i, f := range v.fields {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(f.key)
		buf.Write(k)
		buf.WriteByte(':')
		f.val.write(buf)
	}
	buf.WriteByte('}')
}
