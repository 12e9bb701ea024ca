//! End-to-end against a real cluster with Knative Serving (kind or k3d). Not part of CI: no API server
//! can run on the project machine. Run:
//!
//! ```sh
//! KNEXT_E2E_KUBECONFIG=$HOME/.kube/config \
//! KNEXT_E2E_IMAGE=registry.example/hello@sha256:<64 hex> \
//!   cargo test --test e2e -- --ignored --test-threads=1
//! ```
//!
//! `KNEXT_E2E_IMAGE` is a digest-pinned image that serves HTTP 200 on `/api/health` at `$PORT`
//! (Knative's helloworld-go does, pinned by digest). Each test installs the NextApp CRD (server-side
//! apply), creates a namespace of its own, runs `knext operator --namespace <it>` from this build, and
//! deletes the namespace at the end.

#![cfg(feature = "operator")]
#![allow(clippy::unwrap_used, clippy::panic)]

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use knext::api::NextApp;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;

const NEEDS: &str =
    "needs a cluster with Knative: KNEXT_E2E_KUBECONFIG=... cargo test --test e2e -- --ignored";

struct Cluster {
    client: Client,
    namespace: String,
    operator: Child,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.operator.kill();
        let _ = self.operator.wait();
        let (client, ns) = (self.client.clone(), self.namespace.clone());
        // Best effort: the namespace (and everything in it) goes.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let _ = Api::<Namespace>::all(client)
                    .delete(&ns, &DeleteParams::default())
                    .await;
            });
        })
        .join();
    }
}

fn kubeconfig_path() -> String {
    std::env::var("KNEXT_E2E_KUBECONFIG").unwrap_or_else(|_| panic!("set KNEXT_E2E_KUBECONFIG ({NEEDS})"))
}

fn image() -> String {
    std::env::var("KNEXT_E2E_IMAGE")
        .unwrap_or_else(|_| panic!("set KNEXT_E2E_IMAGE to a digest-pinned image serving 200 on /api/health"))
}

async fn setup(test: &str) -> Cluster {
    let path = kubeconfig_path();
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&path).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = Client::try_from(config).unwrap();
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    crds.patch(
        "nextapps.apps.kn-next.dev",
        &PatchParams::apply("knext-e2e").force(),
        &Patch::Apply(knext::api::crd::nextapp_crd()),
    )
    .await
    .unwrap();
    wait(Duration::from_secs(60), "the CRD to be established", || async {
        crds.get("nextapps.apps.kn-next.dev")
            .await
            .ok()
            .and_then(|c| c.status)
            .is_some_and(|s| {
                s.conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            })
    })
    .await;
    let namespace = format!("knext-e2e-{test}-{}", std::process::id());
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": namespace, "labels": {"knext.dev/e2e": "true"}}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let free = support::fake_api::free_addr;
    let operator = Command::new(env!("CARGO_BIN_EXE_knext"))
        .args([
            "operator",
            "--namespace",
            &namespace,
            &format!("--metrics-addr={}", free()),
            &format!("--health-addr={}", free()),
        ])
        .env("KUBECONFIG", &path)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Cluster {
        client,
        namespace,
        operator,
    }
}

async fn wait<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn app(name: &str, image: &str, network_policy: bool) -> serde_json::Value {
    json!({
        "apiVersion": "apps.kn-next.dev/v1alpha1",
        "kind": "NextApp",
        "metadata": {"name": name},
        "spec": {"image": image, "security": {"networkPolicy": network_policy}},
    })
}

impl Cluster {
    fn apps(&self) -> Api<NextApp> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn ksvcs(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            &self.namespace,
            &knext::operator::reconcile::knative_service_resource(),
        )
    }

    async fn apply(&self, doc: &serde_json::Value) {
        let name = doc["metadata"]["name"].as_str().unwrap();
        self.apps()
            .patch(name, &PatchParams::apply("knext-e2e").force(), &Patch::Apply(doc))
            .await
            .unwrap();
    }

    async fn condition(&self, name: &str, type_: &str) -> Option<(String, String)> {
        let app = self.apps().get(name).await.ok()?;
        let c = app.status?.conditions.into_iter().find(|c| c.type_ == type_)?;
        Some((c.status, c.reason))
    }
}

