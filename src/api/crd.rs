//! The NextApp CustomResourceDefinition, derived from the Rust types.
//!
//! Shared with `build.rs`; pure. kube's derive produces the structural schema (every field's `///` doc is
//! its description), printer columns and the status subresource; this module adds what the derive leaves
//! out of the root schema (`apiVersion`, `kind`, `metadata`, as controller-gen writes them), so that a
//! strict validator accepts NextApp documents against it.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::CustomResourceExt;

use super::NextApp;

/// The `nextapps.apps.kn-next.dev` CRD.
pub fn nextapp_crd() -> CustomResourceDefinition {
    let mut crd = NextApp::crd();
    for version in &mut crd.spec.versions {
        let Some(root) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        let props = root.properties.get_or_insert_with(BTreeMap::new);
        let string = |description: &str| JSONSchemaProps {
            type_: Some("string".into()),
            description: Some(description.into()),
            ..Default::default()
        };
        props.entry("apiVersion".into()).or_insert_with(|| {
            string(
                "APIVersion defines the versioned schema of this representation of an object. Servers \
                 should convert recognized schemas to the latest internal value, and may reject \
                 unrecognized values.",
            )
        });
        props.entry("kind".into()).or_insert_with(|| {
            string(
                "Kind is a string value representing the REST resource this object represents. Servers \
                 may infer this from the endpoint the client submits requests to. In CamelCase.",
            )
        });
        props.entry("metadata".into()).or_insert_with(|| JSONSchemaProps {
            type_: Some("object".into()),
            ..Default::default()
        });
    }
    crd
}

/// The `openAPIV3Schema` of the CRD's version, as JSON (what the JSON Schema for editors and the
/// client-side admission check are built from).
pub fn nextapp_openapi_schema() -> serde_json::Value {
    nextapp_crd()
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_schema_declares_api_version_kind_and_metadata() {
        let crd = nextapp_crd();
        let root = crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap();
        let names: Vec<&str> = root
            .properties
            .as_ref()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(names, ["apiVersion", "kind", "metadata", "spec", "status"]);
        assert_eq!(root.required.as_deref(), Some(&["spec".to_owned()][..]));
    }

    /// One line per schema property: path, type, `required`, `nullable`, enum values and CEL rules.
    fn surface(schema: &serde_json::Value, path: &str, required: bool, out: &mut Vec<String>) {
        use serde_json::Value;
        let mut line = format!(
            "{}: {}",
            if path.is_empty() { "." } else { path },
            schema["type"].as_str().unwrap_or("any")
        );
        if let Some(f) = schema["format"].as_str() {
            line.push_str(&format!(" ({f})"));
        }
        if required {
            line.push_str(" required");
        }
        if schema["nullable"] == Value::Bool(true) {
            line.push_str(" nullable");
        }
        if let Some(e) = schema["enum"].as_array() {
            let values: Vec<String> = e.iter().map(ToString::to_string).collect();
            line.push_str(&format!(" enum[{}]", values.join(", ")));
        }
        out.push(line);
        for rule in schema["x-kubernetes-validations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            out.push(format!("  rule: {}", rule["rule"].as_str().unwrap_or_default()));
        }
        let req: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(props) = schema["properties"].as_object() {
            for (k, v) in props {
                surface(v, &format!("{path}.{k}"), req.contains(&k.as_str()), out);
            }
        }
        if let Some(items) = schema.get("items") {
            surface(items, &format!("{path}[]"), false, out);
        }
        if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
            surface(values, &format!("{path}.*"), false, out);
        }
    }

    /// The CRD's API surface, for review in pull requests (the full CRD is generated/crd/).
    #[test]
    fn crd_surface_snapshot() {
        let crd = nextapp_crd();
        let mut out = vec![
            format!("name: {}", crd.metadata.name.clone().unwrap_or_default()),
            format!("scope: {}", crd.spec.scope),
        ];
        for v in &crd.spec.versions {
            out.push(format!(
                "version {} served={} storage={}",
                v.name, v.served, v.storage
            ));
            out.push(format!(
                "  status subresource: {}",
                v.subresources.as_ref().is_some_and(|s| s.status.is_some())
            ));
            for c in v.additional_printer_columns.iter().flatten() {
                out.push(format!(
                    "  column {} ({}) priority={}: {}",
                    c.name,
                    c.type_,
                    c.priority.unwrap_or(0),
                    c.json_path
                ));
            }
        }
        surface(&nextapp_openapi_schema(), "", false, &mut out);
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| insta::assert_snapshot!("nextapp_crd_surface", out.join("\n")));
    }
}
