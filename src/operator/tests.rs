//! The reconciler against kube's tower-test mock API server (controller-rs's `ApiServerVerifier`
//! pattern): every request the operator makes is asserted in order — method, URL (server-side apply
//! with `fieldManager=knext-operator&force=true`) and body — and answered; a request that is not
//! expected, or one missing, fails the test.
//!
//! A valid app's pass: [validator warnings as events, once per generation] → metadata GETs of the
//! three child names → server-side applies of what may be applied → [delete of the NetworkPolicy] →
//! [GET of the ready Revision] → [conflict events, once] → [status, when it changed].

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::client::Body;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::metrics::Metrics;
use super::reconcile::{self, Context};
use super::status;
use crate::api::NextApp;
use crate::render::{self, RenderOptions};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

const UID: &str = "6c1e0b5e-1d2a-4b7e-9d65-0a4c3e2f1b11";
const IMAGE: &str =
    "ghcr.io/acme/shop@sha256:3f1c2b8a9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c";
const SSA: &str = "?&force=true&fieldManager=knext-operator";

fn now() -> Timestamp {
    Timestamp::from_second(1_795_950_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn app(spec: Value) -> NextApp {
    let mut doc = json!({
        "apiVersion": "apps.kn-next.dev/v1alpha1",
        "kind": "NextApp",
        "metadata": {"name": "shop", "namespace": "web", "uid": UID, "generation": 2, "resourceVersion": "7"},
        "spec": {"image": IMAGE},
    });
    if let (Some(s), Some(extra)) = (doc["spec"].as_object_mut(), spec.as_object()) {
        s.extend(extra.clone());
    }
    serde_json::from_value(doc).unwrap()
}

fn context() -> (Arc<Context>, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let mut ctx = Context::new(client, Arc::new(Metrics::new()), Some("test-pod".into()));
    ctx.now = now;
    (Arc::new(ctx), handle)
}

/// The objects the renderers produce for `app`, with owner references, as JSON.
fn rendered(app: &NextApp) -> Vec<Value> {
    let (valid, _) = crate::policy::validate(app).unwrap();
    render::app(
        &valid,
        &RenderOptions {
            owner_uid: Some(UID),
            now: Some(now()),
            ..RenderOptions::default()
        },
    )
    .iter()
    .map(|m| m.to_json().unwrap())
    .collect()
}

/// The next request: asserts method and URL, returns the JSON body (Null when empty).
async fn expect(
    handle: &mut Handle,
    method: Method,
    url: &str,
) -> (Value, tower_test::mock::SendResponse<Response<Body>>) {
    let (_, body, send) = expect_request(handle, method, url).await;
    (body, send)
}

/// [`expect`], also returning the request's `Accept` header.
async fn expect_request(
    handle: &mut Handle,
    method: Method,
    url: &str,
) -> (String, Value, tower_test::mock::SendResponse<Response<Body>>) {
    let (request, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {method} {url}"))
        .unwrap_or_else(|| panic!("no request; expected {method} {url}"));
    assert_eq!(request.method(), method, "{}", request.uri());
    assert_eq!(request.uri().to_string(), url);
    let accept = request
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = request.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (accept, body, send)
}

fn reply(send: tower_test::mock::SendResponse<Response<Body>>, status: StatusCode, body: &Value) {
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    );
}

fn not_found(send: tower_test::mock::SendResponse<Response<Body>>) {
    reply(
        send,
        StatusCode::NOT_FOUND,
        &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
    );
}

const KSVC_URL: &str = "/apis/serving.knative.dev/v1/namespaces/web/services/shop";
const SA_URL: &str = "/api/v1/namespaces/web/serviceaccounts/shop-sa";
const NP_URL: &str = "/apis/networking.k8s.io/v1/namespaces/web/networkpolicies/shop-allow-ingress";

/// The metadata of an object found at a child's name: `labels` and, if `controller_uid` is given, a
/// controller reference with that UID (to a NextApp `shop` when it is [`UID`], else to a Deployment).
fn found(uid: &str, labels: Value, controller_uid: Option<&str>) -> Value {
    let owners = match controller_uid {
        Some(UID) => json!([{"apiVersion": "apps.kn-next.dev/v1alpha1", "kind": "NextApp", "name": "shop",
                             "uid": UID, "controller": true, "blockOwnerDeletion": true}]),
        Some(other) => json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "billing",
                               "uid": other, "controller": true}]),
        None => json!([]),
    };
    json!({"uid": uid, "labels": labels, "ownerReferences": owners, "resourceVersion": RV})
}

/// The `resourceVersion` of every child the mock holds or applies: an apply answered with the one
/// inspected changed nothing.
const RV: &str = "100";

/// Expects the Normal event `Reconciled` naming what a pass changed; returns its note.
async fn expect_reconciled(handle: &mut Handle) -> String {
    let (event, send) = expect(
        handle,
        Method::POST,
        "/apis/events.k8s.io/v1/namespaces/web/events?",
    )
    .await;
    assert_eq!(event["type"], "Normal");
    assert_eq!(event["reason"], "Reconciled");
    reply(send, StatusCode::CREATED, &event);
    event["note"].as_str().unwrap().to_owned()
}

/// Expects the metadata-only GETs of the three child names, in render order, and answers each with
/// `PartialObjectMetadata` carrying the given metadata, or 404 for `None`.
async fn expect_inspections(handle: &mut Handle, [ksvc, sa, np]: [Option<Value>; 3]) {
    for (url, meta) in [(KSVC_URL, ksvc), (SA_URL, sa), (NP_URL, np)] {
        expect_metadata(handle, url, meta).await;
    }
}

/// Expects the metadata GET of `url` and answers with `meta` or 404.
async fn expect_metadata(handle: &mut Handle, url: &str, meta: Option<Value>) {
    // From the API server's watch cache (resourceVersion=0), not a quorum read.
    let url = format!("{url}?&resourceVersion=0");
    let (accept, body, send) = expect_request(handle, Method::GET, &url).await;
    assert!(
        accept.contains("as=PartialObjectMetadata"),
        "metadata only: {accept}"
    );
    assert_eq!(body, Value::Null);
    match meta {
        None => not_found(send),
        Some(meta) => reply(
            send,
            StatusCode::OK,
            &json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": meta}),
        ),
    }
}

/// Expects the server-side applies of a valid app's namespaced children, but not of the kinds in
/// `withheld`, and answers each with the body, the Knative Service with `ksvc_status` added. Returns the
/// applied bodies.
async fn expect_namespaced_applies(
    handle: &mut Handle,
    app: &NextApp,
    ksvc_status: Value,
    withheld: &[&str],
) -> Vec<Value> {
    let mut want = rendered(app);
    // The ServiceAccount first: the Knative Service's pods name it.
    want.sort_by_key(|o| match o["kind"].as_str() {
        Some("ServiceAccount") => 0,
        Some("Service") => 1,
        _ => 2,
    });
    let mut got = Vec::new();
    for object in want.iter().filter(|o| {
        let kind = o["kind"].as_str().unwrap();
        kind != "ClusterImagePolicy"
            && !withheld.contains(&kind)
            && o["metadata"]["labels"].get("apps.kn-next.dev/imgcache").is_none()
    }) {
        let url = match object["kind"].as_str().unwrap() {
            "Service" => format!("{KSVC_URL}{SSA}"),
            "ServiceAccount" => format!("{SA_URL}{SSA}"),
            "NetworkPolicy" => format!("{NP_URL}{SSA}"),
            other => panic!("unexpected kind {other}"),
        };
        let (body, send) = expect(handle, Method::PATCH, &url).await;
        assert_eq!(&body, object, "the applied body is the renderer's output");
        let owner = &body["metadata"]["ownerReferences"][0];
        assert_eq!(owner["uid"], UID);
        assert_eq!(owner["controller"], true);
        assert_eq!(owner["kind"], "NextApp");
        let mut live = body.clone();
        live["metadata"]["generation"] = json!(1);
        live["metadata"]["resourceVersion"] = json!(RV);
        if body["kind"] == "Service" && !ksvc_status.is_null() {
            live["status"] = ksvc_status.clone();
        }
        reply(send, StatusCode::OK, &live);
        got.push(body);
    }
    got
}

/// [`expect_namespaced_applies`], then the ClusterImagePolicy step of an app whose policy is absent:
/// the LIST of its name when the app has a signature or an unobserved generation, and the apply of
/// the rendered policy when it has a signature.
async fn expect_applies_except(
    handle: &mut Handle,
    app: &NextApp,
    ksvc_status: Value,
    withheld: &[&str],
) -> Vec<Value> {
    let mut got = expect_namespaced_applies(handle, app, ksvc_status, withheld).await;
    if looks_for_policy(app) {
        expect_policy_list(handle, None).await;
    }
    if let Some(policy) = rendered_policy(app) {
        got.push(expect_policy_apply(handle, &policy).await);
    }
    got
}

const CIP_URL: &str = "/apis/policy.sigstore.dev/v1beta1/clusterimagepolicies/knext.web.shop";
const CIP_LIST_URL: &str =
    "/apis/policy.sigstore.dev/v1beta1/clusterimagepolicies?&fieldSelector=metadata.name%3Dknext.web.shop";

