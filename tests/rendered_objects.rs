//! Properties of every rendered object of every fixture and example: it re-parses into its typed form
//! unchanged, a Knative Service satisfies the upstream Knative Serving CRD schema strictly (no unknown
//! field, right types, required fields, no field a default Knative install rejects), a ClusterImagePolicy
//! satisfies the upstream Sigstore policy-controller CRD schema as strictly, and rendering is
//! deterministic.
//!
//! The Knative Serving CRD and feature flags are vendored in `tests/data/knative-serving/`, the
//! policy-controller CRD in `tests/data/sigstore-policy-controller/` (provenance and license there), so a
//! fresh clone tests with nothing beside it.

#![allow(clippy::unwrap_used, clippy::panic)] // test code: failing loudly is the point

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use knext::api::{ClusterImagePolicy, KnativeService, parse_nextapp};
use knext::pipeline::{self, Source};
use knext::policy;
use knext::render::{self, Manifest, RenderOptions};
use knext::yaml::parse::split_documents;
use serde_json::Value;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    out.sort();
    out
}

/// Every valid NextApp the repository ships: fixtures and examples.
fn valid_sources() -> Vec<Source> {
    let root = manifest_dir();
    let mut files = yaml_files(&root.join("snapshots/inputs/valid"));
    files.extend(yaml_files(&root.join("examples")));
    assert!(files.len() >= 7, "fixtures missing: {files:?}");
    files
        .into_iter()
        .map(|p| Source {
            name: p.display().to_string(),
            text: std::fs::read_to_string(&p).unwrap(),
        })
        .collect()
}

fn rendered() -> Vec<Manifest> {
    let mut out = Vec::new();
    for src in valid_sources() {
        for doc in split_documents(&src.text).iter().filter(|d| !d.is_blank()) {
            let app = parse_nextapp(doc).unwrap_or_else(|e| panic!("{}: {e}", src.name));
            let (v, _) = policy::validate(&app).unwrap_or_else(|r| panic!("{}: {:?}", src.name, r.problems));
            out.extend(render::app(
                &v,
                &RenderOptions {
                    owner_uid: Some("0f3c5e1a-uid"),
                    ..RenderOptions::default()
                },
            ));
            out.extend(render::app(&v, &RenderOptions::default()));
        }
    }
    out
}

#[test]
fn every_rendered_object_reparses_into_its_typed_form_unchanged() {
    let manifests = rendered();
    assert!(manifests.len() >= 20);
    for m in &manifests {
        let mut text = String::new();
        m.write_yaml(&mut text).unwrap();
        let back = match m {
            Manifest::KnativeService(_) => {
                Manifest::KnativeService(Box::new(serde_yaml::from_str::<KnativeService>(&text).unwrap()))
            }
            Manifest::ServiceAccount(_) => {
                Manifest::ServiceAccount(serde_yaml::from_str::<ServiceAccount>(&text).unwrap())
            }
            Manifest::NetworkPolicy(_) => {
                Manifest::NetworkPolicy(serde_yaml::from_str::<NetworkPolicy>(&text).unwrap())
            }
            Manifest::ClusterImagePolicy(_) => Manifest::ClusterImagePolicy(Box::new(
                serde_yaml::from_str::<ClusterImagePolicy>(&text).unwrap(),
            )),
            Manifest::DaemonSet(_) => {
                Manifest::DaemonSet(Box::new(serde_yaml::from_str::<DaemonSet>(&text).unwrap()))
            }
        };
        assert_eq!(&back, m, "round trip changed {} {}:\n{text}", m.kind(), m.name());
        // And the generic value is the same as serde_json's view of the object.
        let via_yaml: Value = serde_yaml::from_str(&text).unwrap();
        let direct = match m {
            Manifest::KnativeService(s) => serde_json::to_value(s).unwrap(),
            Manifest::ServiceAccount(s) => serde_json::to_value(s).unwrap(),
            Manifest::NetworkPolicy(p) => serde_json::to_value(p).unwrap(),
            Manifest::ClusterImagePolicy(p) => serde_json::to_value(p).unwrap(),
            Manifest::DaemonSet(d) => serde_json::to_value(d).unwrap(),
        };
        assert_eq!(via_yaml, direct);
    }
}

