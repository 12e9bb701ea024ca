//! The image-prewarm DaemonSet `<app>-imgcache` of an app with `scaling.imagePrewarm: true`: one pod
//! per node, every taint tolerated, that runs the app image idle so that every node has it pulled
//! before Knative schedules a replica there (and the kubelet's image GC keeps it, as it is in use).
//!
//! No third image: the init container `stage-pin` runs knext's own digest-pinned image (`FROM
//! scratch`, a static `/knext`) and copies that binary into the emptyDir `pin` with `knext copy-self`;
//! the container `pin` runs the app image with `/knext-pin/knext pause` as its command, which sleeps
//! until SIGTERM. Both images are pinned: the app's by the validator, knext's by construction.
//!
//! A NetworkPolicy `<app>-imgcache` denies the pods all ingress and egress (unless
//! `security.networkPolicy` is false): the pause process needs no network, and the images are pulled by
//! the node's container runtime, which no NetworkPolicy governs.
//!
//! The pods run as the app's ServiceAccount `<app>-sa` with token automount off: the ServiceAccount
//! admission plugin adds that ServiceAccount's `imagePullSecrets` to each pod at creation, so the pods
//! pull the app image with the app's own credentials, also after someone changes them, with nothing
//! copied here.
//!
//! Shared with `build.rs`; pure: no I/O, clock or randomness, `BTreeMap` only.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, ExecAction, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, Toleration, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicySpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::RenderOptions;
use super::app::{
    hardened_security_context, metadata, network_policy_enabled, runtime_default, service_account_name,
};
use crate::api::{NextAppSpec, imgcache, labels, operator};
use crate::policy::ValidatedApp;

/// `app.kubernetes.io/component` of the DaemonSet and its pods.
pub const COMPONENT: &str = "image-prewarm";
/// Name of the emptyDir volume the knext binary is staged into.
const VOLUME: &str = "pin";
/// Largest the emptyDir may grow: the knext binary, with room to spare.
const VOLUME_SIZE_LIMIT: &str = "64Mi";
/// Name of the init container that stages the knext binary.
pub const STAGE_CONTAINER: &str = "stage-pin";
/// Name of the container that runs the app image idle.
pub const PIN_CONTAINER: &str = "pin";
/// Seconds between the probes (they exist for the conformance checks; the process cannot hang).
const READINESS_PERIOD_SECONDS: i32 = 60;
const LIVENESS_PERIOD_SECONDS: i32 = 300;
/// Seconds a probe may take: an exec under the 10m CPU limit is slow to start.
const PROBE_TIMEOUT_SECONDS: i32 = 10;

/// Name of the app's image-prewarm DaemonSet.
pub fn image_cache_name(app: &str) -> String {
    format!("{app}-imgcache")
}

/// Whether the DaemonSet is rendered: only when `scaling.imagePrewarm` is true.
pub fn image_prewarm_enabled(spec: &NextAppSpec) -> bool {
    spec.scaling.as_ref().and_then(|s| s.image_prewarm) == Some(true)
}

/// Whether an object is one of an app's image-prewarm objects (the DaemonSet or its NetworkPolicy):
/// it carries the `apps.kn-next.dev/imgcache` label.
pub fn is_image_prewarm(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .is_some_and(|l| l.contains_key(labels::IMGCACHE))
}

/// The metadata of an image-prewarm object named `<app>-imgcache`, and the selector of its pods.
fn prewarm_metadata(
    app: &ValidatedApp<'_>,
    opts: &RenderOptions<'_>,
) -> (ObjectMeta, BTreeMap<String, String>) {
    let mut meta = metadata(app, opts, image_cache_name(app.name()), COMPONENT);
    let selector = BTreeMap::from([(labels::IMGCACHE.to_owned(), app.name().to_owned())]);
    let mut labels = meta.labels.take().unwrap_or_default();
    labels.extend(selector.clone());
    meta.labels = Some(labels);
    (meta, selector)
}