/// Whether a pass LISTs the app's ClusterImagePolicy: it has a signature, or its spec changed since
/// the status observed it.
fn looks_for_policy(app: &NextApp) -> bool {
    let observed = app.status.as_ref().and_then(|s| s.observed_generation);
    rendered_policy(app).is_some()
        || !matches!((observed, app.metadata.generation), (Some(o), Some(g)) if o >= g)
}

/// The rendered ClusterImagePolicy of `app`, if it has a signature.
fn rendered_policy(app: &NextApp) -> Option<Value> {
    rendered(app)
        .into_iter()
        .find(|o| o["kind"] == "ClusterImagePolicy")
}

/// Expects the metadata-only LIST of `knext.web.shop` and answers with `found` (metadata) or nothing.
async fn expect_policy_list(handle: &mut Handle, found: Option<Value>) {
    let (accept, body, send) = expect_request(handle, Method::GET, CIP_LIST_URL).await;
    assert!(
        accept.contains("as=PartialObjectMetadataList"),
        "metadata only: {accept}"
    );
    assert_eq!(body, Value::Null);
    let items: Vec<Value> = found
        .into_iter()
        .map(|m| json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": m}))
        .collect();
    reply(
        send,
        StatusCode::OK,
        &json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {}, "items": items}),
    );
}

/// Expects the server-side apply of the rendered policy and answers with it; returns the body.
async fn expect_policy_apply(handle: &mut Handle, policy: &Value) -> Value {
    let (body, send) = expect(handle, Method::PATCH, &format!("{CIP_URL}{SSA}")).await;
    assert_eq!(&body, policy, "the applied body is the renderer's output");
    assert!(body["metadata"].get("ownerReferences").is_none());
    assert!(body["metadata"].get("namespace").is_none());
    assert_eq!(body["metadata"]["annotations"]["apps.kn-next.dev/owner-uid"], UID);
    reply(send, StatusCode::OK, &body);
    body
}

/// `app` with the status of a pass that found its Knative Service Ready (revision `shop-00001`, active).
fn with_ready_status(mut app: NextApp) -> NextApp {
    let observed = status::Observed {
        knative: serde_json::from_value(ready_ksvc()).ok(),
        revision_active: Some(true),
        knative_generation: Some(1),
        ..status::Observed::default()
    };
    app.status = Some(status::applied(&app, &observed, now()).status);
    app
}

/// Inspections of an app whose children exist and are its own: `None` entries of `holders` become
/// objects this NextApp controls (with [`RV`], so applying them again changes nothing).
fn steady(holders: [Option<Value>; 3]) -> [Option<Value>; 3] {
    let mut i = 0;
    holders.map(|h| {
        i += 1;
        h.or_else(|| Some(found(&format!("child-uid-{i}"), knext_labels(), Some(UID))))
    })
}

/// Expects the inspections (every name free) and the server-side applies of a valid app.
async fn expect_applies(handle: &mut Handle, app: &NextApp, ksvc_status: Value) -> Vec<Value> {
    expect_inspections(handle, [None, None, None]).await;
    expect_applies_except(handle, app, ksvc_status, &[]).await
}

/// Expects a Warning event about the NextApp and answers it; returns the event.
async fn expect_event(handle: &mut Handle) -> Value {
    let (event, send) = expect(
        handle,
        Method::POST,
        "/apis/events.k8s.io/v1/namespaces/web/events?",
    )
    .await;
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["regarding"]["name"], "shop");
    assert_eq!(event["regarding"]["uid"], UID);
    reply(send, StatusCode::CREATED, &event);
    event
}

async fn expect_status(handle: &mut Handle) -> Value {
    let (body, send) = expect(
        handle,
        Method::PATCH,
        &format!("/apis/apps.kn-next.dev/v1alpha1/namespaces/web/nextapps/shop/status{SSA}"),
    )
    .await;
    assert_eq!(body["apiVersion"], "apps.kn-next.dev/v1alpha1");
    assert_eq!(body["kind"], "NextApp");
    let mut live = serde_json::to_value(app(json!({}))).unwrap();
    live["status"] = body["status"].clone();
    reply(send, StatusCode::OK, &live);
    body["status"].clone()
}

/// Expects the GET of Revision `shop-00001` and answers with its `Active` condition.
async fn expect_revision(handle: &mut Handle, active: &str) {
    let (_, send) = expect(
        handle,
        Method::GET,
        "/apis/serving.knative.dev/v1/namespaces/web/revisions/shop-00001",
    )
    .await;
    reply(
        send,
        StatusCode::OK,
        &json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
            "metadata": {"name": "shop-00001", "namespace": "web"},
            "status": {"conditions": [{"type": "Active", "status": active}]},
        }),
    );
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap()
}

/// Runs `reconcile` while `scenario` answers the mock; then checks that nothing else was requested.
async fn run<F>(
    app: NextApp,
    scenario: impl FnOnce(Handle) -> F,
) -> (Result<Action, reconcile::Error>, Arc<Context>)
where
    F: std::future::Future<Output = Handle> + Send + 'static,
{
    let (ctx, handle) = context();
    let (result, _) = run_in(ctx.clone(), handle, app, scenario).await;
    (result, ctx)
}

/// [`run`] with a given context and mock (to reconcile the same app again, as the controller does).
async fn run_in<F>(
    ctx: Arc<Context>,
    handle: Handle,
    app: NextApp,
    scenario: impl FnOnce(Handle) -> F,
) -> (Result<Action, reconcile::Error>, Handle)
where
    F: std::future::Future<Output = Handle> + Send + 'static,
{
    let verifier = tokio::spawn(scenario(handle));
    let mut reconciling = tokio::spawn(reconcile::reconcile(Arc::new(app), ctx.clone()));
    let mut handle = tokio::time::timeout(Duration::from_secs(5), verifier)
        .await
        .expect("the expected requests did not all arrive")
        .unwrap();
    // Every expected request was answered: the reconcile must now finish without another one.
    let result = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::select! {
            done = &mut reconciling => done.unwrap(),
            extra = handle.next_request() => match extra {
                Some((request, _)) => panic!("unexpected request {} {}", request.method(), request.uri()),
                None => reconciling.await.unwrap(),
            },
        }
    })
    .await
    .expect("the reconcile did not finish");
    (result, handle)
}

fn ready_ksvc() -> Value {
    json!({
        "observedGeneration": 1,
        "url": "https://shop.web.example.com",
        "latestReadyRevisionName": "shop-00001",
        "traffic": [{"revisionName": "shop-00001", "percent": 100, "latestRevision": true}],
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-29T09:00:00Z"},
            {"type": "RoutesReady", "status": "True", "lastTransitionTime": "2026-11-29T09:00:00Z"},
        ],
    })
}

#[tokio::test]
async fn a_new_app_is_applied_with_owner_references_and_requeued_until_ready() {
    let a = app(json!({}));
    let expected = a.clone();
    let (result, _) = run(a, |mut h| async move {
        expect_applies(&mut h, &expected, Value::Null).await;
        let note = expect_reconciled(&mut h).await;
        assert_eq!(
            note,
            format!(
                "Applied ServiceAccount shop-sa, Knative Service shop (image {IMAGE}), NetworkPolicy \
                 shop-allow-ingress"
            )
        );
        let status = expect_status(&mut h).await;
        let ready = condition(&status, "Ready");
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("Unknown"), Some("KnativeServiceNotReady"))
        );
        assert_eq!(
            condition(&status, "RevalidationDeferred")["reason"],
            "NotDeferred"
        );
        assert_eq!(condition(&status, "Reconciling")["status"], "True");
        assert!(
            status["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["observedGeneration"] == 2)
        );
        assert_eq!(status["observedGeneration"], 2);
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));
}

