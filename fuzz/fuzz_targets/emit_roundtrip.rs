//! knext's YAML emitter: every tree it writes parses back (with serde_yaml) to exactly that tree.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_yaml::Value;

#[derive(Arbitrary, Debug)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

fn to_value(n: &Node, depth: usize) -> Value {
    match n {
        _ if depth > 24 => Value::Null,
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(*b),
        Node::Int(i) => Value::from(*i),
        Node::Uint(u) => Value::from(*u),
        // NaN != NaN; finite and infinite floats must round-trip exactly.
        Node::Float(f) if f.is_nan() => Value::Null,
        Node::Float(f) => Value::from(*f),
        Node::Str(s) => Value::String(s.clone()),
        Node::Seq(items) => Value::Sequence(items.iter().map(|i| to_value(i, depth + 1)).collect()),
        Node::Map(entries) => {
            // Unique keys, in a stable order (the emitter writes maps in the order given).
            let map: BTreeMap<&String, &Node> = entries.iter().map(|(k, v)| (k, v)).collect();
            Value::Mapping(
                map.into_iter()
                    .map(|(k, v)| (Value::String(k.clone()), to_value(v, depth + 1)))
                    .collect(),
            )
        }
    }
}

fuzz_target!(|node: Node| {
    let value = to_value(&node, 0);
    let text = knext::yaml::emit::to_string(&value).expect("every serde_yaml::Value is emittable");
    let back: Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("emitted YAML does not parse: {e}\n{text}"));
    assert_eq!(back, value, "round trip changed the value:\n{text}");
});
