//! The image walker: every container image in any Kubernetes object, checked with the digest-pin rule.
//!
//! Shared with `build.rs`; pure. It works structurally on the object's JSON form, so it covers every
//! kind without a list of kinds: each `containers`, `initContainers` and `ephemeralContainers` array of
//! objects anywhere in the object (Pods, every workload's pod template, CronJobs' job templates, Knative
//! Services, Configurations and Revisions, and kinds it has never heard of), plus a NextApp's
//! `spec.image`. The pin rule itself is [`super::image::check_pinned`], the same one the validator uses.

use serde_json::Value;

use super::image::{self, ImageError};

/// Where a container image was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundImage {
    /// JSON path of the `image` field, e.g. `spec.template.spec.containers[0].image`.
    pub path: String,
    /// The container's `name`, when it has one.
    pub container: Option<String>,
    /// The image reference as written.
    pub image: String,
}

/// An image that is not digest-pinned, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpinned {
    /// Where it is.
    pub found: FoundImage,
    /// Why it is rejected, and how to fix it.
    pub error: ImageError,
}

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// Every container image in `object`: NextApp `spec.image` first, then containers in the order of the
/// JSON object's keys (sorted) and array positions. A container whose `image` is missing or not a string
/// is reported with an empty image, so it fails the pin check instead of being skipped.
pub fn find_images(object: &Value) -> Vec<FoundImage> {
    let mut out = Vec::new();
    let is_nextapp = object.get("kind").and_then(Value::as_str) == Some(crate::api::KIND)
        && object.get("apiVersion").and_then(Value::as_str) == Some(crate::api::API_VERSION);
    if is_nextapp {
        let image = object
            .pointer("/spec/image")
            .and_then(Value::as_str)
            .unwrap_or_default();
        out.push(FoundImage {
            path: "spec.image".into(),
            container: None,
            image: image.to_owned(),
        });
    }
    walk(object, "", &mut out, 0);
    out
}

/// Every image in `object` that is not digest-pinned.
pub fn unpinned_images(object: &Value) -> Vec<Unpinned> {
    find_images(object)
        .into_iter()
        .filter_map(|found| match image::check_pinned(&found.image) {
            Ok(_) => None,
            Err(error) => Some(Unpinned { found, error }),
        })
        .collect()
}

/// Deep enough for any real object; bounds the recursion on hostile input.
const MAX_DEPTH: usize = 64;

fn walk(node: &Value, path: &str, out: &mut Vec<FoundImage>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match value {
                    Value::Array(items) if CONTAINER_LISTS.contains(&key.as_str()) => {
                        for (i, item) in items.iter().enumerate() {
                            if let Value::Object(container) = item {
                                out.push(FoundImage {
                                    path: format!("{child}[{i}].image"),
                                    container: container
                                        .get("name")
                                        .and_then(Value::as_str)
                                        .map(str::to_owned),
                                    image: container
                                        .get("image")
                                        .and_then(Value::as_str)
                                        .unwrap_or_default()
                                        .to_owned(),
                                });
                            }
                        }
                    }
                    _ => walk(value, &child, out, depth + 1),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{path}[{i}]"), out, depth + 1);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PINNED: &str =
        "ghcr.io/acme/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn paths(object: &Value) -> Vec<(String, Option<String>, String)> {
        find_images(object)
            .into_iter()
            .map(|f| (f.path, f.container, f.image))
            .collect()
    }

    #[test]
    fn every_container_list_of_every_pod_template_is_found() {
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {
                "initContainers": [{"name": "init", "image": "busybox:1.36"}],
                "containers": [{"name": "app", "image": PINNED}, {"name": "side", "image": "envoy"}],
                "ephemeralContainers": [{"name": "debug", "image": "alpine:latest"}]
            }}}
        });
        assert_eq!(
            paths(&deployment),
            [
                (
                    "spec.template.spec.containers[0].image".into(),
                    Some("app".into()),
                    PINNED.into()
                ),
                (
                    "spec.template.spec.containers[1].image".into(),
                    Some("side".into()),
                    "envoy".into()
                ),
                (
                    "spec.template.spec.ephemeralContainers[0].image".into(),
                    Some("debug".into()),
                    "alpine:latest".into()
                ),
                (
                    "spec.template.spec.initContainers[0].image".into(),
                    Some("init".into()),
                    "busybox:1.36".into()
                ),
            ]
        );
        let bad: Vec<_> = unpinned_images(&deployment)
            .into_iter()
            .map(|u| u.found.container)
            .collect();
        assert_eq!(
            bad,
            [Some("side".into()), Some("debug".into()), Some("init".into())]
        );
    }

    #[test]
    fn nested_templates_of_cronjobs_and_kinds_it_does_not_know_are_found() {
        let cron = json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "job:1"}]}}}}}});
        assert_eq!(
            paths(&cron)[0].0,
            "spec.jobTemplate.spec.template.spec.containers[0].image"
        );
        let custom = json!({"kind": "Rollout", "apiVersion": "argoproj.io/v1alpha1",
            "spec": {"template": {"spec": {"containers": [{"image": "x:1"}]}}}});
        assert_eq!(unpinned_images(&custom).len(), 1);
    }

    #[test]
    fn a_nextapp_image_is_checked_and_a_missing_image_is_not_skipped() {
        let app =
            json!({"apiVersion": "apps.kn-next.dev/v1alpha1", "kind": "NextApp", "spec": {"image": "web:2"}});
        let bad = unpinned_images(&app);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].found.path, "spec.image");
        assert_eq!(bad[0].error.reason(), "InvalidImage");
        let no_image = json!({"kind": "Pod", "spec": {"containers": [{"name": "x"}]}});
        assert_eq!(unpinned_images(&no_image)[0].error, ImageError::Empty);
        let pinned = json!({"kind": "Pod", "spec": {"containers": [{"name": "x", "image": PINNED}]}});
        assert!(unpinned_images(&pinned).is_empty());
    }

    #[test]
    fn every_rendered_object_of_a_valid_app_is_pinned() {
        let spec: crate::api::NextAppSpec =
            serde_yaml::from_str(&format!("image: {PINNED}\nruntime: bun\n")).unwrap();
        let mut app = crate::api::NextApp::new("web", spec);
        app.metadata.namespace = Some("apps".into());
        let (valid, _) = crate::policy::validate(&app).unwrap();
        let mut found = 0;
        for m in crate::render::app(&valid, &Default::default()) {
            let value = m.to_json().unwrap();
            found += find_images(&value).len();
            assert!(unpinned_images(&value).is_empty());
        }
        assert_eq!(found, 1, "the Knative Service's one container");
    }

    #[test]
    fn hostile_nesting_is_bounded() {
        let mut v = json!({"containers": [{"image": "x"}]});
        for _ in 0..1_000 {
            v = json!({ "a": v });
        }
        assert!(find_images(&v).is_empty());
    }
}