#[tokio::test]
async fn a_ready_knative_service_makes_the_app_ready_with_its_url() {
    let a = app(json!({}));
    let expected = a.clone();
    let (result, ctx) = run(a, |mut h| async move {
        expect_applies(&mut h, &expected, ready_ksvc()).await;
        expect_revision(&mut h, "False").await;
        expect_reconciled(&mut h).await;
        let status = expect_status(&mut h).await;
        assert_eq!(condition(&status, "Ready")["status"], "True");
        assert_eq!(condition(&status, "Degraded")["status"], "False");
        assert_eq!(status["url"], "https://shop.web.example.com");
        assert_eq!(status["observedRevision"], "shop-00001");
        assert_eq!(status["scaledToZero"], true);
        assert_eq!(status["currentTraffic"][0]["percent"], 100);
        assert_eq!(status["lastSuccessfulDeployTime"], json!(now()));
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::await_change());
    let metrics = ctx.metrics.encode();
    assert!(
        metrics.contains("knext_nextapp_reconcile_total{result=\"success\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("knext_nextapp_queue_depth 0"), "{metrics}");
}

#[tokio::test]
async fn an_unchanged_status_is_not_written_again() {
    let a = with_ready_status(app(json!({})));
    let expected = a.clone();
    let (result, _) = run(a, |mut h| async move {
        // Applying the same objects changes nothing: no status write, no event.
        expect_inspections(&mut h, steady([None, None, None])).await;
        expect_applies_except(&mut h, &expected, ready_ksvc(), &[]).await;
        expect_revision(&mut h, "True").await;
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::await_change());
}

#[tokio::test]
async fn an_unpinned_image_applies_nothing_and_reports_invalid_image() {
    let a = app(json!({"image": "ghcr.io/acme/shop:1.0"}));
    let (result, _) = run(a, |mut h| async move {
        let (event, send) = expect(
            &mut h,
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/web/events?",
        )
        .await;
        assert_eq!(event["type"], "Warning");
        assert_eq!(event["reason"], "InvalidImage");
        let note = event["note"].as_str().unwrap();
        assert!(
            note.starts_with("spec.image: image \"ghcr.io/acme/shop:1.0\" is tag-only"),
            "{note}"
        );
        assert_eq!(event["regarding"]["name"], "shop");
        reply(send, StatusCode::CREATED, &event);
        let status = expect_status(&mut h).await;
        let ready = condition(&status, "Ready");
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("False"), Some("InvalidImage"))
        );
        let degraded = condition(&status, "Degraded");
        assert_eq!(
            (degraded["status"].as_str(), degraded["reason"].as_str()),
            (Some("True"), Some("InvalidImage"))
        );
        assert!(degraded["message"].as_str().unwrap().contains("tag-only"));
        h
    })
    .await;
    // No hot loop: wait for the next change of the NextApp.
    assert_eq!(result.unwrap(), Action::await_change());
}

#[tokio::test]
async fn another_spec_problem_reports_invalid_spec() {
    let a = app(json!({"env": {"PORT": "8080"}}));
    let (result, _) = run(a, |mut h| async move {
        let (event, send) = expect(
            &mut h,
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/web/events?",
        )
        .await;
        assert_eq!(event["reason"], "InvalidSpec");
        reply(send, StatusCode::CREATED, &event);
        let status = expect_status(&mut h).await;
        assert_eq!(condition(&status, "Ready")["reason"], "InvalidSpec");
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::await_change());
}

/// The labels of the Go operator (`kn-next-operator`) on its NetworkPolicy and Knative Service.
fn go_operator_labels() -> Value {
    json!({"app": "shop", "generated-by": "kn-next-operator"})
}

/// The labels `knext render` puts on a child of `shop`.
fn knext_labels() -> Value {
    json!({"apps.kn-next.dev/app": "shop", "app.kubernetes.io/managed-by": "knext"})
}

#[tokio::test]
async fn network_policy_false_deletes_the_apps_own_policy_by_name_with_a_uid_precondition() {
    // Migrated from the Go operator: labelled only `app`, `generated-by`, and controlled by this NextApp.
    let a = app(json!({"security": {"networkPolicy": false}}));
    let expected = a.clone();
    let (result, _) = run(a, |mut h| async move {
        let np = found("np-uid-1", go_operator_labels(), Some(UID));
        expect_inspections(&mut h, [None, None, Some(np)]).await;
        let applied = expect_applies_except(&mut h, &expected, Value::Null, &[]).await;
        assert!(applied.iter().all(|o| o["kind"] != "NetworkPolicy"));
        let (body, send) = expect(&mut h, Method::DELETE, &format!("{NP_URL}?")).await;
        assert_eq!(
            body["preconditions"],
            json!({"uid": "np-uid-1"}),
            "deleted only if it is still the object inspected"
        );
        reply(
            send,
            StatusCode::OK,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        );
        expect_reconciled(&mut h).await;
        let status = expect_status(&mut h).await;
        assert_eq!(condition(&status, "Degraded")["reason"], "AsExpected");
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));
}

#[tokio::test]
async fn a_policy_replaced_since_the_inspection_is_not_deleted_and_the_pass_is_retried() {
    let a = app(json!({"security": {"networkPolicy": false}}));
    let expected = a.clone();
    let (result, _) = run(a, |mut h| async move {
        let np = found("np-uid-1", knext_labels(), Some(UID));
        expect_inspections(&mut h, [None, None, Some(np)]).await;
        expect_applies_except(&mut h, &expected, Value::Null, &[]).await;
        let (_, send) = expect(&mut h, Method::DELETE, &format!("{NP_URL}?")).await;
        reply(
            send,
            StatusCode::CONFLICT,
            &json!({
                "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409,
                "message": "Precondition failed: UID in precondition: np-uid-1, UID in object meta: np-uid-2",
            }),
        );
        let event = expect_event(&mut h).await;
        assert_eq!(event["reason"], "ReconcileFailed");
        h
    })
    .await;
    let err = result.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("delete NetworkPolicy web/shop-allow-ingress: "),
        "{err}"
    );
}

/// A slot for the status a scenario saw written, so the next pass can start from it.
type Written = Arc<std::sync::Mutex<Value>>;

/// `app` with the status the previous pass wrote.
fn with_status(mut app: NextApp, written: &Written) -> NextApp {
    app.status = Some(serde_json::from_value(written.lock().unwrap().clone()).unwrap());
    app
}

#[tokio::test]
async fn network_policy_false_leaves_a_policy_the_app_does_not_control_and_says_so_once() {
    for (np, says) in [
        (
            found("np-uid-1", knext_labels(), Some("d-uid")),
            "is controlled by apps/v1 Deployment billing (uid d-uid), not by this NextApp",
        ),
        (
            found("np-uid-1", go_operator_labels(), None),
            "exists without a controller;",
        ),
    ] {
        let a = app(json!({"security": {"networkPolicy": false}}));
        let expected = a.clone();
        let written = Written::default();
        let (ctx, handle) = context();
        let (result, handle) = run_in(ctx.clone(), handle, a.clone(), |mut h| {
            let (np, written) = (np.clone(), written.clone());
            async move {
                expect_inspections(&mut h, [None, None, Some(np)]).await;
                expect_applies_except(&mut h, &expected, Value::Null, &[]).await;
                // No DELETE: an event and the status say why.
                let event = expect_event(&mut h).await;
                assert_eq!(event["reason"], "NotOwned");
                let note = event["note"].as_str().unwrap().to_owned();
                assert!(note.contains(says), "{note}");
                assert!(
                    note.starts_with(
                        "security.networkPolicy is false, but NetworkPolicy web/shop-allow-ingress "
                    ),
                    "{note}"
                );
                expect_reconciled(&mut h).await;
                let status = expect_status(&mut h).await;
                let degraded = condition(&status, "Degraded");
                assert_eq!(
                    (degraded["status"].as_str(), degraded["reason"].as_str()),
                    (Some("False"), Some("NotOwned")),
                    "not a failure: the policy may be the user's own"
                );
                assert_eq!(degraded["message"], note.as_str());
                *written.lock().unwrap() = status;
                h
            }
        })
        .await;
        assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));

        // The next pass starts from that status: the same findings, no second event, no status write.
        let again = with_status(a, &written);
        let expected = again.clone();
        let (result, _) = run_in(ctx, handle, again, |mut h| async move {
            expect_inspections(&mut h, steady([None, None, Some(np)])).await;
            expect_applies_except(&mut h, &expected, Value::Null, &[]).await;
            h
        })
        .await;
        assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));
    }
}