/// The NetworkPolicy `<app>-imgcache`: no ingress and no egress for the image-prewarm pods. `None`
/// unless `scaling.imagePrewarm` is true, and when `security.networkPolicy` is false.
pub fn image_cache_network_policy(app: &ValidatedApp<'_>, opts: &RenderOptions<'_>) -> Option<NetworkPolicy> {
    let spec = app.spec();
    if !image_prewarm_enabled(spec) || !network_policy_enabled(spec) {
        return None;
    }
    let (meta, selector) = prewarm_metadata(app, opts);
    Some(NetworkPolicy {
        metadata: meta,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            }),
            policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
            ..Default::default()
        }),
    })
}

/// The image-prewarm DaemonSet `<app>-imgcache`, or `None` unless `scaling.imagePrewarm` is true.
///
/// Its labels are those of the app's other children (component `image-prewarm`) plus
/// `apps.kn-next.dev/imgcache: <app>`, which alone is the selector; the pod template carries the same
/// labels. The init container's image is [`RenderOptions::knext_image`].
pub fn image_cache(app: &ValidatedApp<'_>, opts: &RenderOptions<'_>) -> Option<DaemonSet> {
    let spec = app.spec();
    if !image_prewarm_enabled(spec) {
        return None;
    }
    let (meta, selector) = prewarm_metadata(app, opts);
    let pod_labels = meta.labels.clone();

    let security = spec.security.as_ref();
    let run_as_user = security
        .and_then(|s| s.run_as_user)
        .unwrap_or(imgcache::RUN_AS_ID);
    let run_as_group = security
        .and_then(|s| s.run_as_group)
        .unwrap_or(imgcache::RUN_AS_ID);
    let mount = |read_only: bool| VolumeMount {
        name: VOLUME.to_owned(),
        mount_path: imgcache::PIN_DIR.to_owned(),
        read_only: read_only.then_some(true),
        ..Default::default()
    };
    let stage = Container {
        name: STAGE_CONTAINER.to_owned(),
        image: Some(opts.knext_image().to_owned()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        command: Some(
            [operator::BINARY, imgcache::COPY_SELF, imgcache::PIN_BINARY]
                .map(str::to_owned)
                .to_vec(),
        ),
        resources: Some(resources()),
        security_context: Some(hardened_security_context()),
        volume_mounts: Some(vec![mount(false)]),
        ..Default::default()
    };
    let pin = Container {
        name: PIN_CONTAINER.to_owned(),
        image: Some(spec.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        // NB: a command without args: the image's own ENTRYPOINT and CMD are both ignored.
        command: Some(
            [imgcache::PIN_BINARY, imgcache::PAUSE]
                .map(str::to_owned)
                .to_vec(),
        ),
        resources: Some(resources()),
        readiness_probe: Some(probe(READINESS_PERIOD_SECONDS)),
        liveness_probe: Some(probe(LIVENESS_PERIOD_SECONDS)),
        security_context: Some(hardened_security_context()),
        volume_mounts: Some(vec![mount(true)]),
        ..Default::default()
    };
    Some(DaemonSet {
        metadata: meta,
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            },
            revision_history_limit: Some(2),
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_unavailable: Some(IntOrString::String("10%".to_owned())),
                    ..Default::default()
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: pod_labels,
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    automount_service_account_token: Some(false),
                    service_account_name: Some(service_account_name(app.name())),
                    enable_service_links: Some(false),
                    termination_grace_period_seconds: Some(1),
                    // NB: every taint is tolerated, also the one that keeps Linux pods off Windows
                    // nodes; both images are Linux images.
                    node_selector: Some(BTreeMap::from([(
                        "kubernetes.io/os".to_owned(),
                        "linux".to_owned(),
                    )])),
                    tolerations: Some(vec![Toleration {
                        operator: Some("Exists".to_owned()),
                        ..Default::default()
                    }]),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(run_as_user),
                        run_as_group: Some(run_as_group),
                        seccomp_profile: Some(runtime_default()),
                        ..Default::default()
                    }),
                    init_containers: Some(vec![stage]),
                    containers: vec![pin],
                    volumes: Some(vec![Volume {
                        name: VOLUME.to_owned(),
                        empty_dir: Some(EmptyDirVolumeSource {
                            size_limit: Some(Quantity(VOLUME_SIZE_LIMIT.to_owned())),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    })
}

/// What copying a binary and sleeping need, and limits well above that.
fn resources() -> ResourceRequirements {
    let q = |cpu: &str, memory: &str| {
        BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.to_owned())),
            ("memory".to_owned(), Quantity(memory.to_owned())),
        ])
    };
    ResourceRequirements {
        requests: Some(q("1m", "16Mi")),
        limits: Some(q("10m", "32Mi")),
        ..Default::default()
    }
}

