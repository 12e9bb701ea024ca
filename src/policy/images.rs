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

/// An image that is not digest-pinned, or a place the walker could not check, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpinned {
    /// Where it is.
    pub found: FoundImage,
    /// Why it is rejected, and how to fix it.
    pub error: Rejection,
}

/// Why the gate refuses a place in an object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The image is not digest-pinned (or malformed).
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The object nests deeper than the walker goes; what lies below was not checked, so it fails.
    #[error(
        "the object nests deeper than {MAX_DEPTH} levels here, so its images cannot all be checked; no \
         real Kubernetes object does"
    )]
    TooDeep,
    /// An entry of a container list is not an object, so it names no image the gate can check.
    #[error("this container list entry is not an object, so its image cannot be checked")]
    NotAContainer,
}

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// Every container image in `object`: NextApp `spec.image` first, then containers in the order of the
/// JSON object's keys (sorted) and array positions. A container whose `image` is missing or not a string
/// is reported with an empty image, so it fails the pin check instead of being skipped. Places the walker
/// cannot check (nesting beyond [`MAX_DEPTH`], a container entry that is not an object) are returned as
/// the second list; callers must treat them as failures.
pub fn find_images(object: &Value) -> (Vec<FoundImage>, Vec<(String, Rejection)>) {
    let mut out = Walk::default();
    let is_nextapp = object.get("kind").and_then(Value::as_str) == Some(crate::api::KIND)
        && object.get("apiVersion").and_then(Value::as_str) == Some(crate::api::API_VERSION);
    if is_nextapp {
        let image = object
            .pointer("/spec/image")
            .and_then(Value::as_str)
            .unwrap_or_default();
        out.found.push(FoundImage {
            path: "spec.image".into(),
            container: None,
            image: image.to_owned(),
        });
    }
    walk(object, "", &mut out, 0);
    (out.found, out.unchecked)
}

/// Every image in `object` that is not digest-pinned, and every place that could not be checked.
pub fn unpinned_images(object: &Value) -> Vec<Unpinned> {
    let (found, unchecked) = find_images(object);
    let mut out: Vec<Unpinned> = found
        .into_iter()
        .filter_map(|found| match image::check_pinned(&found.image) {
            Ok(_) => None,
            Err(error) => Some(Unpinned {
                found,
                error: error.into(),
            }),
        })
        .collect();
    out.extend(unchecked.into_iter().map(|(path, error)| Unpinned {
        found: FoundImage {
            path,
            container: None,
            image: String::new(),
        },
        error,
    }));
    out
}

/// Deep enough for any real object (a CronJob's containers sit at depth 8); bounds the recursion on
/// hostile input. Anything deeper fails the gate ([`Rejection::TooDeep`]).
pub const MAX_DEPTH: usize = 64;

#[derive(Default)]
struct Walk {
    found: Vec<FoundImage>,
    unchecked: Vec<(String, Rejection)>,
}

fn walk(node: &Value, path: &str, out: &mut Walk, depth: usize) {
    if depth > MAX_DEPTH {
        // Fail closed: a container list could hide below.
        if matches!(node, Value::Object(m) if !m.is_empty())
            || matches!(node, Value::Array(a) if !a.is_empty())
        {
            out.unchecked.push((path.to_owned(), Rejection::TooDeep));
        }
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
                            let Value::Object(container) = item else {
                                out.unchecked
                                    .push((format!("{child}[{i}]"), Rejection::NotAContainer));
                                continue;
                            };
                            out.found.push(FoundImage {
                                path: format!("{child}[{i}].image"),
                                container: container.get("name").and_then(Value::as_str).map(str::to_owned),
                                image: container
                                    .get("image")
                                    .and_then(Value::as_str)
                                    .unwrap_or_default()
                                    .to_owned(),
                            });
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
        let (found, unchecked) = find_images(object);
        assert_eq!(unchecked, []);
        found
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
        assert!(matches!(
            bad[0].error,
            Rejection::Image(ImageError::TagOnly { .. })
        ));
        let no_image = json!({"kind": "Pod", "spec": {"containers": [{"name": "x"}]}});
        assert_eq!(
            unpinned_images(&no_image)[0].error,
            Rejection::Image(ImageError::Empty)
        );
        let pinned = json!({"kind": "Pod", "spec": {"containers": [{"name": "x", "image": PINNED}]}});
        assert!(unpinned_images(&pinned).is_empty());
    }

    #[test]
    fn every_rendered_object_of_a_valid_app_is_pinned() {
        let spec: crate::api::NextAppSpec = serde_yaml::from_str(&format!(
            "image: {PINNED}\nruntime: bun\nscaling:\n  imagePrewarm: true\n"
        ))
        .unwrap();
        let mut app = crate::api::NextApp::new("web", spec);
        app.metadata.namespace = Some("apps".into());
        let (valid, _) = crate::policy::validate(&app).unwrap();
        let mut found = 0;
        for m in crate::render::app(&valid, &Default::default()) {
            let value = m.to_json().unwrap();
            found += find_images(&value).0.len();
            assert!(unpinned_images(&value).is_empty());
        }
        assert_eq!(
            found, 3,
            "the Knative Service's one container, the image-prewarm DaemonSet's two (the app's image and \
             knext's own)"
        );
    }

    #[test]
    fn nesting_beyond_the_walkers_depth_fails_closed() {
        // A pinned container deep down is fine as long as the walker reaches it ...
        let mut v = json!({"containers": [{"name": "c", "image": PINNED}]});
        for _ in 0..MAX_DEPTH {
            v = json!({ "a": v });
        }
        assert_eq!(find_images(&v).0.len(), 1);
        assert_eq!(unpinned_images(&v), []);
        // ... one level deeper it is not reached, and the gate says so instead of passing the object.
        let hostile = json!({ "a": v });
        assert!(find_images(&hostile).0.is_empty());
        let refused = unpinned_images(&hostile);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].error, Rejection::TooDeep);
        assert_eq!(refused[0].found.path, vec!["a"; MAX_DEPTH + 1].join("."));
        // Hostile depth costs bounded work and one finding.
        let mut v = json!({"containers": [{"image": "x"}]});
        for _ in 0..1_000 {
            v = json!({ "a": v });
        }
        assert_eq!(unpinned_images(&v).len(), 1);
        // Arrays count as levels too; a scalar or an empty value below the limit hides nothing.
        let mut v = json!([{"containers": [{"image": "x"}]}]);
        for _ in 0..200 {
            v = json!([v]);
        }
        assert_eq!(unpinned_images(&v)[0].error, Rejection::TooDeep);
        for leaf in [json!("leaf"), json!({}), json!([])] {
            let mut v = leaf;
            for _ in 0..(MAX_DEPTH + 5) {
                v = json!({ "a": v });
            }
            let refused = unpinned_images(&v);
            assert_eq!(
                refused.len(),
                1,
                "the levels above the leaf are objects that could hide one"
            );
        }
    }

    #[test]
    fn a_container_entry_that_is_not_an_object_fails_closed() {
        let v =
            json!({"kind": "Pod", "spec": {"containers": ["nginx:latest", {"name": "ok", "image": PINNED}]}});
        let refused = unpinned_images(&v);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].error, Rejection::NotAContainer);
        assert_eq!(refused[0].found.path, "spec.containers[0]");
    }
}
