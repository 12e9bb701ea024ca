//! `knext operator`: the runtime reconciler. It watches NextApps and reconciles each into the objects
//! the core renderers produce ([`reconcile`]), with a status that tells the truth ([`status`]).
//!
//! Process: find the cluster (kubeconfig or in-cluster) → check within 30 s that the API server answers
//! and the NextApp CRD is installed (else exit 1 naming the server and how to install the CRD) → serve
//! `/healthz`, `/readyz` and `/metrics` → with `--leader-elect`, wait for the Lease ([`leader`]) → run
//! the controller → on SIGTERM or SIGINT finish in-flight reconciles, release the Lease, stop the
//! servers, exit 0; a hard cap of [`SHUTDOWN_CAP`] (below the pod's 30 s grace period) exits 1. A
//! leader that cannot renew its Lease exits 1 at once, so it never reconciles beside a new leader.
//! Logs are JSON lines on stderr (`RUST_LOG` filters, default `info`).

pub mod cleanup;
pub mod finalizer;
pub mod image_cache;
pub mod image_policy;
pub mod leader;
pub mod metrics;
pub mod ownership;
pub mod reconcile;
pub mod status;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, ListParams};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::watch;

use crate::admin_http as http;
use crate::api::{self, NextApp, labels, operator};

/// Longest time the startup checks may take.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Reconciles running at once (a burst of changes queues instead of fanning out without bound).
pub const CONCURRENCY: u16 = 16;
/// Longest time a graceful shutdown may take (the pod's grace period is 30 s).
pub const SHUTDOWN_CAP: Duration = Duration::from_secs(20);

/// Options of `knext operator`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Watch NextApps in this namespace only (default: every namespace).
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Elect a leader through a coordination.k8s.io Lease; only the leader reconciles.
    #[arg(long)]
    pub leader_elect: bool,
    /// Namespace of the leader-election Lease (default: the pod's, else the kubeconfig's namespace).
    #[arg(long, env = operator::ENV_POD_NAMESPACE, value_name = "NS")]
    pub lease_namespace: Option<String>,
    /// This replica's identity in the Lease and in events (default: the host name).
    #[arg(long, env = operator::ENV_POD_NAME, value_name = "NAME")]
    pub identity: Option<String>,
    /// Where to serve Prometheus metrics (`/metrics`).
    #[arg(long, default_value = "0.0.0.0:8080", value_name = "ADDR")]
    pub metrics_addr: SocketAddr,
    /// Where to serve `/healthz` and `/readyz`.
    #[arg(long, default_value = "0.0.0.0:8081", value_name = "ADDR")]
    pub health_addr: SocketAddr,
    /// knext's own image, digest-pinned: the image-prewarm DaemonSet's init container copies `/knext`
    /// from it (default: the image this build pins). The install bundle passes the operator's image.
    #[arg(long, value_name = "REF")]
    pub knext_image: Option<String>,
    /// The cluster-wide default signature (`knext install --signature-*`).
    #[command(flatten)]
    pub signature: crate::cli::SignatureArgs,
    /// `signature` checked at startup (not a flag).
    #[arg(skip)]
    pub default_signature: Option<crate::api::SignatureSpec>,
}

/// Runs the operator until it is told to stop; returns the exit code.
pub fn main(args: Args) -> ExitCode {
    crate::logs::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(args))
}