#[tokio::test]
async fn a_service_account_of_another_owner_is_not_applied_nor_the_knative_service_that_would_use_it() {
    let a = app(json!({}));
    let expected = a.clone();
    let written = Written::default();
    let (ctx, handle) = context();
    let sa = found("sa-uid", json!({}), Some("d-uid"));
    let (result, handle) = run_in(ctx.clone(), handle, a.clone(), |mut h| {
        let (sa, written) = (sa.clone(), written.clone());
        async move {
            expect_inspections(&mut h, [None, Some(sa), None]).await;
            // Neither the ServiceAccount nor the Knative Service; the NetworkPolicy still is.
            let applied =
                expect_applies_except(&mut h, &expected, Value::Null, &["Service", "ServiceAccount"]).await;
            assert_eq!(applied.len(), 1);
            let event = expect_event(&mut h).await;
            assert_eq!(event["reason"], "OwnershipConflict");
            assert_eq!(
                event["note"],
                "ServiceAccount web/shop-sa is controlled by apps/v1 Deployment billing (uid d-uid), not by \
                 this NextApp; knext applies nothing to it"
            );
            expect_reconciled(&mut h).await;
            let status = expect_status(&mut h).await;
            let ready = condition(&status, "Ready");
            assert_eq!(
                (ready["status"].as_str(), ready["reason"].as_str()),
                (Some("False"), Some("OwnershipConflict"))
            );
            assert!(
                ready["message"].as_str().unwrap().starts_with(
                    "Knative Service web/shop not applied: its pods would run as ServiceAccount web/shop-sa"
                ),
                "{ready}"
            );
            let degraded = condition(&status, "Degraded");
            assert_eq!(
                (degraded["status"].as_str(), degraded["reason"].as_str()),
                (Some("True"), Some("OwnershipConflict"))
            );
            let message = degraded["message"].as_str().unwrap();
            assert!(message.contains(event["note"].as_str().unwrap()), "{message}");
            assert!(
                message.contains("Knative Service web/shop not applied"),
                "{message}"
            );
            assert_eq!(condition(&status, "Reconciling")["status"], "False");
            assert_eq!(status["observedGeneration"], 2);
            *written.lock().unwrap() = status;
            h
        }
    })
    .await;
    // Resolving the conflict changes nothing the operator watches: look again.
    assert_eq!(result.unwrap(), Action::requeue(status::CONFLICT_REQUEUE));

    // Still in conflict on the next pass: the status names it already, so no event and no write.
    let again = with_status(a, &written);
    let expected = again.clone();
    let (result, _) = run_in(ctx, handle, again, |mut h| async move {
        expect_inspections(&mut h, steady([None, Some(sa), None])).await;
        expect_applies_except(&mut h, &expected, Value::Null, &["Service", "ServiceAccount"]).await;
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(status::CONFLICT_REQUEUE));
}

#[tokio::test]
async fn a_knative_service_of_another_owner_is_not_applied_nor_the_policy_that_would_select_its_pods() {
    // `kn service create shop` before the NextApp existed: no controller, no knext labels.
    let a = app(json!({}));
    let expected = a.clone();
    let (result, _) = run(a, |mut h| async move {
        let ksvc = found("ksvc-uid", json!({"serving.knative.dev/creator": "alice"}), None);
        expect_inspections(&mut h, [Some(ksvc), None, None]).await;
        let applied =
            expect_applies_except(&mut h, &expected, Value::Null, &["Service", "NetworkPolicy"]).await;
        assert_eq!(applied[0]["kind"], "ServiceAccount");
        // No Revision GET either: the other owner's Knative status is not read.
        let event = expect_event(&mut h).await;
        assert_eq!(event["reason"], "OwnershipConflict");
        let note = event["note"].as_str().unwrap();
        assert!(
            note.starts_with(
                "Knative Service web/shop exists without a controller and without knext's labels for this app"
            ),
            "{note}"
        );
        expect_reconciled(&mut h).await;
        let status = expect_status(&mut h).await;
        let ready = condition(&status, "Ready");
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str(), ready["message"].as_str()),
            (Some("False"), Some("OwnershipConflict"), Some(note))
        );
        let degraded = condition(&status, "Degraded");
        assert_eq!(degraded["status"], "True");
        assert!(
            degraded["message"]
                .as_str()
                .unwrap()
                .contains("NetworkPolicy web/shop-allow-ingress not applied: it would select the pods of Knative Service web/shop"),
            "{degraded}"
        );
        assert!(status.get("url").is_none_or(Value::is_null), "{status}");
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(status::CONFLICT_REQUEUE));
}

#[tokio::test]
async fn a_network_policy_of_another_owner_is_not_applied_while_the_app_rolls_out_and_stays_truthfully_ready()
{
    let a = app(json!({}));
    let expected = a.clone();
    let (result, _) = run(a, |mut h| async move {
        let np = found("np-uid", json!({}), None);
        expect_inspections(&mut h, [None, None, Some(np)]).await;
        let applied = expect_applies_except(&mut h, &expected, ready_ksvc(), &["NetworkPolicy"]).await;
        assert_eq!(applied.len(), 2);
        expect_revision(&mut h, "True").await;
        let event = expect_event(&mut h).await;
        assert_eq!(event["reason"], "OwnershipConflict");
        expect_reconciled(&mut h).await;
        let status = expect_status(&mut h).await;
        // The Knative Service serves the latest spec: Ready says so; Degraded names the conflict.
        assert_eq!(condition(&status, "Ready")["status"], "True");
        let degraded = condition(&status, "Degraded");
        assert_eq!(
            (degraded["status"].as_str(), degraded["reason"].as_str()),
            (Some("True"), Some("OwnershipConflict"))
        );
        assert_eq!(degraded["message"], event["note"]);
        assert_eq!(status["url"], "https://shop.web.example.com");
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(status::CONFLICT_REQUEUE));
}

#[tokio::test]
async fn children_of_this_nextapp_or_labelled_for_it_without_a_controller_are_applied() {
    // The Go operator's Knative Service (its labels, this NextApp's controller reference), a
    // ServiceAccount from `knext render` applied by GitOps (knext's labels, no controller) and the Go
    // operator's policy without its owner reference: ours, adopted, adopted.
    let a = app(json!({}));
    let expected = a.clone();
    let (result, _) = run(a, |mut h| async move {
        expect_inspections(
            &mut h,
            [
                Some(found("ksvc-uid", go_operator_labels(), Some(UID))),
                Some(found("sa-uid", knext_labels(), None)),
                Some(found("np-uid", go_operator_labels(), None)),
            ],
        )
        .await;
        let applied = expect_applies_except(&mut h, &expected, Value::Null, &[]).await;
        assert_eq!(applied.len(), 3, "each applied with the controller reference");
        let status = expect_status(&mut h).await;
        assert_eq!(condition(&status, "Degraded")["reason"], "AsExpected");
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));
}

#[tokio::test]
async fn validator_warnings_are_published_once_per_generation() {
    let a = app(json!({"env": {"NODE_ENV": "development"}}));
    let expected = a.clone();
    let written = Written::default();
    let (ctx, handle) = context();
    let (result, handle) = run_in(ctx.clone(), handle, a.clone(), |mut h| {
        let written = written.clone();
        async move {
            let event = expect_event(&mut h).await;
            assert_eq!(event["reason"], "EnvVarIgnored");
            assert_eq!(event["action"], "Validate");
            assert_eq!(
                event["note"],
                "spec.env.NODE_ENV: NODE_ENV is set by knext from the spec; this entry is ignored"
            );
            expect_applies(&mut h, &expected, Value::Null).await;
            expect_reconciled(&mut h).await;
            let status = expect_status(&mut h).await;
            assert_eq!(status["observedGeneration"], 2);
            *written.lock().unwrap() = status;
            h
        }
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));

    // The requeue (and the watch event of the status write) find generation 2 observed: no event.
    let again = with_status(a, &written);
    let expected = again.clone();
    let (result, handle) = run_in(ctx.clone(), handle, again.clone(), |mut h| async move {
        expect_inspections(&mut h, steady([None, None, None])).await;
        expect_applies_except(&mut h, &expected, Value::Null, &[]).await;
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));

    // A new generation is a new spec: its warnings are published again (kube's recorder counts a
    // repeat within its cache window on the first event's series instead of creating another).
    let mut next = again;
    next.metadata.generation = Some(3);
    let expected = next.clone();
    let (result, _) = run_in(ctx, handle, next, |mut h| async move {
        let (request, send) = h.next_request().await.unwrap();
        assert_eq!(request.method(), Method::PATCH);
        let path = request.uri().path().to_owned();
        assert!(
            path.starts_with("/apis/events.k8s.io/v1/namespaces/web/events/shop."),
            "{path}"
        );
        let bytes = request.into_body().collect().await.unwrap().to_bytes();
        let event: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            (event["reason"].as_str(), event["series"]["count"].as_i64()),
            (Some("EnvVarIgnored"), Some(2))
        );
        reply(send, StatusCode::OK, &event);
        expect_inspections(&mut h, steady([None, None, None])).await;
        expect_applies_except(&mut h, &expected, Value::Null, &[]).await;
        expect_status(&mut h).await;
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));
}

#[tokio::test]
async fn a_timeout_that_cuts_the_drain_short_is_a_warning_event_and_the_app_still_rolls_out() {
    // Knative's 30 s preStop wait leaves 15 s of a 45 s grace period: the cap shrinks to 10 s.
    let a = app(json!({"timeoutSeconds": 45}));
    let expected = a.clone();
    let (result, _) = run(a, |mut h| async move {
        let event = expect_event(&mut h).await;
        assert_eq!(event["reason"], "ShortDrainBudget");
        let note = event["note"].as_str().unwrap();
        assert!(
            note.starts_with("spec.timeoutSeconds: 45 s leaves 15 s"),
            "{note}"
        );
        assert!(note.contains("at most 10 s instead of 25 s"), "{note}");
        let applied = expect_applies(&mut h, &expected, Value::Null).await;
        let ksvc = applied.iter().find(|o| o["kind"] == "Service").unwrap();
        let env = &ksvc["spec"]["template"]["spec"]["containers"][0]["env"];
        let cap = env
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "KNEXT_SHUTDOWN_GRACE_MS")
            .unwrap();
        assert_eq!(cap["value"], "10000");
        expect_reconciled(&mut h).await;
        expect_status(&mut h).await;
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));
}

#[tokio::test]
async fn an_event_that_cannot_be_published_does_not_fail_the_pass() {
    let a = app(json!({"env": {"NODE_ENV": "development"}}));
    let expected = a.clone();
    let (result, _) = run(a, |mut h| async move {
        let (_, send) = expect(
            &mut h,
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/web/events?",
        )
        .await;
        reply(
            send,
            StatusCode::FORBIDDEN,
            &json!({
                "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
                "message": "events.events.k8s.io is forbidden",
            }),
        );
        expect_applies(&mut h, &expected, Value::Null).await;
        expect_reconciled(&mut h).await;
        expect_status(&mut h).await;
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));
}

