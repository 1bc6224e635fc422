//! The functions service: every operation on functions, called by the CLI now and
//! by the HTTP API next, so that no behaviour is written twice. Definitions are
//! records of the metadata engine; code packages are objects (by SHA-256) unpacked
//! once per node; invocations go to the invoker.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use floe_meta::{Expect, Meta, MetaError};
use floe_sandbox::Sandbox;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::sync::mpsc;

use crate::code::{unpack, Package};
use crate::environment::{HostConfig, InvokeContext};
use crate::error::{ErrorKind, LambdaError, Result};
use crate::invoker::{Invoker, InvokerConfig, PoolStats};
use crate::model::{validate_name, Function, Limits, Settings};
use crate::mounts::{HostDirectories, MountSources};

const KIND: &str = crate::leases::FUNCTION_KIND;

/// Retries of asynchronous invocations, as Lambda: two more attempts after a
/// function error, then the event is dropped (logged).
#[derive(Clone, Debug)]
pub struct AsyncConfig {
    pub retry_delays: Vec<Duration>,
    /// Throttled events are retried with backoff until they are this old.
    pub max_event_age: Duration,
    pub queue_capacity: usize,
}

impl Default for AsyncConfig {
    fn default() -> AsyncConfig {
        AsyncConfig {
            retry_delays: vec![Duration::from_secs(60), Duration::from_secs(120)],
            max_event_age: Duration::from_secs(6 * 3600),
            queue_capacity: 10_000,
        }
    }
}

/// Everything a node needs to run functions.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The node's own directory: unpacked code, bootstraps, log streams.
    pub node_dir: PathBuf,
    pub region: String,
    pub account_id: String,
    /// Host interpreters; found on the host when not given.
    pub python: Option<PathBuf>,
    pub node: Option<PathBuf>,
    pub limits: Limits,
    pub invoker: InvokerConfig,
    pub init_timeout: Duration,
    pub freeze_idle: bool,
    pub asynchronous: AsyncConfig,
    /// Sandboxes kept prepared (cgroup joined, pid namespace entered) for cold starts.
    pub prepared_sandboxes: usize,
    /// `/tmp` on a loop-mounted ext4 of the ephemeral size (else a tmpfs).
    pub disk_tmp: bool,
}