async fn run(mut args: Args) -> ExitCode {
    args.default_signature = match args.signature.spec() {
        Ok(spec) => spec.map(|(spec, warnings)| {
            for warning in warnings {
                tracing::warn!("default signature: {warning}");
            }
            spec
        }),
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Some(image) = &args.knext_image
        && let Err(e) = crate::policy::image::check_pinned(image)
    {
        tracing::error!("--{} {image:?}: {e}", operator::FLAG_KNEXT_IMAGE);
        return ExitCode::from(2);
    }
    let config = match kube::Config::infer().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(
                error = %e,
                "no Kubernetes configuration: run in a pod, or point KUBECONFIG at a kubeconfig"
            );
            return ExitCode::from(2);
        }
    };
    let server = config.cluster_url.to_string();
    let default_namespace = config.default_namespace.clone();
    let client = match Client::try_from(config) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(server, error = %e, "cannot build a client for the API server");
            return ExitCode::from(2);
        }
    };
    match tokio::time::timeout(STARTUP_TIMEOUT, startup_check(&client, args.namespace.as_deref())).await {
        Ok(Ok(())) => tracing::info!(server, "API server answers; the NextApp CRD is installed"),
        Ok(Err(problem)) => {
            tracing::error!(server, "{problem}");
            return ExitCode::from(1);
        }
        Err(_) => {
            tracing::error!(
                server,
                "the API server did not answer within {}s",
                STARTUP_TIMEOUT.as_secs()
            );
            return ExitCode::from(1);
        }
    }

    let (stop_servers, servers_stopped) = watch::channel(false);
    let health = Arc::new(http::Health::default());
    let metrics = Arc::new(metrics::Metrics::new());
    let mut servers = Vec::new();
    for (addr, routes) in [
        (args.health_addr, http::Routes::Health(health.clone())),
        (args.metrics_addr, http::Routes::Metrics(metrics.clone())),
    ] {
        match http::bind(addr).await {
            Ok(listener) => servers.push(tokio::spawn(http::serve(
                listener,
                routes,
                servers_stopped.clone(),
            ))),
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::from(2);
            }
        }
    }
    health.set_ready(true);

    let (terminate, terminated) = watch::channel(false);
    tokio::spawn(signals(terminate));

    let identity = args
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("knext-operator-{}", std::process::id()));
    let elector = args.leader_elect.then(|| {
        let ns = args.lease_namespace.clone().unwrap_or(default_namespace);
        leader::Elector::new(
            Api::<Lease>::namespaced(client.clone(), &ns),
            operator::LEASE,
            identity.clone(),
        )
    });

    let code = match &elector {
        Some(elector) => match acquire(elector, terminated.clone()).await {
            Some(()) => lead(elector, &client, &args, metrics.clone(), &identity, terminated).await,
            None => ExitCode::SUCCESS,
        },
        None => {
            metrics.set_leader(true);
            let (_never_lost, lost) = watch::channel(false);
            controller(&client, &args, metrics.clone(), &identity, terminated, lost).await
        }
    };
    health.set_ready(false);
    let _ = stop_servers.send(true);
    for s in servers {
        let _ = s.await;
    }
    tracing::info!(exit = ?code, "stopped");
    code
}

/// The API server answers and the NextApp CRD is installed (a list of NextApps works).
pub async fn startup_check(client: &Client, namespace: Option<&str>) -> Result<(), String> {
    client
        .apiserver_version()
        .await
        .map_err(|e| format!("the API server did not answer: {e}"))?;
    match nextapps(client, namespace)
        .list(&ListParams::default().limit(1))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Err(format!(
            "the NextApp CRD (nextapps.{}) is not installed: install it with `knext crd | kubectl \
             apply --server-side -f -`, or the whole operator with `knext install | kubectl apply \
             --server-side -f -`",
            api::GROUP
        )),
        Err(e) => Err(format!(
            "cannot list NextApps (is the operator's ClusterRole bound?): {e}"
        )),
    }
}

fn nextapps(client: &Client, namespace: Option<&str>) -> Api<NextApp> {
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Waits for the first SIGTERM or SIGINT. Later signals change nothing: the shutdown in progress
/// goes on (bounded by [`SHUTDOWN_CAP`]).
async fn signals(terminate: watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers");
        let _ = terminate.send(true);
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    let _ = terminate.send(true);
    // Keep the handlers installed so a second signal does not kill the process mid-drain.
    loop {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM again: the shutdown is already in progress"),
            _ = int.recv() => tracing::info!("SIGINT again: the shutdown is already in progress"),
        }
    }
}