#[tokio::test]
async fn an_event_the_api_server_does_not_answer_holds_the_pass_for_the_event_timeout_only() {
    let a = app(json!({"env": {"NODE_ENV": "development"}}));
    let expected = a.clone();
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let mut ctx = Context::new(Client::new(service, "default"), Arc::new(Metrics::new()), None);
    ctx.now = now;
    ctx.event_timeout = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let (result, _) = run_in(Arc::new(ctx), handle, a, |mut h| async move {
        // Never answered while the pass goes on.
        let (_, _unanswered) = expect(
            &mut h,
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/web/events?",
        )
        .await;
        expect_applies(&mut h, &expected, Value::Null).await;
        expect_reconciled(&mut h).await;
        expect_status(&mut h).await;
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_api_error_fails_the_pass_and_backs_off_exponentially() {
    let a = app(json!({}));
    let (result, ctx) = run(a.clone(), |mut h| async move {
        expect_inspections(&mut h, [None, None, None]).await;
        // The ServiceAccount first, then the Knative Service that names it.
        let (sa, send) = expect(&mut h, Method::PATCH, &format!("{SA_URL}{SSA}")).await;
        reply(send, StatusCode::OK, &sa);
        let (_, send) = expect(&mut h, Method::PATCH, &format!("{KSVC_URL}{SSA}")).await;
        reply(send, StatusCode::INTERNAL_SERVER_ERROR, &json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "InternalError", "code": 500, "message": "etcd is sad",
        }));
        let event = expect_event(&mut h).await;
        assert_eq!(event["reason"], "ReconcileFailed");
        assert_eq!(event["action"], "Reconcile");
        assert!(
            event["note"].as_str().unwrap().starts_with("apply Service web/shop: ") &&
            event["note"].as_str().unwrap().contains("etcd is sad"),
            "{event}"
        );
        h
    })
    .await;
    let err = result.unwrap_err();
    assert!(err.to_string().starts_with("apply Service web/shop: "), "{err}");
    let a = Arc::new(a);
    assert_eq!(
        reconcile::error_policy(a.clone(), &err, ctx.clone()),
        Action::requeue(Duration::from_secs(5))
    );
    assert_eq!(
        reconcile::error_policy(a.clone(), &err, ctx.clone()),
        Action::requeue(Duration::from_secs(10))
    );
    assert_eq!(
        reconcile::error_policy(a, &err, ctx.clone()),
        Action::requeue(Duration::from_secs(20))
    );
    assert_eq!(reconcile::backoff(30), reconcile::BACKOFF_MAX);
    let metrics = ctx.metrics.encode();
    assert!(
        metrics.contains("knext_nextapp_reconcile_errors_total 1"),
        "{metrics}"
    );
}

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const SUBJECT: &str = "https://github.com/acme/shop/.github/workflows/knext-image.yml@refs/heads/main";

fn signed() -> Value {
    json!({"security": {"signature": {"issuer": ISSUER, "subject": SUBJECT, "requireSbomAttestation": true}}})
}

/// The metadata of a ClusterImagePolicy `knext.web.shop` as the API server lists it.
fn policy_meta(labels: Value, owner_uid: Option<&str>) -> Value {
    let mut meta =
        json!({"name": "knext.web.shop", "uid": "cip-uid-1", "resourceVersion": "42", "labels": labels});
    if let Some(owner) = owner_uid {
        meta["annotations"] = json!({"apps.kn-next.dev/owner-uid": owner});
    }
    meta
}

fn policy_labels() -> Value {
    json!({"apps.kn-next.dev/app": "shop", "apps.kn-next.dev/namespace": "web",
           "app.kubernetes.io/managed-by": "knext"})
}

#[tokio::test]
async fn a_signature_is_applied_as_a_cluster_image_policy_carrying_the_owner_uid() {
    let a = app(signed());
    let expected = a.clone();
    let (result, _) = run(a, |mut h| async move {
        expect_inspections(&mut h, [None, None, None]).await;
        expect_namespaced_applies(&mut h, &expected, Value::Null, &[]).await;
        expect_policy_list(&mut h, None).await;
        let policy = expect_policy_apply(&mut h, &rendered_policy(&expected).unwrap()).await;
        assert_eq!(
            policy["spec"]["images"],
            json!([{"glob": "ghcr.io/acme/shop@*"}, {"glob": "ghcr.io/acme/shop:*"}])
        );
        assert_eq!(
            policy["spec"]["authorities"][0]["keyless"]["identities"],
            json!([{"issuer": ISSUER, "subject": SUBJECT}])
        );
        assert_eq!(
            policy["spec"]["authorities"][0]["attestations"][0]["predicateType"],
            "https://spdx.dev/Document"
        );
        expect_reconciled(&mut h).await;
        let status = expect_status(&mut h).await;
        assert_eq!(condition(&status, "Degraded")["reason"], "AsExpected");
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));
}

#[tokio::test]
async fn a_policy_labelled_for_the_app_is_adopted_and_another_one_is_a_conflict_reported_once() {
    // `knext render` output applied by GitOps: knext's labels, no owner UID: adopted.
    let a = app(signed());
    let expected = a.clone();
    let (result, _) = run(a.clone(), |mut h| async move {
        expect_inspections(&mut h, [None, None, None]).await;
        expect_namespaced_applies(&mut h, &expected, Value::Null, &[]).await;
        expect_policy_list(&mut h, Some(policy_meta(policy_labels(), None))).await;
        expect_policy_apply(&mut h, &rendered_policy(&expected).unwrap()).await;
        expect_reconciled(&mut h).await;
        expect_status(&mut h).await;
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));

    // Somebody else's policy of that name: nothing applied to it, Degraded, one event.
    let expected = a.clone();
    let written = Written::default();
    let (ctx, handle) = context();
    let (result, handle) = run_in(ctx.clone(), handle, a.clone(), |mut h| {
        let written = written.clone();
        async move {
            expect_inspections(&mut h, [None, None, None]).await;
            expect_namespaced_applies(&mut h, &expected, Value::Null, &[]).await;
            expect_policy_list(&mut h, Some(policy_meta(json!({"team": "platform"}), None))).await;
            let event = expect_event(&mut h).await;
            assert_eq!(event["reason"], "OwnershipConflict");
            assert!(
                event["note"].as_str().unwrap().starts_with(
                    "ClusterImagePolicy knext.web.shop exists without knext's labels for this app"
                ),
                "{event}"
            );
            expect_reconciled(&mut h).await;
            let status = expect_status(&mut h).await;
            let degraded = condition(&status, "Degraded");
            assert_eq!(
                (degraded["status"].as_str(), degraded["reason"].as_str()),
                (Some("True"), Some("OwnershipConflict"))
            );
            *written.lock().unwrap() = status;
            h
        }
    })
    .await;
    // The Knative Service is not Ready yet: its 30 s requeue comes before the conflict's 60 s.
    assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));
    let again = with_status(a, &written);
    let expected = again.clone();
    let (result, _) = run_in(ctx, handle, again, |mut h| async move {
        expect_inspections(&mut h, steady([None, None, None])).await;
        expect_namespaced_applies(&mut h, &expected, Value::Null, &[]).await;
        expect_policy_list(&mut h, Some(policy_meta(json!({"team": "platform"}), None))).await;
        h
    })
    .await;
    // The Knative Service is not Ready yet: its 30 s requeue comes before the conflict's 60 s.
    assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));
}

#[tokio::test]
async fn clearing_the_signature_deletes_the_policy_this_nextapp_applied_with_preconditions() {
    // The spec changed (generation 2, status not observed yet): the pass looks for the policy.
    let a = app(json!({}));
    let expected = a.clone();
    let (result, _) = run(a.clone(), |mut h| async move {
        expect_inspections(&mut h, [None, None, None]).await;
        expect_namespaced_applies(&mut h, &expected, Value::Null, &[]).await;
        expect_policy_list(&mut h, Some(policy_meta(policy_labels(), Some(UID)))).await;
        let (body, send) = expect(&mut h, Method::DELETE, &format!("{CIP_URL}?")).await;
        assert_eq!(
            body["preconditions"],
            json!({"uid": "cip-uid-1", "resourceVersion": "42"})
        );
        reply(
            send,
            StatusCode::OK,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        );
        expect_reconciled(&mut h).await;
        expect_status(&mut h).await;
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));

    // Not this NextApp's (GitOps output without an owner UID, or another incarnation's): left alone.
    for owner in [None, Some("an-earlier-shop")] {
        let expected = a.clone();
        let (result, _) = run(a.clone(), |mut h| async move {
            expect_inspections(&mut h, [None, None, None]).await;
            expect_namespaced_applies(&mut h, &expected, Value::Null, &[]).await;
            expect_policy_list(&mut h, Some(policy_meta(policy_labels(), owner))).await;
            expect_reconciled(&mut h).await;
            expect_status(&mut h).await;
            h
        })
        .await;
        assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));
    }
}