/// `knext --version` from the staged binary: it runs in the app image's container, and exits 0.
fn probe(period_seconds: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some([imgcache::PIN_BINARY, "--version"].map(str::to_owned).to_vec()),
        }),
        period_seconds: Some(period_seconds),
        timeout_seconds: Some(PROBE_TIMEOUT_SECONDS),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::NextApp;
    use crate::render::Manifest;

    const IMAGE: &str =
        "ghcr.io/acme/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const KNEXT: &str =
        "ghcr.io/kn-next/knext@sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn mk_app(extra: &str) -> NextApp {
        let spec: NextAppSpec = serde_yaml::from_str(&format!("image: {IMAGE}\n{extra}")).unwrap();
        let mut app = NextApp::new("web", spec);
        app.metadata.namespace = Some("shop".into());
        app
    }

    fn rendered(extra: &str, opts: &RenderOptions<'_>) -> Option<DaemonSet> {
        let app = mk_app(extra);
        let (valid, _) = crate::policy::validate(&app).unwrap();
        let all = crate::render::app(&valid, opts);
        let from_app = all.iter().find_map(|m| match m {
            Manifest::DaemonSet(d) => Some(d.as_ref().clone()),
            _ => None,
        });
        assert_eq!(from_app, image_cache(&valid, opts));
        from_app
    }

    /// The image-prewarm NetworkPolicy `render::app` renders, checked against [`image_cache_network_policy`].
    fn rendered_policy(extra: &str) -> Option<NetworkPolicy> {
        let app = mk_app(extra);
        let (valid, _) = crate::policy::validate(&app).unwrap();
        let opts = RenderOptions::default();
        let mut policies: Vec<NetworkPolicy> = crate::render::app(&valid, &opts)
            .into_iter()
            .filter_map(|m| match m {
                Manifest::NetworkPolicy(p) if is_image_prewarm(&p.metadata) => Some(p),
                _ => None,
            })
            .collect();
        assert!(policies.len() <= 1);
        let policy = policies.pop();
        assert_eq!(policy, image_cache_network_policy(&valid, &opts));
        policy
    }

    fn pod(ds: &DaemonSet) -> &PodSpec {
        ds.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
    }

    #[test]
    fn no_daemon_set_unless_image_prewarm_is_true() {
        let opts = RenderOptions::default();
        assert_eq!(rendered("", &opts), None);
        assert_eq!(rendered("scaling:\n  minScale: 1\n", &opts), None);
        assert_eq!(rendered("scaling:\n  imagePrewarm: false\n", &opts), None);
        assert!(rendered("scaling:\n  imagePrewarm: true\n", &opts).is_some());
    }

    #[test]
    fn the_pods_get_a_deny_all_network_policy_unless_network_policies_are_off() {
        assert_eq!(rendered_policy(""), None);
        assert_eq!(rendered_policy("scaling:\n  imagePrewarm: false\n"), None);
        assert_eq!(
            rendered_policy("scaling:\n  imagePrewarm: true\nsecurity:\n  networkPolicy: false\n"),
            None
        );
        let policy = rendered_policy("scaling:\n  imagePrewarm: true\n").unwrap();
        let ds = rendered("scaling:\n  imagePrewarm: true\n", &RenderOptions::default()).unwrap();
        assert_eq!(policy.metadata, ds.metadata, "same name, namespace and labels");
        let spec = policy.spec.unwrap();
        assert_eq!(spec.pod_selector, Some(ds.spec.unwrap().selector));
        assert_eq!(
            spec.policy_types,
            Some(vec!["Ingress".to_owned(), "Egress".to_owned()])
        );
        assert_eq!((spec.ingress, spec.egress), (None, None), "nothing allowed");
    }

    #[test]
    fn the_image_prewarm_objects_come_last_with_file_stems_of_their_own() {
        let app = mk_app("scaling:\n  imagePrewarm: true\n");
        let (valid, _) = crate::policy::validate(&app).unwrap();
        let stems: Vec<_> = crate::render::app(&valid, &RenderOptions::default())
            .iter()
            .map(Manifest::file_stem)
            .collect();
        assert_eq!(
            stems,
            [
                "knative-service",
                "service-account",
                "network-policy",
                "image-prewarm-network-policy",
                "image-prewarm-daemon-set"
            ]
        );
    }

    #[test]
    fn the_init_container_stages_knext_from_knexts_image_and_the_app_image_runs_it_idle() {
        let opts = RenderOptions {
            knext_image: Some(KNEXT),
            ..RenderOptions::default()
        };
        let ds = rendered("scaling:\n  imagePrewarm: true\n", &opts).unwrap();
        assert_eq!(ds.metadata.name.as_deref(), Some("web-imgcache"));
        assert_eq!(ds.metadata.namespace.as_deref(), Some("shop"));
        let pod = pod(&ds);
        let init = &pod.init_containers.as_ref().unwrap()[0];
        assert_eq!(init.image.as_deref(), Some(KNEXT));
        assert_eq!(
            init.command.as_deref().unwrap(),
            ["/knext", "copy-self", "/knext-pin/knext"]
        );
        let pin = &pod.containers[0];
        assert_eq!(pin.image.as_deref(), Some(IMAGE));
        assert_eq!(pin.command.as_deref().unwrap(), ["/knext-pin/knext", "pause"]);
        assert_eq!(pin.args, None);
        assert_eq!(pin.volume_mounts.as_ref().unwrap()[0].read_only, Some(true));
        assert_eq!(init.volume_mounts.as_ref().unwrap()[0].read_only, None);
        assert_eq!(pod.service_account_name.as_deref(), Some("web-sa"));
        assert_eq!(pod.image_pull_secrets, None, "the ServiceAccount's apply");
        // Every image of the object passes the pin gate.
        let json = serde_json::to_value(&ds).unwrap();
        assert_eq!(crate::policy::images::find_images(&json).0.len(), 2);
        assert_eq!(crate::policy::images::unpinned_images(&json), []);
    }

    #[test]
    fn the_pin_gate_names_an_unpinned_knext_image() {
        let opts = RenderOptions {
            knext_image: Some("ghcr.io/kn-next/knext:0.1.0"),
            ..RenderOptions::default()
        };
        let ds = rendered("scaling:\n  imagePrewarm: true\n", &opts).unwrap();
        let json = crate::render::Manifest::DaemonSet(Box::new(ds))
            .to_json()
            .unwrap();
        let bad = crate::policy::images::unpinned_images(&json);
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].found.container.as_deref(), Some(STAGE_CONTAINER));
        assert_eq!(bad[0].found.path, "spec.template.spec.initContainers[0].image");
    }

    #[test]
    fn without_an_image_option_the_init_container_uses_the_image_knext_was_built_with() {
        let ds = rendered("scaling:\n  imagePrewarm: true\n", &RenderOptions::default()).unwrap();
        let init = &pod(&ds).init_containers.as_ref().unwrap()[0];
        assert_eq!(
            init.image.as_deref(),
            Some(crate::install::DEFAULT_OPERATOR_IMAGE)
        );
        assert_eq!(
            crate::render::BUILT_KNEXT_IMAGE,
            crate::install::DEFAULT_OPERATOR_IMAGE
        );
    }

    #[test]
    fn the_selector_is_the_imgcache_label_and_the_pods_carry_the_apps_labels() {
        let ds = rendered(
            "scaling:\n  imagePrewarm: true\npreview:\n  enabled: true\n  prId: \"42\"\n",
            &RenderOptions::default(),
        )
        .unwrap();
        let spec = ds.spec.as_ref().unwrap();
        assert_eq!(
            spec.selector.match_labels,
            Some(BTreeMap::from([(
                "apps.kn-next.dev/imgcache".to_owned(),
                "web".to_owned()
            )]))
        );
        let labels = ds.metadata.labels.clone().unwrap();
        assert_eq!(
            spec.template.metadata.as_ref().unwrap().labels,
            Some(labels.clone())
        );
        for (k, v) in [
            ("apps.kn-next.dev/app", "web"),
            ("apps.kn-next.dev/imgcache", "web"),
            ("app.kubernetes.io/component", "image-prewarm"),
            ("app.kubernetes.io/managed-by", "knext"),
            ("app.kubernetes.io/name", "web"),
            ("app.kubernetes.io/part-of", "web"),
            ("environment", "preview"),
            ("pr-id", "42"),
        ] {
            assert_eq!(labels.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert_eq!(labels.len(), 8);
    }

    #[test]
    fn the_owner_reference_is_set_only_for_the_operator() {
        let plain = rendered("scaling:\n  imagePrewarm: true\n", &RenderOptions::default()).unwrap();
        assert_eq!(plain.metadata.owner_references, None);
        let owned = rendered(
            "scaling:\n  imagePrewarm: true\n",
            &RenderOptions {
                owner_uid: Some("uid-1"),
                ..RenderOptions::default()
            },
        )
        .unwrap();
        let refs = owned.metadata.owner_references.unwrap();
        assert_eq!(refs.len(), 1);
        assert_eq!(
            (refs[0].kind.as_str(), refs[0].name.as_str(), refs[0].uid.as_str()),
            ("NextApp", "web", "uid-1")
        );
        assert_eq!(refs[0].controller, Some(true));
    }

    #[test]
    fn the_pods_run_as_the_apps_ids_when_set_else_as_nonroot() {
        let ids = |extra: &str| {
            let ds = rendered(
                &format!("scaling:\n  imagePrewarm: true\n{extra}"),
                &RenderOptions::default(),
            )
            .unwrap();
            let sc = pod(&ds).security_context.clone().unwrap();
            assert_eq!(sc.run_as_non_root, Some(true));
            assert_eq!(sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
            (sc.run_as_user, sc.run_as_group)
        };
        assert_eq!(ids(""), (Some(65532), Some(65532)));
        assert_eq!(
            ids("security:\n  runAsUser: 20000\n  runAsGroup: 20001\n"),
            (Some(20000), Some(20001))
        );
        assert_eq!(ids("security:\n  runAsUser: 20000\n"), (Some(20000), Some(65532)));
    }

    #[test]
    fn both_containers_are_locked_down_and_bounded() {
        let ds = rendered("scaling:\n  imagePrewarm: true\n", &RenderOptions::default()).unwrap();
        let pod = pod(&ds);
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.enable_service_links, Some(false));
        assert_eq!(pod.termination_grace_period_seconds, Some(1));
        assert_eq!(
            pod.tolerations.as_ref().unwrap()[0].operator.as_deref(),
            Some("Exists")
        );
        assert_eq!(
            pod.node_selector,
            Some(BTreeMap::from([(
                "kubernetes.io/os".to_owned(),
                "linux".to_owned()
            )]))
        );
        let containers = pod.init_containers.iter().flatten().chain(&pod.containers);
        for c in containers {
            let sc = c.security_context.as_ref().unwrap();
            assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
            assert_eq!(sc.read_only_root_filesystem, Some(true));
            assert_eq!(sc.run_as_non_root, Some(true));
            assert_eq!(
                sc.capabilities.as_ref().unwrap().drop,
                Some(vec!["ALL".to_owned()])
            );
            let r = c.resources.as_ref().unwrap();
            assert!(r.limits.as_ref().unwrap().contains_key("cpu"));
            assert!(r.limits.as_ref().unwrap().contains_key("memory"));
            assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
        }
    }
}