/// Knative feature flags enabled in a default install (`config-features.yaml`).
fn enabled_flags(dir: &Path) -> BTreeSet<String> {
    let cm: Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("config-features.yaml")).unwrap()).unwrap();
    let example = cm["data"]["_example"].as_str().unwrap_or_default();
    example
        .lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(':')?;
            let v = v.trim().trim_matches('"');
            (v == "enabled" || v == "allowed").then(|| k.trim().to_owned())
        })
        .collect()
}

/// A strict structural check of `doc` against an openAPIV3Schema: every key must be declared (where the
/// schema lists properties and does not preserve unknown fields), types must match, required fields must be present, and a
/// field documented as "behind a feature flag - X" must have X enabled.
fn check(doc: &Value, schema: &Value, path: &str, flags: &BTreeSet<String>, errs: &mut Vec<String>) {
    let ty = schema.get("type").and_then(Value::as_str);
    let int_or_string = schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let type_ok = match (ty, doc) {
        _ if int_or_string => doc.is_string() || doc.is_i64() || doc.is_u64(),
        (None, _) => true,
        (Some("object"), Value::Object(_)) | (Some("array"), Value::Array(_)) => true,
        (Some("string"), Value::String(_)) | (Some("boolean"), Value::Bool(_)) => true,
        (Some("integer"), v) => v.is_i64() || v.is_u64(),
        (Some("number"), v) => v.is_number(),
        _ => false,
    };
    if !type_ok {
        errs.push(format!("{path}: expected {ty:?}, got {doc}"));
        return;
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.contains(doc)
    {
        errs.push(format!("{path}: {doc} not in {values:?}"));
    }
    match doc {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            // As the API server with fieldValidation=Strict: only an object that lists properties and
            // does not preserve unknown fields rejects undeclared keys (root `metadata` lists none).
            let preserve = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
                || props.is_none();
            for req in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !map.contains_key(req.as_str().unwrap_or_default()) {
                    errs.push(format!("{path}: missing required {req}"));
                }
            }
            for (k, v) in map {
                let sub = props
                    .and_then(|p| p.get(k))
                    .or_else(|| schema.get("additionalProperties"));
                match sub {
                    Some(sub) if sub.is_object() => {
                        if let Some(desc) = sub.get("description").and_then(Value::as_str)
                            && let Some(rest) = desc.split("behind a feature flag - ").nth(1)
                        {
                            let flag: String = rest
                                .chars()
                                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                                .collect();
                            if !flags.contains(&flag) {
                                errs.push(format!("{path}.{k}: needs Knative feature flag {flag}"));
                            }
                        }
                        check(v, sub, &format!("{path}.{k}"), flags, errs);
                    }
                    _ if preserve => {}
                    _ => errs.push(format!("{path}.{k}: not allowed by the schema")),
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item, item_schema, &format!("{path}[{i}]"), flags, errs);
                }
            }
        }
        _ => {}
    }
}