/// Retries until this replica holds the Lease (`Some`) or a shutdown is requested (`None`).
async fn acquire(elector: &leader::Elector, mut terminated: watch::Receiver<bool>) -> Option<()> {
    tracing::info!(
        identity = elector.identity(),
        "waiting for the leader-election lease"
    );
    loop {
        match elector.try_acquire_or_renew(Timestamp::now()).await {
            Ok(true) => {
                tracing::info!(identity = elector.identity(), "acquired the lease: leading");
                return Some(());
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "lease attempt failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(leader::RETRY) => {}
            _ = terminated.wait_for(|t| *t) => return None,
        }
    }
}

/// Leads: renews the Lease in the background and runs the controller; releases the Lease after a
/// graceful stop.
async fn lead(
    elector: &leader::Elector,
    client: &Client,
    args: &Args,
    metrics: Arc<metrics::Metrics>,
    identity: &str,
    terminated: watch::Receiver<bool>,
) -> ExitCode {
    metrics.set_leader(true);
    let (lost_tx, lost) = watch::channel(false);
    let renewing = {
        let mut terminated = terminated.clone();
        async move {
            let mut last_renewal = Instant::now();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(leader::RETRY) => {}
                    _ = terminated.wait_for(|t| *t) => return,
                }
                match elector.try_acquire_or_renew(Timestamp::now()).await {
                    Ok(true) => last_renewal = Instant::now(),
                    Ok(false) => {
                        tracing::error!("another replica holds the lease: stepping down");
                        let _ = lost_tx.send(true);
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "lease renewal failed"),
                }
                if last_renewal.elapsed() > leader::RENEW_DEADLINE {
                    tracing::error!(
                        "could not renew the lease for {}s: stepping down",
                        leader::RENEW_DEADLINE.as_secs()
                    );
                    let _ = lost_tx.send(true);
                    return;
                }
            }
        }
    };
    let running = controller(client, args, metrics.clone(), identity, terminated, lost.clone());
    let (code, ()) = tokio::join!(running, renewing);
    metrics.set_leader(false);
    if *lost.borrow() {
        return ExitCode::from(1);
    }
    match tokio::time::timeout(Duration::from_secs(5), elector.release(Timestamp::now())).await {
        Ok(Ok(())) => tracing::info!("released the lease"),
        Ok(Err(e)) => tracing::warn!(error = %e, "could not release the lease; it expires on its own"),
        Err(_) => tracing::warn!("releasing the lease timed out; it expires on its own"),
    }
    code
}

/// Runs the controller until `terminated` (graceful, capped) or `lost` (leadership gone: exit 1).
async fn controller(
    client: &Client,
    args: &Args,
    metrics: Arc<metrics::Metrics>,
    identity: &str,
    terminated: watch::Receiver<bool>,
    lost: watch::Receiver<bool>,
) -> ExitCode {
    let ns = args.namespace.as_deref();
    let mut ctx = reconcile::Context::new(client.clone(), metrics, Some(identity.to_owned()));
    ctx.default_signature = args.default_signature.clone();
    ctx.knext_image = args.knext_image.clone();
    let ctx = Arc::new(ctx);
    let stop = {
        let (mut t, mut l) = (terminated.clone(), lost.clone());
        async move {
            tokio::select! {
                _ = t.wait_for(|v| *v) => {}
                _ = l.wait_for(|v| *v) => {}
            }
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        stop.await;
        let _ = stop_tx.send(());
    });
    let controller = build_controller(client, ns);
    let sweeping = tokio::spawn(sweeper(
        client.clone(),
        args.namespace.clone(),
        args.default_signature.is_some(),
        controller.store(),
        terminated.clone(),
        lost.clone(),
    ));
    let run = controller
        .graceful_shutdown_on(async move {
            let _ = stop_rx.await;
        })
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(nextapp = %obj, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "controller"),
            }
        });
    let mut run = std::pin::pin!(run);
    let mut t = terminated.clone();
    tokio::select! {
        () = &mut run => {
            sweeping.abort();
            return code_after(&lost);
        }
        _ = t.wait_for(|v| *v) => {}
    }
    sweeping.abort();
    // Terminating: the controller stops taking work and finishes what is in flight, within the cap.
    match tokio::time::timeout(SHUTDOWN_CAP, run).await {
        Ok(()) => code_after(&lost),
        Err(_) => {
            tracing::error!(
                "in-flight reconciles did not finish within {}s",
                SHUTDOWN_CAP.as_secs()
            );
            ExitCode::from(1)
        }
    }
}