#[tokio::test]
#[ignore = "needs a cluster with Knative (KNEXT_E2E_KUBECONFIG)"]
async fn a_new_app_becomes_ready_with_a_url() {
    let c = setup("ready").await;
    c.apply(&app("hello", &image(), true)).await;
    wait(Duration::from_secs(300), "Ready=True", || async {
        c.condition("hello", "Ready")
            .await
            .is_some_and(|(s, _)| s == "True")
    })
    .await;
    let app = c.apps().get("hello").await.unwrap();
    let status = app.status.unwrap();
    assert!(status.url.is_some_and(|u| u.contains("hello")));
    assert!(status.observed_revision.is_some());
    assert!(c.ksvcs().get("hello").await.is_ok());
    assert!(
        Api::<ServiceAccount>::namespaced(c.client.clone(), &c.namespace)
            .get("hello-sa")
            .await
            .is_ok()
    );
}

#[tokio::test]
#[ignore = "needs a cluster with Knative (KNEXT_E2E_KUBECONFIG)"]
async fn unpinned_images_are_refused_at_admission_and_secret_literals_are_degraded() {
    let c = setup("unpinned").await;
    // The CRD's CEL rule accepts exactly the images the validator accepts: `:latest`, the all-zero
    // placeholder digest and a name with whitespace are refused by the API server outright.
    let zeros = format!("registry.example.com/web/app@sha256:{}", "0".repeat(64));
    let spaced = format!("registry.example.com/web/a pp@sha256:{}", "ab".repeat(32));
    for image in ["nginx:latest", zeros.as_str(), spaced.as_str()] {
        let refused = c
            .apps()
            .patch(
                "bad",
                &PatchParams::apply("knext-e2e").force(),
                &Patch::Apply(app("bad", image, true)),
            )
            .await;
        assert!(refused.is_err(), "admission accepted {image:?}");
    }
    // A URL with a password as a plain env value passes admission (the value rules are the
    // validator's); the operator's validator refuses it: Degraded=True, InvalidSpec, nothing applied.
    let mut doc = app("literal", &image(), true);
    doc["spec"]["env"] = json!({"REDIS_URL": "redis://app:hunter2@redis:6379/0"});
    c.apply(&doc).await;
    wait(
        Duration::from_secs(60),
        "Degraded=True with InvalidSpec",
        || async {
            c.condition("literal", "Degraded")
                .await
                .is_some_and(|(s, r)| s == "True" && r == "InvalidSpec")
        },
    )
    .await;
    assert_eq!(
        c.condition("literal", "Ready").await.map(|(s, _)| s).as_deref(),
        Some("False")
    );
    assert!(c.ksvcs().get_opt("literal").await.unwrap().is_none());
    let sas = Api::<ServiceAccount>::namespaced(c.client.clone(), &c.namespace);
    assert!(sas.get_opt("literal-sa").await.unwrap().is_none());
}

