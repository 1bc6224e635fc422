//! `floe up`: one node on the embedded defaults (or the configured backends), out
//! of one data directory — the AWS-compatible API, the HTTP triggers, functions and
//! their access point mounts — until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use floe_api::ApiState;
use floe_node::{Node, NodeAnnouncement, NodeRegistry, NodeSettings};

use crate::config::DataDir;
use crate::credentials;
use crate::node_config::{NodeFile, UpConfig};

#[derive(Args, Clone, Default)]
pub struct UpArgs {
    /// Address of the AWS-compatible API (default 127.0.0.1:9780).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Address of the HTTP trigger listener (default 127.0.0.1:9781).
    #[arg(long, value_name = "ADDR")]
    pub trigger_listen: Option<SocketAddr>,
    /// Region in ARNs and signatures (default us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// Account id in ARNs: 12 digits (default 000000000000).
    #[arg(long)]
    pub account_id: Option<String>,
    /// Most environments busy at once on this node (default 1000).
    #[arg(long)]
    pub account_concurrency: Option<u32>,
    /// MiB of the node-local disk cache of file blocks, 0 for none (default 1024).
    #[arg(long, value_name = "MIB")]
    pub cache_size: Option<u64>,
    /// Seconds after which the file system sessions of a node that died (and the
    /// locks they held) expire (default 60).
    #[arg(long, value_name = "SECONDS")]
    pub session_ttl: Option<f64>,
    /// A TOML file with these settings (default: <data dir>/floe.toml when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
}

pub fn run(mut paths: DataDir, args: UpArgs) -> Result<()> {
    if let Some(file) = &args.config {
        paths.use_config_file(file)?;
    }
    let paths = &paths;
    let config = UpConfig::load(paths, &args)?;
    // One node per data directory: the lock is held for the node's whole life.
    let lock = crate::node_config::NodeLock::take(paths)?;
    // Listen first, so that a busy port fails before anything starts.
    let api_listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {} (--listen)", config.listen))?;
    let trigger_listener = std::net::TcpListener::bind(config.trigger_listen)
        .with_context(|| format!("cannot listen on {} (--trigger-listen)", config.trigger_listen))?;
    api_listener.set_nonblocking(true)?;
    trigger_listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let result = runtime.block_on(serve(paths, config, api_listener, trigger_listener, &lock));
    runtime.shutdown_timeout(Duration::from_secs(5));
    drop(lock);
    result
}

async fn serve(
    paths: &DataDir,
    config: UpConfig,
    api_listener: std::net::TcpListener,
    trigger_listener: std::net::TcpListener,
    lock: &crate::node_config::NodeLock,
) -> Result<()> {
    let meta = paths.meta()?;
    let objects = tokio::task::block_in_place(|| paths.objects())?;
    let key = credentials::ensure(&meta, paths)?;
    let deployment = config.deployment.clone();
    let node_dir = paths.root.join("node");
    std::fs::create_dir_all(&node_dir).with_context(|| format!("cannot create {}", node_dir.display()))?;
    // One id for the node's registry record and its concurrency leases, kept across
    // restarts so that a restarted node rejoins as itself.
    let node_id = NodeRegistry::node_id_in(&node_dir)
        .with_context(|| format!("cannot read or make the node id in {}", node_dir.display()))?;
    let mut settings = NodeSettings::new(node_dir, deployment.clone());
    settings.functions.invoker.node_id = node_id.clone();
    settings.functions.invoker.account_concurrency = config.account_concurrency;
    settings.fs.session_ttl = config.session_ttl;
    settings.fs.disk_cache = (config.cache_size > 0).then(|| (paths.root.join("cache"), config.cache_size << 20));
    let node = Node::open(meta.clone(), objects, settings).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let api_addr = api_listener.local_addr()?;
    let trigger_addr = trigger_listener.local_addr()?;
    let endpoint = format!("http://{api_addr}");
    let triggers = format!("http://{trigger_addr}");
    let profile = credentials::write_profile(&key, &deployment.region, &endpoint);
    lock.publish(&NodeFile {
        pid: std::process::id(),
        endpoint: endpoint.clone(),
        triggers: triggers.clone(),
        region: deployment.region.clone(),
        account_id: deployment.account_id.clone(),
    })?;
    node.triggers().set_endpoint(&triggers);
    let registry = NodeRegistry::register(
        meta,
        NodeAnnouncement {
            id: node_id,
            api_endpoint: endpoint.clone(),
            trigger_endpoint: triggers.clone(),
            object_store: paths.store_description(),
            beat_interval: floe_node::registry::DEFAULT_BEAT_INTERVAL,
        },
    )
    .await;
    let registry = match registry {
        Ok(r) => r,
        Err(e) => {
            let stopping = node.clone();
            tokio::task::spawn_blocking(move || stopping.shutdown()).await?;
            lock.unpublish();
            anyhow::bail!("cannot register the node: {e}");
        }
    };
    let state = ApiState { node: node.clone(), credentials: Arc::new(vec![key.clone()]) };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let api =
        serve_until(tokio::net::TcpListener::from_std(api_listener)?, floe_api::api_router(state), stop_rx.clone());
    let trig = serve_until(
        tokio::net::TcpListener::from_std(trigger_listener)?,
        floe_api::trigger_router(node.clone()),
        stop_rx,
    );
    let api = tokio::spawn(api);
    let trig = tokio::spawn(trig);
    print_banner(paths, &endpoint, &triggers, &deployment.region, &profile);
    wait_for_signal().await?;
    eprintln!("floe: stopping (waiting up to 10 s for requests in progress)");
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        let _ = api.await;
        let _ = trig.await;
    })
    .await;
    if drained.is_err() {
        eprintln!("floe: requests still running after 10 s; their environments are stopped");
    }
    // Environments first (they bind the mounts), then the mounts.
    tokio::task::spawn_blocking(move || node.shutdown()).await?;
    if let Err(e) = registry.deregister().await {
        eprintln!("floe: the node's record stays in the registry ({e}); floe status shows it down");
    }
    lock.unpublish();
    eprintln!("floe: stopped");
    Ok(())
}

async fn serve_until(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
}

async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

fn print_banner(paths: &DataDir, endpoint: &str, triggers: &str, region: &str, profile: &credentials::Profile) {
    let mut text = format!(
        "floe is up\n  data      {}\n  metadata  {}\n  objects   {}\n  API       {endpoint}   (AWS Lambda, EFS, API Gateway v2; region {region})\n  triggers  {triggers}\n",
        paths.root.display(),
        paths.meta_description(),
        paths.store_description(),
    );
    match &profile.written {
        Ok(files) => text.push_str(&format!(
            "  profile   'floe' in {} (credentials, region, endpoint_url)\n\n\
             try:\n  aws --profile floe lambda list-functions\n  \
             aws --profile floe efs describe-file-systems\n  \
             python3 -c \"import boto3; print(boto3.Session(profile_name='floe').client('lambda').list_functions())\"\n",
            files
        )),
        Err(e) => text.push_str(&format!(
            "  profile   not written ({e}); credentials are in {}\n",
            paths.root.join("credentials").display()
        )),
    }
    text.push_str("stop with Ctrl-C (or SIGTERM)\n");
    print!("{text}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
}