/// Sweeps the ClusterImagePolicies of NextApps that are gone ([`image_policy::sweep`]) once the
/// controller's cache of NextApps is complete, then every [`image_policy::SWEEP_INTERVAL`], until a
/// shutdown or the loss of leadership. A failed sweep is logged and tried again at the next interval.
async fn sweeper(
    client: Client,
    namespace: Option<String>,
    default_signature: bool,
    apps: kube::runtime::reflector::Store<NextApp>,
    mut terminated: watch::Receiver<bool>,
    mut lost: watch::Receiver<bool>,
) {
    // NB: an incomplete cache would make every policy look orphaned.
    if apps.wait_until_ready().await.is_err() {
        return;
    }
    loop {
        let lookup = |ns: &str, name: &str| {
            apps.get(&ObjectRef::new(name).within(ns))
                .map(|app| image_policy::AppState {
                    uid: app.metadata.uid.clone().unwrap_or_default(),
                    // The cluster-wide default, or the app's own.
                    wants_signature: default_signature
                        || app.spec.security.as_ref().is_some_and(|s| s.signature.is_some()),
                })
        };
        match image_policy::sweep(&client, namespace.as_deref(), lookup).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "swept orphaned ClusterImagePolicies"),
            Err(e) => tracing::warn!(error = %e, "sweeping ClusterImagePolicies failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(image_policy::SWEEP_INTERVAL) => {}
            _ = terminated.wait_for(|v| *v) => return,
            _ = lost.wait_for(|v| *v) => return,
        }
    }
}

/// The controller: NextApps (all namespaces, or `namespace`), the Knative Services, ServiceAccounts,
/// NetworkPolicies and image-prewarm DaemonSets knext manages (label `app.kubernetes.io/managed-by=knext`, owner references
/// map them back), and Knative Revisions mapped to their NextApp by `serving.knative.dev/service`.
pub fn build_controller(client: &Client, namespace: Option<&str>) -> Controller<NextApp> {
    let children = watcher::Config::default()
        .labels(&format!("{}={}", labels::MANAGED_BY, api::MANAGED_BY))
        .any_semantic();
    let ksvc = reconcile::knative_service_resource();
    let revisions = reconcile::knative_revision_resource();
    let dynamic = |ar: &kube::core::ApiResource| -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
            None => Api::all_with(client.clone(), ar),
        }
    };
    let typed_sa: Api<ServiceAccount> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let typed_np: Api<NetworkPolicy> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let typed_ds: Api<DaemonSet> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    Controller::new(
        nextapps(client, namespace),
        watcher::Config::default().any_semantic(),
    )
    .with_config(kube::runtime::controller::Config::default().concurrency(CONCURRENCY))
    .owns_with(dynamic(&ksvc), ksvc.clone(), children.clone())
    .owns(typed_sa, children.clone())
    .owns(typed_np, children.clone())
    .owns(typed_ds, children)
    .watches_with(
        dynamic(&revisions),
        revisions.clone(),
        watcher::Config::default().any_semantic(),
        |rev: DynamicObject| {
            let service = rev.labels().get(labels::KNATIVE_SERVICE)?.clone();
            Some(ObjectRef::<NextApp>::new(&service).within(&rev.namespace()?))
        },
    )
}

fn code_after(lost: &watch::Receiver<bool>) -> ExitCode {
    if *lost.borrow() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
