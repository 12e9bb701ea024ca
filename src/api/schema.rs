//! JSON Schema of NextApp documents for editors, derived from the CRD's openAPIV3Schema (one source:
//! the Rust types).

use serde_json::{Value, json};

use crate::api::{API_VERSION, KIND};

/// A draft-07 JSON Schema of a NextApp document: the CRD schema with `apiVersion`/`kind` pinned,
/// Kubernetes' `nullable` turned into JSON Schema null types, and unknown spec fields rejected.
pub fn nextapp_json_schema() -> Value {
    let mut schema = super::crd::nextapp_openapi_schema();
    if !schema.is_object() {
        schema = json!({"type": "object"});
    }
    nullable_to_types(&mut schema);
    if let Some(spec) = schema.pointer_mut("/properties/spec") {
        strict(spec);
    }
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("$schema".into(), json!("http://json-schema.org/draft-07/schema#"));
        obj.insert(
            "$id".into(),
            json!("https://kn-next.dev/schemas/nextapp-v1alpha1.json"),
        );
        obj.insert("title".into(), json!(KIND));
        let props = obj.entry("properties").or_insert_with(|| json!({}));
        if let Some(p) = props.as_object_mut() {
            p.insert(
                "apiVersion".into(),
                json!({"type": "string", "enum": [API_VERSION]}),
            );
            p.insert("kind".into(), json!({"type": "string", "enum": [KIND]}));
        }
        obj.insert(
            "required".into(),
            json!(["apiVersion", "kind", "metadata", "spec"]),
        );
    }
    schema
}

/// Objects with declared properties accept no others, as knext's parser (`deny_unknown_fields`) does;
/// editors then flag typos too. Maps (`additionalProperties` schemas) keep their value schema.
fn strict(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(strict);
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

fn nullable_to_types(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true))
                && let Some(Value::String(t)) = map.get("type").cloned()
            {
                map.insert("type".into(), json!([t, "null"]));
            }
            map.values_mut().for_each(nullable_to_types);
        }
        Value::Array(items) => items.iter_mut().for_each(nullable_to_types),
        _ => {}
    }
}