impl NodeConfig {
    pub fn new(node_dir: impl Into<PathBuf>) -> NodeConfig {
        NodeConfig {
            node_dir: node_dir.into(),
            region: "us-east-1".to_string(),
            account_id: "000000000000".to_string(),
            python: None,
            node: None,
            limits: Limits::default(),
            invoker: InvokerConfig::default(),
            init_timeout: Duration::from_secs(10),
            freeze_idle: true,
            asynchronous: AsyncConfig::default(),
            prepared_sandboxes: 2,
            disk_tmp: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

impl InvocationType {
    pub fn parse(s: &str) -> Result<InvocationType> {
        match s {
            "RequestResponse" => Ok(InvocationType::RequestResponse),
            "Event" => Ok(InvocationType::Event),
            "DryRun" => Ok(InvocationType::DryRun),
            _ => Err(LambdaError::invalid(format!(
                "1 validation error detected: Value '{s}' at 'invocationType' failed to satisfy constraint: \
                 Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
            ))),
        }
    }
}

#[derive(Clone, Debug)]
pub struct InvokeRequest {
    pub payload: Bytes,
    pub invocation_type: InvocationType,
    /// `LogType: Tail`: return the last 4 KB of the invocation's log.
    pub tail: bool,
    /// Base64 JSON, passed to the runtime as `Lambda-Runtime-Client-Context`.
    pub client_context: Option<String>,
}

impl InvokeRequest {
    pub fn sync(payload: impl Into<Bytes>) -> InvokeRequest {
        InvokeRequest {
            payload: payload.into(),
            invocation_type: InvocationType::RequestResponse,
            tail: false,
            client_context: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct InvokeResponse {
    /// 200 (RequestResponse), 202 (Event), 204 (DryRun).
    pub status: u16,
    pub payload: Bytes,
    /// `X-Amz-Function-Error`.
    pub function_error: Option<String>,
    /// `X-Amz-Log-Result`: base64 of the log tail.
    pub log_result: Option<String>,
    pub executed_version: &'static str,
    pub request_id: String,
    pub init_duration: Option<Duration>,
    pub duration: Duration,
}

struct AsyncEvent {
    name: String,
    payload: Bytes,
    context: InvokeContext,
    enqueued: Instant,
}

struct Inner {
    meta: Meta,
    objects: Arc<dyn ObjectStore>,
    config: NodeConfig,
    invoker: Invoker,
    mount_sources: Arc<dyn MountSources>,
    async_tx: mpsc::Sender<AsyncEvent>,
    /// Events accepted and not yet finished (run, or dropped after retries).
    events_pending: std::sync::atomic::AtomicUsize,
    events_done: tokio::sync::Notify,
}

/// The functions service of one node.
#[derive(Clone)]
pub struct Functions {
    inner: Arc<Inner>,
}

fn find_interpreter(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

impl Functions {
    /// Opens the service on a node: checks the sandbox's privileges (one-line error
    /// when missing), installs the bootstraps, restores concurrency settings and
    /// provisioned environments. Must run inside a Tokio runtime.
    pub async fn open(meta: Meta, objects: Arc<dyn ObjectStore>, config: NodeConfig) -> Result<Functions, OpenError> {
        Functions::open_with_mounts(meta, objects, config, Arc::new(HostDirectories)).await
    }

    /// [`Functions::open`], with the node's own meaning of mount sources.
    pub async fn open_with_mounts(
        meta: Meta,
        objects: Arc<dyn ObjectStore>,
        config: NodeConfig,
        mount_sources: Arc<dyn MountSources>,
    ) -> Result<Functions, OpenError> {
        let sandbox = Sandbox::new().map_err(|e| OpenError(format!("functions cannot run here: {e}")))?;
        let dir = &config.node_dir;
        let io = |what: &str, e: std::io::Error| OpenError(format!("{what}: {e}"));
        let python = config
            .python
            .clone()
            .or_else(|| find_interpreter(&["/usr/bin/python3", "/usr/local/bin/python3"]))
            .unwrap_or_else(|| PathBuf::from("/usr/bin/python3"));
        let node = config
            .node
            .clone()
            .or_else(|| find_interpreter(&["/usr/bin/node", "/usr/bin/nodejs", "/usr/local/bin/node"]))
            .unwrap_or_else(|| PathBuf::from("/usr/bin/node"));
        let runtime_dir =
            crate::runtimes::install(&dir.join("runtime"), &python).map_err(|e| io("install the bootstraps", e))?;
        std::fs::create_dir_all(dir.join("sandbox-root")).map_err(|e| io("create the sandbox staging directory", e))?;
        crate::environment::write_etc(&dir.join("etc")).map_err(|e| io("write the environments' /etc files", e))?;
        // Sandboxes of a floe process that died go before new ones are prepared.
        let stale = sandbox.remove_stale();
        if stale > 0 {
            tracing::info!("removed {stale} sandboxes left by a floe process that is gone");
        }
        let tmp_disks = if config.disk_tmp {
            match floe_sandbox::TmpDisks::new(&dir.join("tmp-disks"), 2) {
                Ok(disks) => Some(disks),
                Err(reason) => {
                    tracing::warn!("{reason}; /tmp of functions is a tmpfs, which counts against their memory");
                    None
                }
            }
        } else {
            None
        };
        let mut base = floe_sandbox::SandboxSpec::new("/", Vec::new());
        base.staging_dir = dir.join("sandbox-root");
        base.tmp_bytes = 512 << 20;
        let host = HostConfig {
            sandboxes: floe_sandbox::SandboxPool::new(sandbox, config.prepared_sandboxes, base, tmp_disks),
            staging_dir: dir.join("sandbox-root"),
            runtime_dir,
            etc_dir: dir.join("etc"),
            python,
            node,
            region: config.region.clone(),
            account_id: config.account_id.clone(),
            logs_dir: dir.join("logs"),
            max_payload: config.limits.max_payload_bytes,
            init_timeout: config.init_timeout,
            freeze_idle: config.freeze_idle,
        };
        let invoker = Invoker::new(host, config.invoker.clone(), meta.clone());
        let (async_tx, async_rx) = mpsc::channel(config.asynchronous.queue_capacity.max(1));
        let functions = Functions {
            inner: Arc::new(Inner {
                meta,
                objects,
                config,
                invoker,
                mount_sources,
                async_tx,
                events_pending: Default::default(),
                events_done: Default::default(),
            }),
        };
        for f in functions.list_functions().map_err(|e| OpenError(e.to_string()))? {
            functions.inner.invoker.set_reservation(&f.name, f.reserved_concurrency);
            if f.provisioned_concurrency > 0 {
                let target = f.provisioned_concurrency;
                match functions.runnable(f.clone()).await {
                    Ok((function, code)) => functions.inner.invoker.set_provisioned(function, code, target),
                    Err(e) => tracing::warn!("function {}: {e}", f.name),
                }
            }
        }
        tokio::spawn(async_dispatcher(Arc::downgrade(&functions.inner), async_rx));
        Ok(functions)
    }

    pub fn invoker(&self) -> &Invoker {
        &self.inner.invoker
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.config.limits
    }

    pub fn function_arn(&self, name: &str) -> String {
        self.inner.invoker.host().function_arn(name)
    }

    fn load(&self, name: &str) -> Result<(Function, u64)> {
        validate_name(name).map_err(|_| LambdaError::not_found(name))?;
        let record = self.inner.meta.record(KIND, name)?.ok_or_else(|| LambdaError::not_found(name))?;
        let function: Function = serde_json::from_str(&record.body)
            .map_err(|e| LambdaError::service(format!("stored function {name} is unreadable: {e}")))?;
        Ok((function, record.revision))
    }

    pub fn get_function(&self, name: &str) -> Result<Function> {
        Ok(self.load(name)?.0)
    }

    pub fn list_functions(&self) -> Result<Vec<Function>> {
        self.inner
            .meta
            .records(KIND)?
            .into_iter()
            .map(|r| {
                serde_json::from_str(&r.body)
                    .map_err(|e| LambdaError::service(format!("stored function {} is unreadable: {e}", r.name)))
            })
            .collect()
    }

    /// The function as an environment runs it: its code unpacked on this node and
    /// its mount sources turned into host directories (mounted if need be).
    async fn runnable(&self, mut function: Function) -> Result<(Arc<Function>, PathBuf)> {
        let code = self.code_dir(&function).await?;
        if !function.mounts.is_empty() {
            let sources = Arc::clone(&self.inner.mount_sources);
            let mut mounts = std::mem::take(&mut function.mounts);
            function.mounts = tokio::task::spawn_blocking(move || {
                for m in &mut mounts {
                    m.source = sources.resolve(&m.source, &m.local_mount_path)?.display().to_string();
                }
                Ok::<_, LambdaError>(mounts)
            })
            .await
            .map_err(LambdaError::service)??;
        }
        Ok((Arc::new(function), code))
    }

    /// Refuses a package that would take the functions' code past the account's
    /// code storage, `replacing` the package of that function.
    fn check_code_storage(&self, package: &Package, replacing: Option<&str>) -> Result<()> {
        let others: u64 =
            self.list_functions()?.iter().filter(|f| Some(f.name.as_str()) != replacing).map(|f| f.code_size).sum();
        let max = self.inner.config.limits.max_total_code_bytes;
        if others + package.zip.len() as u64 > max {
            return Err(LambdaError::new(
                ErrorKind::CodeStorageExceeded,
                format!("Code storage limit exceeded: {others} bytes stored, {} more, limit {max}", package.zip.len()),
            ));
        }
        Ok(())
    }

    /// The code package a function runs (its zip), as stored.
    pub async fn code_package(&self, function: &Function) -> Result<Bytes> {
        let key = Package::object_key(&function.code_sha256);
        let object =
            self.inner.objects.get(&key).await.map_err(|e| LambdaError::service(format!("code package: {e}")))?;
        object.bytes().await.map_err(|e| LambdaError::service(format!("code package: {e}")))
    }

    fn check_mounts(&self, function: &Function) -> Result<()> {
        function.mounts.iter().try_for_each(|m| self.inner.mount_sources.check(&m.source))
    }

    /// Stores the package in object storage (once per content) and unpacks it here.
    async fn store_code(&self, package: &Package) -> Result<()> {
        let key = Package::object_key(&package.sha256);
        if self.inner.objects.head(&key).await.is_err() {
            self.inner
                .objects
                .put(&key, package.zip.clone().into())
                .await
                .map_err(|e| LambdaError::service(format!("store the code package: {e}")))?;
        }
        let dest = self.code_path(&package.sha256);
        if !dest.is_dir() {
            let zip = package.zip.clone();
            tokio::task::spawn_blocking(move || unpack(&zip, &dest))
                .await
                .map_err(LambdaError::service)?
                .map_err(|e| LambdaError::service(format!("unpack the code package: {e}")))?;
        }
        Ok(())
    }

    fn code_path(&self, sha256: &str) -> PathBuf {
        self.inner.config.node_dir.join("code").join(sha256)
    }

    /// The function's unpacked code on this node, fetched from object storage if
    /// another node stored it.
    async fn code_dir(&self, function: &Function) -> Result<PathBuf> {
        let dest = self.code_path(&function.code_sha256);
        if dest.is_dir() {
            return Ok(dest);
        }
        let key = Package::object_key(&function.code_sha256);
        let zip = self
            .inner
            .objects
            .get(&key)
            .await
            .map_err(|e| LambdaError::service(format!("code package of {}: {e}", function.name)))?
            .bytes()
            .await
            .map_err(|e| LambdaError::service(format!("code package of {}: {e}", function.name)))?;
        let target = dest.clone();
        tokio::task::spawn_blocking(move || unpack(&zip, &target))
            .await
            .map_err(LambdaError::service)?
            .map_err(|e| LambdaError::service(format!("unpack the code package: {e}")))?;
        Ok(dest)
    }

    pub async fn create_function(&self, name: &str, settings: Settings, package: Package) -> Result<Function> {
        validate_name(name)?;
        if settings.runtime.is_none() {
            return Err(LambdaError::invalid("Runtime is required for .zip deployment packages"));
        }
        if settings.handler.is_none() {
            return Err(LambdaError::invalid("Handler is required for .zip deployment packages"));
        }
        let mut function = Function {
            name: name.to_string(),
            runtime: String::new(),
            handler: String::new(),
            memory_mb: 128,
            timeout_s: 3,
            ephemeral_mb: 512,
            environment: Default::default(),
            mounts: Vec::new(),
            description: String::new(),
            role: None,
            code_sha256: package.sha256.clone(),
            code_size: package.zip.len() as u64,
            last_modified: now_lambda(),
            revision_id: crate::environment::request_id(),
            reserved_concurrency: None,
            provisioned_concurrency: 0,
        };
        function.apply(settings)?;
        self.check_mounts(&function)?;
        if self.inner.meta.record(KIND, name)?.is_some() {
            return Err(exists(name));
        }
        self.check_code_storage(&package, None)?;
        self.store_code(&package).await?;
        let body = serde_json::to_string(&function).map_err(LambdaError::service)?;
        match self.inner.meta.put_record(KIND, name, &body, Expect::Absent) {
            Ok(_) => Ok(function),
            Err(MetaError::Exists) => Err(exists(name)),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies `change` to the stored function and writes it back if nobody wrote
    /// in between (else `ResourceConflictException`, as Lambda during an update).
    fn update(&self, name: &str, change: impl FnOnce(&mut Function) -> Result<()>) -> Result<Function> {
        let (mut function, revision) = self.load(name)?;
        change(&mut function)?;
        function.last_modified = now_lambda();
        function.revision_id = crate::environment::request_id();
        let body = serde_json::to_string(&function).map_err(LambdaError::service)?;
        match self.inner.meta.put_record(KIND, name, &body, Expect::Revision(revision)) {
            Ok(_) => Ok(function),
            Err(MetaError::Stale) => Err(LambdaError::new(
                ErrorKind::ResourceConflict,
                format!(
                    "The operation cannot be performed at this time. An update is in progress for resource: {}",
                    self.function_arn(name)
                ),
            )),
            Err(MetaError::NotFound) => Err(LambdaError::not_found(name)),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn update_function_code(&self, name: &str, package: Package) -> Result<Function> {
        self.load(name)?;
        self.check_code_storage(&package, Some(name))?;
        self.store_code(&package).await?;
        let function = self.update(name, |f| {
            f.code_sha256 = package.sha256.clone();
            f.code_size = package.zip.len() as u64;
            Ok(())
        })?;
        self.after_update(&function).await;
        Ok(function)
    }

    pub async fn update_function_configuration(&self, name: &str, settings: Settings) -> Result<Function> {
        let checks_mounts = settings.mounts.is_some();
        let function = self.update(name, |f| {
            f.apply(settings)?;
            if checks_mounts {
                self.check_mounts(f)?;
            }
            Ok(())
        })?;
        self.after_update(&function).await;
        Ok(function)
    }

    /// Environments of the old revision are retired at their next use; provisioned
    /// ones are replaced now.
    async fn after_update(&self, function: &Function) {
        if function.provisioned_concurrency > 0 {
            match self.runnable(function.clone()).await {
                Ok((f, code)) => self.inner.invoker.set_provisioned(f, code, function.provisioned_concurrency),
                Err(e) => tracing::warn!("function {}: provisioned environments not replaced: {e}", function.name),
            }
        }
    }

    pub async fn delete_function(&self, name: &str) -> Result<()> {
        validate_name(name).map_err(|_| LambdaError::not_found(name))?;
        let record = match self.inner.meta.delete_record(KIND, name, Expect::Present) {
            Ok(r) => r,
            Err(MetaError::NotFound) => return Err(LambdaError::not_found(name)),
            Err(e) => return Err(e.into()),
        };
        self.inner.invoker.retire_function(name);
        self.inner.invoker.set_reservation(name, None);
        // The package goes when no function uses it any more.
        if let Ok(function) = serde_json::from_str::<Function>(&record.body) {
            let used = self.list_functions()?.iter().any(|f| f.code_sha256 == function.code_sha256);
            if !used {
                let _ = self.inner.objects.delete(&Package::object_key(&function.code_sha256)).await;
            }
        }
        Ok(())
    }

    /// `PutFunctionConcurrency`. The account's unreserved minimum is checked
    /// against every function's reservation in the same transaction as the write,
    /// so that two nodes reserving at once cannot both pass it.
    pub fn put_function_concurrency(&self, name: &str, reserved: u32) -> Result<u32> {
        validate_name(name).map_err(|_| LambdaError::not_found(name))?;
        let invoker = &self.inner.invoker;
        self.inner.meta.write_txn(|txn| {
            let Some(record) = txn.get_record(KIND, name)? else {
                return Ok(Err(LambdaError::not_found(name)));
            };
            let others = match crate::leases::reserved_by_others(txn, name)? {
                Ok(others) => others,
                Err(e) => return Ok(Err(e)),
            };
            if let Err(e) = invoker.check_reservation(others, reserved) {
                return Ok(Err(e));
            }
            let mut function: Function = match serde_json::from_str(&record.body) {
                Ok(f) => f,
                Err(e) => return Ok(Err(LambdaError::service(format!("stored function {name} is unreadable: {e}")))),
            };
            function.reserved_concurrency = Some(reserved);
            function.last_modified = now_lambda();
            function.revision_id = crate::environment::request_id();
            let body = match serde_json::to_string(&function) {
                Ok(body) => body,
                Err(e) => return Ok(Err(LambdaError::service(e))),
            };
            txn.put_record(KIND, &floe_meta::Record { name: name.to_string(), body, revision: record.revision + 1 })?;
            Ok(Ok(()))
        })??;
        invoker.set_reservation(name, Some(reserved));
        Ok(reserved)
    }

    pub fn get_function_concurrency(&self, name: &str) -> Result<Option<u32>> {
        Ok(self.load(name)?.0.reserved_concurrency)
    }

    pub fn delete_function_concurrency(&self, name: &str) -> Result<()> {
        self.update(name, |f| {
            f.reserved_concurrency = None;
            Ok(())
        })?;
        self.inner.invoker.set_reservation(name, None);
        Ok(())
    }

    /// `PutProvisionedConcurrencyConfig` (on `$LATEST`, the only version).
    pub async fn put_provisioned_concurrency(&self, name: &str, target: u32) -> Result<()> {
        if target == 0 {
            return Err(LambdaError::invalid("ProvisionedConcurrentExecutions must be at least 1"));
        }
        let function = self.update(name, |f| {
            if f.reserved_concurrency.is_some_and(|r| r < target) {
                return Err(LambdaError::invalid(
                    "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function",
                ));
            }
            f.provisioned_concurrency = target;
            Ok(())
        })?;
        let (function, code) = self.runnable(function).await?;
        self.inner.invoker.set_provisioned(function, code, target);
        Ok(())
    }

    pub fn delete_provisioned_concurrency(&self, name: &str) -> Result<()> {
        let function = self.update(name, |f| {
            f.provisioned_concurrency = 0;
            Ok(())
        })?;
        self.inner.invoker.clear_provisioned(&function.name);
        Ok(())
    }

    /// Sandboxes prepared and waiting for a cold start.
    pub fn prepared_sandboxes(&self) -> usize {
        self.inner.invoker.host().sandboxes.ready()
    }

    /// Whether no sandbox or `/tmp` disk is being prepared in the background.
    pub fn background_settled(&self) -> bool {
        self.inner.invoker.host().sandboxes.settled()
    }

    pub fn pool_stats(&self, name: &str) -> PoolStats {
        self.inner.invoker.stats(name)
    }

    /// `Invoke`.
    pub async fn invoke(&self, name: &str, request: InvokeRequest) -> Result<InvokeResponse> {
        let (function, _) = self.load(name)?;
        let limits = &self.inner.config.limits;
        let max = match request.invocation_type {
            InvocationType::Event => limits.max_async_payload_bytes,
            _ => limits.max_payload_bytes,
        };
        if request.payload.len() > max {
            return Err(LambdaError::new(
                ErrorKind::RequestTooLarge,
                format!(
                    "{} byte payload is too large for the {} invocation type (limit {max} bytes)",
                    request.payload.len(),
                    match request.invocation_type {
                        InvocationType::Event => "Event",
                        _ => "RequestResponse",
                    }
                ),
            ));
        }
        let payload = if request.payload.iter().all(u8::is_ascii_whitespace) {
            Bytes::from_static(b"{}")
        } else {
            serde_json::from_slice::<serde::de::IgnoredAny>(&request.payload).map_err(|e| {
                LambdaError::new(
                    ErrorKind::InvalidRequestContent,
                    format!("Could not parse request body into json: {e}"),
                )
            })?;
            request.payload.clone()
        };
        let mut context = InvokeContext::new();
        if let Some(encoded) = &request.client_context {
            // Invoke takes it base64-encoded; the runtime gets the JSON.
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
                .filter(|json| serde_json::from_slice::<serde_json::Value>(json).is_ok_and(|v| v.is_object()))
                .ok_or_else(|| LambdaError::invalid("Client context must be a valid Base64-encoded JSON object."))?;
            context.client_context = Some(String::from_utf8_lossy(&decoded).into_owned());
        }
        let mut response = InvokeResponse {
            status: 200,
            payload: Bytes::new(),
            function_error: None,
            log_result: None,
            executed_version: crate::model::LATEST,
            request_id: context.request_id.clone(),
            init_duration: None,
            duration: Duration::ZERO,
        };
        match request.invocation_type {
            InvocationType::DryRun => {
                response.status = 204;
                Ok(response)
            }
            InvocationType::Event => {
                if function.reserved_concurrency == Some(0) {
                    return Err(LambdaError::throttled("ReservedFunctionConcurrentInvocationLimitExceeded"));
                }
                let event = AsyncEvent { name: name.to_string(), payload, context, enqueued: Instant::now() };
                self.inner.events_pending.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if self.inner.async_tx.try_send(event).is_err() {
                    self.event_finished();
                    return Err(LambdaError::throttled("EventQueueFull"));
                }
                response.status = 202;
                Ok(response)
            }
            InvocationType::RequestResponse => {
                let (function, code) = self.runnable(function).await?;
                let outcome = self.inner.invoker.invoke(function, code, payload, &context).await?;
                response.payload = outcome.payload;
                response.function_error = outcome.function_error;
                response.init_duration = outcome.init_duration;
                response.duration = outcome.duration;
                if request.tail {
                    response.log_result = Some(base64::engine::general_purpose::STANDARD.encode(&outcome.log_tail));
                }
                Ok(response)
            }
        }
    }

    /// The function's log streams on this node, oldest first.
    pub fn log_files(&self, name: &str) -> Result<Vec<PathBuf>> {
        validate_name(name).map_err(|_| LambdaError::not_found(name))?;
        Ok(crate::logs::stream_files(&self.inner.config.node_dir.join("logs").join(name)))
    }

    fn event_finished(&self) {
        self.inner.events_pending.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.events_done.notify_waiters();
    }

    /// Waits until every accepted asynchronous event has finished.
    pub async fn drain_events(&self) {
        loop {
            let done = self.inner.events_done.notified();
            if self.inner.events_pending.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            done.await;
        }
    }

    /// Stops every environment (node shutdown).
    pub fn shutdown(&self) {
        self.inner.invoker.shutdown();
    }

    pub fn node_dir(&self) -> &Path {
        &self.inner.config.node_dir
    }
}

fn exists(name: &str) -> LambdaError {
    LambdaError::new(ErrorKind::ResourceConflict, format!("Function already exist: {name}"))
}

fn now_lambda() -> String {
    crate::time::Utc::from_millis(crate::time::now_millis()).lambda()
}

/// Runs queued events: each in its own task, retried after a function error
/// (twice, after the configured delays) and after throttling (with backoff, until
/// the event is too old).
async fn async_dispatcher(inner: std::sync::Weak<Inner>, mut rx: mpsc::Receiver<AsyncEvent>) {
    while let Some(event) = rx.recv().await {
        let Some(strong) = inner.upgrade() else { return };
        let functions = Functions { inner: strong };
        tokio::spawn(async move {
            run_event(functions.clone(), event).await;
            functions.event_finished();
        });
    }
}

async fn run_event(functions: Functions, event: AsyncEvent) {
    let config = functions.inner.config.asynchronous.clone();
    let mut errors = 0usize;
    let mut backoff = Duration::from_millis(100);
    loop {
        let function = match functions.get_function(&event.name) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("asynchronous event {} dropped: {e}", event.context.request_id);
                return;
            }
        };
        let result = match functions.runnable(function).await {
            Ok((function, code)) => {
                // Each attempt is a new invocation with its own request id in the logs,
                // but the event keeps the id it was accepted with.
                functions.inner.invoker.invoke(function, code, event.payload.clone(), &event.context).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(outcome) if outcome.function_error.is_none() => return,
            Ok(_) => {
                let Some(delay) = config.retry_delays.get(errors) else {
                    tracing::warn!(
                        "asynchronous event {} of {} failed {} times; dropped",
                        event.context.request_id,
                        event.name,
                        errors + 1
                    );
                    return;
                };
                errors += 1;
                tokio::time::sleep(*delay).await;
            }
            Err(e) if e.kind == ErrorKind::TooManyRequests && event.enqueued.elapsed() < config.max_event_age => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
            Err(e) => {
                tracing::warn!("asynchronous event {} of {} dropped: {e}", event.context.request_id, event.name);
                return;
            }
        }
    }
}

/// Why the functions service cannot run on this node (one line).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpenError(String);