#[tokio::test]
async fn without_policy_controller_a_signature_is_a_warning_once_and_a_slow_retry_not_a_failure() {
    let a = app(signed());
    let expected = a.clone();
    let written = Written::default();
    let (ctx, handle) = context();
    let (result, handle) = run_in(ctx.clone(), handle, a.clone(), |mut h| {
        let written = written.clone();
        async move {
            expect_inspections(&mut h, [None, None, None]).await;
            expect_namespaced_applies(&mut h, &expected, ready_ksvc(), &[]).await;
            // No such resource: the API server answers the LIST with 404.
            let (_, _, send) = expect_request(&mut h, Method::GET, CIP_LIST_URL).await;
            not_found(send);
            let event = expect_event(&mut h).await;
            assert_eq!(event["reason"], "SignatureNotEnforced");
            assert_eq!(
                event["note"],
                "spec.security.signature is not enforced: the cluster has no \
                 clusterimagepolicies.policy.sigstore.dev resource, so Sigstore policy-controller is not \
                 installed; knext applies the ClusterImagePolicy once it is (it looks again every 300 s)"
            );
            expect_revision(&mut h, "True").await;
            expect_reconciled(&mut h).await;
            let status = expect_status(&mut h).await;
            // The app itself is fine.
            assert_eq!(condition(&status, "Ready")["status"], "True");
            assert_eq!(condition(&status, "Degraded")["status"], "False");
            *written.lock().unwrap() = status;
            h
        }
    })
    .await;
    // Not a hot loop, and not awaiting a change that installing policy-controller would not make.
    assert_eq!(result.unwrap(), Action::requeue(super::image_policy::RETRY));

    // The retry: the same answer, no second event, no status write.
    let again = with_status(a, &written);
    let expected = again.clone();
    let (result, _) = run_in(ctx, handle, again, |mut h| async move {
        expect_inspections(&mut h, steady([None, None, None])).await;
        expect_namespaced_applies(&mut h, &expected, ready_ksvc(), &[]).await;
        let (_, _, send) = expect_request(&mut h, Method::GET, CIP_LIST_URL).await;
        not_found(send);
        expect_revision(&mut h, "True").await;
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(super::image_policy::RETRY));
}

#[tokio::test]
async fn the_cluster_wide_default_signature_is_applied_to_an_app_without_its_own() {
    let a = app(json!({}));
    let default = crate::api::SignatureSpec {
        issuer: ISSUER.into(),
        subject: Some(SUBJECT.into()),
        ..Default::default()
    };
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let mut ctx = Context::new(Client::new(service, "default"), Arc::new(Metrics::new()), None);
    ctx.now = now;
    ctx.default_signature = Some(default.clone());
    let expected = a.clone();
    let (result, _) = run_in(Arc::new(ctx), handle, a, |mut h| async move {
        expect_inspections(&mut h, [None, None, None]).await;
        expect_namespaced_applies(&mut h, &expected, Value::Null, &[]).await;
        expect_policy_list(&mut h, None).await;
        let (valid, _) = crate::policy::validate(&expected).unwrap();
        let opts = RenderOptions {
            owner_uid: Some(UID),
            default_signature: Some(&default),
            ..RenderOptions::default()
        };
        let policy = render::app(&valid, &opts)
            .iter()
            .map(|m| m.to_json().unwrap())
            .find(|o| o["kind"] == "ClusterImagePolicy")
            .unwrap();
        let applied = expect_policy_apply(&mut h, &policy).await;
        assert_eq!(
            applied["spec"]["authorities"][0]["keyless"]["identities"],
            json!([{"issuer": ISSUER, "subject": SUBJECT}])
        );
        expect_reconciled(&mut h).await;
        expect_status(&mut h).await;
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));
}

#[tokio::test]
async fn the_sweep_deletes_only_policies_whose_nextapp_is_gone_or_no_longer_wants_them() {
    use super::image_policy::{AppState, sweep};
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let item = |name: &str, app: &str, ns: &str, owner: Option<&str>| {
        let mut meta = json!({
            "name": name, "uid": format!("{name}-uid"), "resourceVersion": "7",
            "labels": {"apps.kn-next.dev/app": app, "apps.kn-next.dev/namespace": ns,
                       "app.kubernetes.io/managed-by": "knext"},
        });
        if let Some(owner) = owner {
            meta["annotations"] = json!({"apps.kn-next.dev/owner-uid": owner});
        }
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": meta})
    };
    let verifier = tokio::spawn(async move {
        let (accept, _, send) = expect_request(
            &mut handle,
            Method::GET,
            "/apis/policy.sigstore.dev/v1beta1/clusterimagepolicies?&labelSelector=app.kubernetes.io%2Fmanaged-by%3Dknext%2Capps.kn-next.dev%2Fnamespace",
        )
        .await;
        assert!(accept.contains("as=PartialObjectMetadataList"), "{accept}");
        reply(
            send,
            StatusCode::OK,
            &json!({
                "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {},
                "items": [
                    item("knext.web.gone", "gone", "web", Some("gone-uid")),
                    item("knext.web.shop", "shop", "web", Some(UID)),
                    item("knext.web.gitops", "gitops", "web", None),
                    item("knext.web.cleared", "cleared", "web", Some("cleared-uid")),
                    item("knext.web.reborn", "reborn", "web", Some("old-uid")),
                ],
            }),
        );
        for (name, answer) in [
            ("gone", StatusCode::OK),
            ("cleared", StatusCode::OK),
            ("reborn", StatusCode::CONFLICT),
        ] {
            let url = format!("/apis/policy.sigstore.dev/v1beta1/clusterimagepolicies/knext.web.{name}?");
            let (body, send) = expect(&mut handle, Method::DELETE, &url).await;
            assert_eq!(
                body["preconditions"],
                json!({"uid": format!("knext.web.{name}-uid"), "resourceVersion": "7"})
            );
            // A conflict: re-applied since the list (a reconcile got there first); left alone.
            let status = if answer == StatusCode::OK {
                "Success"
            } else {
                "Failure"
            };
            reply(
                send,
                answer,
                &json!({"kind": "Status", "apiVersion": "v1", "status": status,
                                        "code": answer.as_u16()}),
            );
        }
        handle
    });
    let apps = |ns: &str, name: &str| {
        let state = |uid: &str, wants_signature| {
            Some(AppState {
                uid: uid.into(),
                wants_signature,
            })
        };
        match (ns, name) {
            ("web", "shop") => state(UID, true),
            ("web", "gitops") => state("gitops-uid", false),
            ("web", "cleared") => state("cleared-uid", false),
            ("web", "reborn") => state("new-uid", true),
            _ => None,
        }
    };
    let deleted = sweep(&client, None, apps).await.unwrap();
    let mut handle = verifier.await.unwrap();
    assert_eq!(deleted, 2);
    drop(client);
    assert!(handle.next_request().await.is_none(), "no other request");
}

#[tokio::test]
async fn a_namespaced_operator_sweeps_its_namespace_only_and_nothing_without_policy_controller() {
    use super::image_policy::sweep;
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let verifier = tokio::spawn(async move {
        let (_, _, send) = expect_request(
            &mut handle,
            Method::GET,
            "/apis/policy.sigstore.dev/v1beta1/clusterimagepolicies?&labelSelector=app.kubernetes.io%2Fmanaged-by%3Dknext%2Capps.kn-next.dev%2Fnamespace%3Dweb",
        )
        .await;
        not_found(send);
        handle
    });
    assert_eq!(sweep(&client, Some("web"), |_, _| None).await.unwrap(), 0);
    verifier.await.unwrap();
}

#[tokio::test]
async fn a_deleted_app_is_left_to_the_garbage_collector() {
    let mut a = app(json!({}));
    a.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
    let (result, _) = run(a, |h| async move { h }).await;
    assert_eq!(result.unwrap(), Action::await_change());
}

#[tokio::test]
async fn startup_names_the_missing_crd_and_how_to_install_it() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let verifier = tokio::spawn(async move {
        let (_, send) = expect(&mut handle, Method::GET, "/version").await;
        reply(
            send,
            StatusCode::OK,
            &json!({
                "major": "1", "minor": "33", "gitVersion": "v1.33.0", "gitCommit": "", "gitTreeState": "",
                "buildDate": "", "goVersion": "", "compiler": "", "platform": "linux/amd64",
            }),
        );
        let (_, send) = expect(
            &mut handle,
            Method::GET,
            "/apis/apps.kn-next.dev/v1alpha1/nextapps?&limit=1",
        )
        .await;
        not_found(send);
    });
    let err = super::startup_check(&client, None).await.unwrap_err();
    verifier.await.unwrap();
    assert!(
        err.contains("knext crd | kubectl apply --server-side -f -"),
        "{err}"
    );
    assert!(err.contains("nextapps.apps.kn-next.dev"), "{err}");
}

