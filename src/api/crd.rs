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
}