#[tokio::test]
#[ignore = "needs a cluster with Knative (KNEXT_E2E_KUBECONFIG)"]
async fn the_network_policy_follows_the_switch() {
    let c = setup("netpol").await;
    let nps = Api::<NetworkPolicy>::namespaced(c.client.clone(), &c.namespace);
    c.apply(&app("web", &image(), true)).await;
    wait(Duration::from_secs(60), "the NetworkPolicy", || async {
        nps.get_opt("web-allow-ingress").await.unwrap().is_some()
    })
    .await;
    c.apply(&app("web", &image(), false)).await;
    wait(Duration::from_secs(60), "the NetworkPolicy to go", || async {
        nps.get_opt("web-allow-ingress").await.unwrap().is_none()
    })
    .await;
    c.apply(&app("web", &image(), true)).await;
    wait(
        Duration::from_secs(60),
        "the NetworkPolicy to come back",
        || async { nps.get_opt("web-allow-ingress").await.unwrap().is_some() },
    )
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster with Knative (KNEXT_E2E_KUBECONFIG)"]
async fn deleting_the_app_removes_its_children() {
    let c = setup("delete").await;
    c.apply(&app("gone", &image(), true)).await;
    wait(Duration::from_secs(60), "the Knative Service", || async {
        c.ksvcs().get_opt("gone").await.unwrap().is_some()
    })
    .await;
    c.apps()
        .delete("gone", &DeleteParams::foreground())
        .await
        .unwrap();
    let sas = Api::<ServiceAccount>::namespaced(c.client.clone(), &c.namespace);
    let nps = Api::<NetworkPolicy>::namespaced(c.client.clone(), &c.namespace);
    wait(
        Duration::from_secs(120),
        "the children to be garbage-collected",
        || async {
            c.ksvcs().get_opt("gone").await.unwrap().is_none()
                && sas.get_opt("gone-sa").await.unwrap().is_none()
                && nps.get_opt("gone-allow-ingress").await.unwrap().is_none()
        },
    )
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster with Knative (KNEXT_E2E_KUBECONFIG)"]
async fn a_service_account_made_by_hand_is_not_taken_over_until_labelled_for_the_app() {
    let c = setup("ownership").await;
    let sas = Api::<ServiceAccount>::namespaced(c.client.clone(), &c.namespace);
    // No controller, no knext labels, a setting knext's ServiceAccount does not have.
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": "taken-sa"}, "automountServiceAccountToken": true,
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    c.apply(&app("taken", &image(), true)).await;
    wait(
        Duration::from_secs(60),
        "Degraded=True with OwnershipConflict",
        || async {
            c.condition("taken", "Degraded")
                .await
                .is_some_and(|(s, r)| s == "True" && r == "OwnershipConflict")
        },
    )
    .await;
    let sa = sas.get("taken-sa").await.unwrap();
    assert_eq!(sa.automount_service_account_token, Some(true), "taken over");
    assert!(sa.metadata.owner_references.is_none());
    assert!(c.ksvcs().get_opt("taken").await.unwrap().is_none());
    // Labelled for the app: adopted on the next look (every 60 s while in conflict).
    sas.patch(
        "taken-sa",
        &PatchParams::apply("knext-e2e-hand"),
        &Patch::Apply(json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "taken-sa", "labels": {
                "apps.kn-next.dev/app": "taken", "app.kubernetes.io/managed-by": "knext"}},
        })),
    )
    .await
    .unwrap();
    wait(Duration::from_secs(120), "the adoption", || async {
        c.ksvcs().get_opt("taken").await.unwrap().is_some()
            && sas
                .get("taken-sa")
                .await
                .is_ok_and(|sa| sa.automount_service_account_token == Some(false))
    })
    .await;
}