#[tokio::test]
async fn leader_election_creates_takes_over_and_respects_a_live_holder() {
    use super::leader::Elector;
    use k8s_openapi::api::coordination::v1::Lease;
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let elector = Elector::new(
        kube::Api::<Lease>::namespaced(client, "knext-system"),
        "knext-operator-leader",
        "pod-a",
    );
    let url = "/apis/coordination.k8s.io/v1/namespaces/knext-system/leases";
    let lease = |holder: &str, renewed: &str| {
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "knext-operator-leader", "namespace": "knext-system", "resourceVersion": "41"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": renewed, "leaseTransitions": 3},
        })
    };
    let verifier = tokio::spawn(async move {
        // 1. No Lease: create it.
        let (_, send) = expect(&mut handle, Method::GET, &format!("{url}/knext-operator-leader")).await;
        not_found(send);
        let (body, send) = expect(&mut handle, Method::POST, &format!("{url}?")).await;
        assert_eq!(body["spec"]["holderIdentity"], "pod-a");
        reply(send, StatusCode::CREATED, &body);
        // 2. Held by a live replica: stand by, write nothing.
        let (_, send) = expect(&mut handle, Method::GET, &format!("{url}/knext-operator-leader")).await;
        reply(
            send,
            StatusCode::OK,
            &lease("pod-b", "2026-11-29T10:00:00.000000Z"),
        );
        // 3. Held, but not renewed for longer than its duration: take over with resourceVersion.
        let (_, send) = expect(&mut handle, Method::GET, &format!("{url}/knext-operator-leader")).await;
        reply(
            send,
            StatusCode::OK,
            &lease("pod-b", "2026-11-29T09:00:00.000000Z"),
        );
        let (body, send) = expect(&mut handle, Method::PUT, &format!("{url}/knext-operator-leader?")).await;
        assert_eq!(body["spec"]["holderIdentity"], "pod-a");
        assert_eq!(body["spec"]["leaseTransitions"], 4);
        assert_eq!(body["metadata"]["resourceVersion"], "41");
        reply(send, StatusCode::OK, &body);
        // 4. Lost race: 409 on the update means not leader.
        let (_, send) = expect(&mut handle, Method::GET, &format!("{url}/knext-operator-leader")).await;
        reply(send, StatusCode::OK, &lease("", "2026-11-29T09:00:00.000000Z"));
        let (_, send) = expect(&mut handle, Method::PUT, &format!("{url}/knext-operator-leader?")).await;
        reply(
            send,
            StatusCode::CONFLICT,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409, "message": "conflict"}),
        );
        // 5. Release: the holder empties the Lease.
        let (_, send) = expect(&mut handle, Method::GET, &format!("{url}/knext-operator-leader")).await;
        reply(
            send,
            StatusCode::OK,
            &lease("pod-a", "2026-11-29T10:00:00.000000Z"),
        );
        let (body, send) = expect(&mut handle, Method::PUT, &format!("{url}/knext-operator-leader?")).await;
        assert!(
            body["spec"].get("holderIdentity").is_none_or(Value::is_null),
            "{body}"
        );
        assert_eq!(body["spec"]["leaseDurationSeconds"], 1);
        reply(send, StatusCode::OK, &body);
    });
    let at: Timestamp = "2026-11-29T10:00:05Z".parse().unwrap();
    assert!(elector.try_acquire_or_renew(at).await.unwrap());
    assert!(!elector.try_acquire_or_renew(at).await.unwrap());
    assert!(elector.try_acquire_or_renew(at).await.unwrap());
    assert!(!elector.try_acquire_or_renew(at).await.unwrap());
    elector.release(at).await.unwrap();
    verifier.await.unwrap();
}

const NEXTAPP_URL: &str = "/apis/apps.kn-next.dev/v1alpha1/namespaces/web/nextapps/shop?";
const FINALIZER: &str = "apps.kn-next.dev/external-cleanup";

/// Expects the merge patch of the NextApp's finalizers (at resourceVersion 7) and answers it.
async fn expect_finalizers(handle: &mut Handle, finalizers: Value, status: StatusCode) {
    let (request, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .expect("timed out waiting for the finalizer patch")
        .expect("no request; expected the finalizer patch");
    assert_eq!(request.method(), Method::PATCH);
    assert_eq!(request.uri().to_string(), NEXTAPP_URL);
    assert_eq!(
        request.headers()[http::header::CONTENT_TYPE],
        "application/merge-patch+json"
    );
    let bytes = request.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        body,
        json!({"metadata": {"finalizers": finalizers, "resourceVersion": "7"}}),
        "only the finalizers, on condition of the version read"
    );
    if status == StatusCode::OK {
        reply(send, status, &serde_json::to_value(app(json!({}))).unwrap());
    } else {
        reply(
            send,
            status,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": status.as_u16(), "message": "the object has been modified"}),
        );
    }
}

fn with_redis() -> Value {
    json!({"cache": {"provider": "redis", "url": "redis://cache.web:6379", "keyPrefix": "shop"}})
}

#[tokio::test]
async fn an_app_with_external_state_gets_the_finalizer_first() {
    let a = app(with_redis());
    let expected = a.clone();
    let (result, _) = run(a, |mut h| async move {
        expect_finalizers(&mut h, json!([FINALIZER]), StatusCode::OK).await;
        expect_applies(&mut h, &expected, Value::Null).await;
        expect_reconciled(&mut h).await;
        expect_status(&mut h).await;
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));
}

#[tokio::test]
async fn a_finalizer_without_external_state_is_removed_and_others_stay() {
    // The existing operator put its finalizer on every app.
    let mut a = app(json!({"storage": {"provider": "local", "bucket": "assets"}}));
    a.metadata.finalizers = Some(vec!["example.com/keep".into(), FINALIZER.into()]);
    let expected = a.clone();
    let (result, _) = run(a, |mut h| async move {
        expect_finalizers(&mut h, json!(["example.com/keep"]), StatusCode::OK).await;
        expect_applies(&mut h, &expected, Value::Null).await;
        expect_reconciled(&mut h).await;
        expect_status(&mut h).await;
        h
    })
    .await;
    assert!(result.is_ok());
}

#[tokio::test]
async fn a_conflict_on_the_finalizer_fails_the_pass_with_an_event_and_applies_nothing() {
    let a = app(json!({"storage": {"provider": "s3", "bucket": "assets"}}));
    let (result, ctx) = run(a.clone(), |mut h| async move {
        expect_finalizers(&mut h, json!([FINALIZER]), StatusCode::CONFLICT).await;
        let (event, send) = expect(
            &mut h,
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/web/events?",
        )
        .await;
        assert_eq!(
            (event["type"].as_str(), event["reason"].as_str()),
            (Some("Warning"), Some("ReconcileFailed"))
        );
        assert!(
            event["note"]
                .as_str()
                .unwrap()
                .contains("add the finalizer to NextApp web/shop"),
            "{event}"
        );
        reply(send, StatusCode::CREATED, &event);
        h
    })
    .await;
    let err = result.unwrap_err();
    assert_eq!(
        reconcile::error_policy(Arc::new(a), &err, ctx),
        Action::requeue(reconcile::BACKOFF_START)
    );
}

/// A cleaner that answers `results` and counts its calls.
fn cleaner(
    results: Vec<Result<String, String>>,
    hang: bool,
) -> (super::finalizer::Cleaner, Arc<std::sync::atomic::AtomicUsize>) {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    let cleaner: super::finalizer::Cleaner = Arc::new(move |app, spec| {
        assert_eq!(app, "shop");
        assert!(spec.cache.is_some());
        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let results = results.clone();
        Box::pin(async move {
            if hang {
                std::future::pending::<()>().await;
            }
            results
        })
    });
    (cleaner, calls)
}

fn deleting(spec: Value, finalizers: &[&str]) -> NextApp {
    let mut a = app(spec);
    a.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
    a.metadata.finalizers = Some(finalizers.iter().map(|f| (*f).to_owned()).collect());
    a
}

async fn run_with_cleaner<F>(
    app: NextApp,
    cleaner: super::finalizer::Cleaner,
    scenario: impl FnOnce(Handle) -> F,
) -> Result<Action, reconcile::Error>
where
    F: std::future::Future<Output = Handle> + Send + 'static,
{
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let mut ctx = Context::new(client, Arc::new(Metrics::new()), Some("test-pod".into()));
    ctx.now = now;
    ctx.cleaner = cleaner;
    ctx.cleanup_bound = Duration::from_millis(200);
    run_in(Arc::new(ctx), handle, app, scenario).await.0
}