#[test]
fn every_rendered_knative_service_passes_the_knative_serving_crd_schema_strictly() {
    let dir = manifest_dir().join("tests/data/knative-serving");
    let crd_text = std::fs::read_to_string(dir.join("service.yaml")).unwrap();
    let crd: Value = serde_yaml::from_str(&crd_text).unwrap();
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let flags = enabled_flags(&dir);
    assert!(flags.contains("kubernetes.podspec-volumes-emptydir"));
    assert!(!flags.contains("kubernetes.podspec-securitycontext"));

    let mut checked = 0;
    for m in rendered() {
        let Manifest::KnativeService(svc) = &m else {
            continue;
        };
        let doc = serde_json::to_value(svc.as_ref()).unwrap();
        let mut errs = Vec::new();
        check(&doc, schema, "", &flags, &mut errs);
        assert!(errs.is_empty(), "{}: {errs:#?}", m.name());
        checked += 1;
    }
    assert!(checked >= 8);

    // The check itself can fail: a pod-level securityContext and an unknown field are caught.
    let mut svc = rendered().into_iter().find_map(|m| match m {
        Manifest::KnativeService(s) => Some(s),
        _ => None,
    });
    let svc = svc.as_mut().unwrap();
    svc.spec.template.spec.pod.security_context = Some(Default::default());
    let mut doc = serde_json::to_value(svc.as_ref()).unwrap();
    doc["spec"]["template"]["spec"]["bogus"] = Value::Bool(true);
    let mut errs = Vec::new();
    check(&doc, schema, "", &flags, &mut errs);
    assert_eq!(errs.len(), 2, "{errs:#?}");
}

#[test]
fn every_rendered_cluster_image_policy_passes_the_policy_controller_crd_schema_strictly() {
    let dir = manifest_dir().join("tests/data/sigstore-policy-controller");
    let crd: Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("clusterimagepolicy.yaml")).unwrap()).unwrap();
    assert_eq!(crd["spec"]["group"], "policy.sigstore.dev");
    assert_eq!(crd["spec"]["scope"], "Cluster");
    let version = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1beta1" && v["served"] == true)
        .unwrap();
    // As the API server does for every CRD, the root also allows apiVersion, kind and metadata (this
    // CRD's schema lists only spec and status).
    let mut schema = version["schema"]["openAPIV3Schema"].clone();
    let props = schema["properties"].as_object_mut().unwrap();
    for (key, ty) in [
        ("apiVersion", "string"),
        ("kind", "string"),
        ("metadata", "object"),
    ] {
        assert!(!props.contains_key(key));
        props.insert(key.to_owned(), serde_json::json!({"type": ty}));
    }
    let schema = &schema;
    let no_flags = BTreeSet::new();

    let mut checked = 0;
    for m in rendered() {
        let Manifest::ClusterImagePolicy(p) = &m else {
            continue;
        };
        assert_eq!(p.api_version, "policy.sigstore.dev/v1beta1");
        assert_eq!(p.metadata.namespace, None, "cluster-scoped");
        let doc = serde_json::to_value(p.as_ref()).unwrap();
        let mut errs = Vec::new();
        check(&doc, schema, "", &no_flags, &mut errs);
        assert!(errs.is_empty(), "{}: {errs:#?}", m.name());
        checked += 1;
    }
    // signed.yaml's two apps, rendered with and without an owner.
    assert!(checked >= 4, "{checked}");

    // The check itself can fail: an unknown field and a wrong type are caught.
    let p = rendered()
        .into_iter()
        .find_map(|m| match m {
            Manifest::ClusterImagePolicy(p) => Some(p),
            _ => None,
        })
        .unwrap();
    let mut doc = serde_json::to_value(p.as_ref()).unwrap();
    doc["spec"]["authorities"][0]["keyless"]["identities"][0]["subjectRegex"] = Value::from("x");
    doc["spec"]["images"][0]["glob"] = Value::Bool(true);
    let mut errs = Vec::new();
    check(&doc, schema, "", &no_flags, &mut errs);
    assert_eq!(errs.len(), 2, "{errs:#?}");
}

#[test]
fn rendering_is_deterministic_across_runs_and_thread_pools() {
    let sources = valid_sources();
    let render_all = || {
        let outcome = pipeline::run(&sources, &RenderOptions::default());
        assert_eq!(outcome.exit_code(), 0, "{:#?}", outcome.diagnostics);
        let mut out = String::new();
        knext::render::layout::stream(&outcome.apps, &mut out);
        out
    };
    let first = render_all();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let single = pool.install(render_all);
    assert_eq!(first, render_all());
    assert_eq!(first, single);
    assert!(first.starts_with(knext::render::layout::HEADER_PREFIX));
}