/// An app created with the reference operator's finalizer and a Redis cache: deleting it completes, its
/// keys are gone and another app's stay. The operator runs on this machine, so the Redis server does too
/// (`redis-server` on PATH); the app's pods never reach it, which does not matter here.
#[cfg(feature = "serve")]
#[tokio::test]
#[ignore = "needs a cluster with Knative (KNEXT_E2E_KUBECONFIG)"]
async fn deleting_an_app_with_the_finalizer_removes_its_redis_keys_and_completes() {
    let redis = support::serve::Redis::start();
    for key in ["cart:cache:/a", "cart:tag:posts", "cartography:cache:/a"] {
        let _: () = redis.cmd(&["SET", key, "1"]);
    }
    let c = setup("finalizer").await;
    let mut doc = app("cart", &image(), true);
    doc["metadata"]["finalizers"] = json!(["apps.kn-next.dev/external-cleanup"]);
    doc["spec"]["cache"] = json!({"provider": "redis", "url": redis.url(), "keyPrefix": "cart"});
    c.apply(&doc).await;
    wait(Duration::from_secs(60), "the Knative Service", || async {
        c.ksvcs().get_opt("cart").await.unwrap().is_some()
    })
    .await;
    c.apps().delete("cart", &DeleteParams::default()).await.unwrap();
    wait(Duration::from_secs(60), "the NextApp to be gone", || async {
        c.apps().get_opt("cart").await.unwrap().is_none()
    })
    .await;
    assert_eq!(redis.keys("*"), ["cartography:cache:/a"]);
}

/// A warm window that is open now raises min-scale; one that is closed does not.
#[tokio::test]
#[ignore = "needs a cluster with Knative (KNEXT_E2E_KUBECONFIG)"]
async fn an_open_warm_window_raises_min_scale() {
    let c = setup("warm").await;
    let mut doc = app("warm", &image(), true);
    // Open all day, every day (from 00:00 to 23:59 UTC), except during the last minute.
    doc["spec"]["scaling"] = json!({"minScale": 0, "maxScale": 5,
        "warmSchedule": [{"start": "0 0 * * *", "end": "59 23 * * *", "replicas": 2}]});
    c.apply(&doc).await;
    wait(Duration::from_secs(60), "min-scale 2", || async {
        c.ksvcs().get_opt("warm").await.unwrap().is_some_and(|k| {
            k.data
                .pointer("/spec/template/metadata/annotations/autoscaling.knative.dev~1min-scale")
                == Some(&json!("2"))
        })
    })
    .await;
}

/// `imagePrewarm` runs the `<app>-imgcache` DaemonSet until switched off, and says how far it got.
#[tokio::test]
#[ignore = "needs a cluster with Knative (KNEXT_E2E_KUBECONFIG)"]
async fn image_prewarm_runs_a_daemonset_until_switched_off() {
    use k8s_openapi::api::apps::v1::DaemonSet;
    let c = setup("prewarm").await;
    let daemonsets = Api::<DaemonSet>::namespaced(c.client.clone(), &c.namespace);
    let mut doc = app("pre", &image(), true);
    doc["spec"]["scaling"] = json!({"imagePrewarm": true});
    c.apply(&doc).await;
    wait(Duration::from_secs(300), "ImageCacheReady=True", || async {
        c.condition("pre", "ImageCacheReady")
            .await
            .is_some_and(|(s, r)| s == "True" && r == "Cached")
    })
    .await;
    assert!(daemonsets.get_opt("pre-imgcache").await.unwrap().is_some());
    doc["spec"]["scaling"] = json!({"imagePrewarm": false});
    c.apply(&doc).await;
    wait(Duration::from_secs(60), "the DaemonSet to go", || async {
        daemonsets.get_opt("pre-imgcache").await.unwrap().is_none()
            && c.condition("pre", "ImageCacheReady").await.is_none()
    })
    .await;
}

/// A pin to a Revision that does not exist becomes `PinnedRevisionNotFound` after two minutes.
#[tokio::test]
#[ignore = "needs a cluster with Knative (KNEXT_E2E_KUBECONFIG)"]
async fn a_pin_to_a_missing_revision_is_named_with_the_fix() {
    let c = setup("pin").await;
    let mut doc = app("pin", &image(), true);
    doc["spec"]["traffic"] = json!({"revisionName": "pin-99999"});
    c.apply(&doc).await;
    wait(Duration::from_secs(240), "PinnedRevisionNotFound", || async {
        c.condition("pin", "Ready")
            .await
            .is_some_and(|(s, r)| s == "False" && r == "PinnedRevisionNotFound")
    })
    .await;
}