#[tokio::test]
async fn deleting_an_app_cleans_up_reports_each_failure_and_removes_the_finalizer() {
    let a = deleting(with_redis(), &[FINALIZER, "example.com/keep"]);
    let (clean, calls) = cleaner(
        vec![
            Ok("deleted 3 Redis keys matching shop:*".into()),
            Err("object store s3://assets: access denied".into()),
        ],
        false,
    );
    let result = run_with_cleaner(a, clean, |mut h| async move {
        // The app's ClusterImagePolicy, if any.
        expect_policy_list(&mut h, None).await;
        let failed = expect_event(&mut h).await;
        assert_eq!(failed["reason"], "CleanupFailed");
        assert_eq!(failed["note"], "object store s3://assets: access denied");
        let (done, send) = expect(
            &mut h,
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/web/events?",
        )
        .await;
        assert_eq!(
            (done["type"].as_str(), done["reason"].as_str()),
            (Some("Normal"), Some("CleanedUp"))
        );
        assert_eq!(done["note"], "deleted 3 Redis keys matching shop:*");
        reply(send, StatusCode::CREATED, &done);
        expect_finalizers(&mut h, json!(["example.com/keep"]), StatusCode::OK).await;
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::await_change());
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_cleanup_that_hangs_is_cut_at_the_bound_and_never_blocks_the_deletion() {
    let a = deleting(with_redis(), &[FINALIZER]);
    let (clean, _) = cleaner(vec![], true);
    let result = run_with_cleaner(a, clean, |mut h| async move {
        let failed = expect_event(&mut h).await;
        assert_eq!(failed["reason"], "CleanupFailed");
        assert!(
            failed["note"]
                .as_str()
                .unwrap()
                .contains("did not finish within 200ms"),
            "{failed}"
        );
        expect_finalizers(&mut h, json!([]), StatusCode::OK).await;
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::await_change());
}

#[tokio::test]
async fn an_app_deleted_without_the_finalizer_runs_no_cleanup() {
    let a = deleting(with_redis(), &["example.com/keep"]);
    let (clean, calls) = cleaner(vec![], false);
    let result = run_with_cleaner(a, clean, |h| async move { h }).await;
    assert_eq!(result.unwrap(), Action::await_change());
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_pinned_revision_is_looked_up_and_a_missing_one_is_looked_up_again_soon() {
    let a = with_ready_status(app(json!({"traffic": {"revisionName": "shop-00007"}})));
    let expected = a.clone();
    let (result, _) = run(a, |mut h| async move {
        expect_inspections(&mut h, steady([None, None, None])).await;
        expect_applies_except(&mut h, &expected, ready_ksvc(), &[]).await;
        expect_revision(&mut h, "True").await;
        let (accept, _, send) = expect_request(
            &mut h,
            Method::GET,
            "/apis/serving.knative.dev/v1/namespaces/web/revisions/shop-00007",
        )
        .await;
        assert!(
            accept.contains("as=PartialObjectMetadata"),
            "metadata only: {accept}"
        );
        not_found(send);
        h
    })
    .await;
    // Knative still serves: nothing to write yet, but look again in 30 s.
    assert_eq!(result.unwrap(), Action::requeue(status::PIN_REQUEUE));
}

const DS_URL: &str = "/apis/apps/v1/namespaces/web/daemonsets/shop-imgcache";
const CACHE_NP_URL: &str = "/apis/networking.k8s.io/v1/namespaces/web/networkpolicies/shop-imgcache";

/// The rendered image-prewarm object of `kind`.
fn rendered_prewarm(app: &NextApp, kind: &str) -> Value {
    rendered(app)
        .into_iter()
        .find(|o| o["kind"] == kind && o["metadata"]["labels"].get("apps.kn-next.dev/imgcache").is_some())
        .unwrap()
}

#[tokio::test]
async fn image_prewarm_applies_its_policy_then_its_daemonset_and_reports_coverage() {
    let a = app(json!({"scaling": {"imagePrewarm": true}}));
    let expected = a.clone();
    let (result, _) = run(a, |mut h| async move {
        expect_applies(&mut h, &expected, Value::Null).await;
        // The deny-all policy of the prewarm pods first, then the DaemonSet.
        expect_metadata(&mut h, CACHE_NP_URL, None).await;
        let (body, send) = expect(&mut h, Method::PATCH, &format!("{CACHE_NP_URL}{SSA}")).await;
        assert_eq!(body, rendered_prewarm(&expected, "NetworkPolicy"));
        reply(send, StatusCode::OK, &body);
        expect_metadata(&mut h, DS_URL, None).await;
        let (body, send) = expect(&mut h, Method::PATCH, &format!("{DS_URL}{SSA}")).await;
        assert_eq!(body, rendered_prewarm(&expected, "DaemonSet"));
        assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], UID);
        let mut live = body.clone();
        live["metadata"]["generation"] = json!(4);
        live["status"] = json!({"observedGeneration": 4, "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3, "numberMisscheduled": 0, "updatedNumberScheduled": 3, "numberReady": 2});
        reply(send, StatusCode::OK, &live);
        let note = expect_reconciled(&mut h).await;
        assert!(
            note.ends_with(", NetworkPolicy shop-imgcache, DaemonSet shop-imgcache"),
            "{note}"
        );
        let status = expect_status(&mut h).await;
        let cache = condition(&status, "ImageCacheReady");
        assert_eq!(
            (cache["status"].as_str(), cache["reason"].as_str(), cache["message"].as_str()),
            (Some("False"), Some("Pulling"), Some("2/3 node(s) hold the app image"))
        );
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(status::NOT_READY_REQUEUE));
}

#[tokio::test]
async fn image_prewarm_switched_off_deletes_what_this_app_controls_and_drops_the_condition() {
    let on = app(json!({"scaling": {"imagePrewarm": true}}));
    let observed = status::Observed {
        image_cache: Some(status::ImageCache::Applied { desired: 1, ready: 1 }),
        ..status::Observed::default()
    };
    let mut a = app(json!({"scaling": {"imagePrewarm": false}}));
    a.status = Some(status::applied(&on, &observed, now()).status);
    let expected = a.clone();
    let (result, _) = run(a, |mut h| async move {
        expect_inspections(&mut h, steady([None, None, None])).await;
        expect_applies_except(&mut h, &expected, Value::Null, &[]).await;
        expect_metadata(
            &mut h,
            CACHE_NP_URL,
            Some(found("cache-np-uid", knext_labels(), Some(UID))),
        )
        .await;
        let (body, send) = expect(&mut h, Method::DELETE, &format!("{CACHE_NP_URL}?")).await;
        assert_eq!(body["preconditions"]["uid"], "cache-np-uid");
        reply(
            send,
            StatusCode::OK,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        );
        // Another owner's DaemonSet of that name is left alone.
        expect_metadata(&mut h, DS_URL, Some(found("ds-uid", json!({}), Some("d-uid")))).await;
        let note = expect_reconciled(&mut h).await;
        assert_eq!(note, "Deleted NetworkPolicy web/shop-imgcache");
        let status = expect_status(&mut h).await;
        assert!(
            status["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["type"] != "ImageCacheReady"),
            "{status}"
        );
        h
    })
    .await;
    assert!(result.is_ok());
}

#[tokio::test]
async fn an_image_prewarm_failure_is_a_condition_and_an_event_never_a_failed_pass() {
    let a = app(json!({"scaling": {"imagePrewarm": true}}));
    let expected = a.clone();
    let (result, _) = run(a, |mut h| async move {
        expect_applies(&mut h, &expected, ready_ksvc()).await;
        expect_metadata(&mut h, CACHE_NP_URL, None).await;
        let (body, send) = expect(&mut h, Method::PATCH, &format!("{CACHE_NP_URL}{SSA}")).await;
        reply(send, StatusCode::OK, &body);
        expect_metadata(&mut h, DS_URL, None).await;
        let (_, send) = expect(&mut h, Method::PATCH, &format!("{DS_URL}{SSA}")).await;
        reply(
            send,
            StatusCode::FORBIDDEN,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
                    "message": "daemonsets.apps is forbidden"}),
        );
        expect_revision(&mut h, "True").await;
        let event = expect_event(&mut h).await;
        assert_eq!(event["reason"], "ImagePrewarmFailed");
        assert!(event["note"].as_str().unwrap().starts_with("apply DaemonSet web/shop-imgcache: "), "{event}");
        expect_reconciled(&mut h).await;
        let status = expect_status(&mut h).await;
        assert_eq!(condition(&status, "Ready")["status"], "True");
        assert_eq!(condition(&status, "Degraded")["status"], "False");
        let cache = condition(&status, "ImageCacheReady");
        assert_eq!(
            (cache["status"].as_str(), cache["reason"].as_str()),
            (Some("False"), Some("ReconcileFailed"))
        );
        h
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(status::IMAGE_CACHE_RETRY));
}

#[tokio::test]
async fn an_open_warm_window_raises_min_scale_and_the_pass_comes_back_at_its_end() {
    // now() is Sunday 2026-11-29 11:00 UTC, 12:00 in Berlin.
    let a = app(json!({"scaling": {"minScale": 1, "maxScale": 5, "warmSchedule": [
        {"start": "0 9 * * *", "end": "30 12 * * *", "replicas": 3, "timezone": "Europe/Berlin"},
        {"start": "0 8 * * 1-5", "end": "0 18 * * 1-5", "replicas": 5},
    ]}}));
    let expected = a.clone();
    let (result, _) = run(a, |mut h| async move {
        let applied = expect_applies(&mut h, &expected, ready_ksvc()).await;
        let ksvc = applied.iter().find(|o| o["kind"] == "Service").unwrap();
        assert_eq!(
            ksvc["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"], "3",
            "the weekday window is closed on a Sunday"
        );
        expect_revision(&mut h, "True").await;
        expect_reconciled(&mut h).await;
        expect_status(&mut h).await;
        h
    })
    .await;
    // The Berlin window ends at 12:30 local, 11:30 UTC.
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(30 * 60)));
}
