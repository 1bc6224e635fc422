//! The invoker: pools of warm environments per function, concurrency limits
//! (account, reserved, provisioned), cold starts, idle reclaim.
//!
//! Concurrency is the number of environments busy with an invocation (or starting
//! for one), as Lambda counts it. A function with reserved concurrency R never has
//! more than R; the others share what the account limit leaves after every
//! reservation. Past a limit the caller gets `TooManyRequestsException`.
//!
//! The limits hold across every node sharing the metadata engine: an invocation
//! first takes a slot of its node's cluster lease (`leases`, which says how), then
//! an environment of this node's pool.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use floe_meta::Meta;

use crate::environment::{Environment, HostConfig, InvokeContext, Outcome};
use crate::error::{LambdaError, Result};
use crate::leases::{LeaseSlot, Leases};
use crate::model::Function;

/// Limits and timings of one node's invoker.
#[derive(Clone, Debug)]
pub struct InvokerConfig {
    /// Most environments busy at once, across every function and every node
    /// (Lambda's default 1,000). Every node of a cluster must have the same.
    pub account_concurrency: u32,
    /// An idle environment is reclaimed after this long without work.
    pub idle_timeout: Duration,
    /// How often idle environments are looked at, and provisioned ones topped up.
    pub reap_interval: Duration,
    /// This node's name in the cluster's concurrency leases; unique per process.
    pub node_id: String,
    /// A lease not renewed for this long no longer counts (its node died).
    pub lease_ttl: Duration,
    /// How often leases are renewed and unused slots given back; well under half
    /// the ttl (a node stops using its slots without asking half a ttl after its
    /// last renewal).
    pub lease_interval: Duration,
}

impl Default for InvokerConfig {
    fn default() -> InvokerConfig {
        InvokerConfig {
            account_concurrency: 1000,
            idle_timeout: Duration::from_secs(600),
            reap_interval: Duration::from_secs(1),
            node_id: crate::leases::default_node_id(),
            lease_ttl: Duration::from_secs(10),
            lease_interval: Duration::from_secs(1),
        }
    }
}

#[derive(Default)]
struct Pool {
    idle: Vec<Arc<Environment>>,
    /// Environments busy with (or starting for) an invocation.
    busy: u32,
    /// Provisioned environments alive (idle or busy) and starting.
    provisioned_live: u32,
    provisioned_target: u32,
    revision: String,
    /// The definition and code to start provisioned environments with.
    latest: Option<(Arc<Function>, PathBuf)>,
}

#[derive(Default)]
struct State {
    pools: HashMap<String, Pool>,
}

struct Inner {
    host: HostConfig,
    config: InvokerConfig,
    state: Mutex<State>,
    leases: Arc<Leases>,
}

/// Counts of a function's environments, for `GetProvisionedConcurrencyConfig` and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub idle: u32,
    pub busy: u32,
    pub provisioned_live: u32,
    pub provisioned_ready: u32,
    /// Idle environments whose processes the freezer has stopped.
    pub frozen: u32,
}

#[derive(Clone)]
pub struct Invoker {
    inner: Arc<Inner>,
}

/// A concurrency slot taken by one invocation; released on drop, so that a caller
/// that goes away mid-invocation does not leak it.
struct Slot {
    inner: Arc<Inner>,
    name: String,
    env: Option<Arc<Environment>>,
    done: bool,
    /// The cluster's slot, given back after the environment is.
    _lease: LeaseSlot,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut st = self.inner.state.lock().expect("invoker state");
        let pool = st.pools.entry(self.name.clone()).or_default();
        pool.busy = pool.busy.saturating_sub(1);
        if let Some(env) = self.env.take() {
            if self.done && env.is_alive() && env.revision == pool.revision {
                pool.idle.push(env);
            } else {
                if env.provisioned {
                    pool.provisioned_live = pool.provisioned_live.saturating_sub(1);
                }
                env.retire();
            }
        }
    }
}

impl Invoker {
    /// Starts an invoker, its reaper and its leases' renewal; removes what a
    /// previous floe process left. Must run inside a Tokio runtime.
    pub fn new(host: HostConfig, config: InvokerConfig, meta: Meta) -> Invoker {
        let leases = Leases::new(
            meta,
            config.node_id.clone(),
            config.account_concurrency,
            config.lease_ttl,
            config.lease_interval,
        );
        let inner = Arc::new(Inner { host, config, state: Mutex::new(State::default()), leases });
        let weak = Arc::downgrade(&inner);
        tokio::spawn(reaper(weak));
        Invoker { inner }
    }

    pub fn host(&self) -> &HostConfig {
        &self.inner.host
    }

    pub fn config(&self) -> &InvokerConfig {
        &self.inner.config
    }

    /// Refuses a reservation of `reserved` when the other functions reserve
    /// `others`, if it would leave the account less than its unreserved minimum.
    pub fn check_reservation(&self, others: u32, reserved: u32) -> Result<()> {
        let account = self.inner.config.account_concurrency;
        // Lambda keeps at least 100 unreserved; scaled down for small accounts.
        let floor = (account / 10).min(100);
        if others.saturating_add(reserved) > account.saturating_sub(floor) {
            return Err(LambdaError::invalid(format!(
                "Specified ReservedConcurrentExecutions for function decreases account's \
                 UnreservedConcurrentExecution below its minimum value of [{floor}]."
            )));
        }
        Ok(())
    }

    /// Notes a function's reserved concurrency as stored (the leases' rounds
    /// re-read every function's, so changes through other nodes arrive too).
    pub fn set_reservation(&self, name: &str, reserved: Option<u32>) {
        self.inner.leases.note_reservation(name, reserved);
    }

    /// What the account has left unreserved, as this node last saw the
    /// reservations (at most a lease interval old).
    pub fn unreserved_concurrency(&self) -> u32 {
        self.inner.leases.unreserved()
    }

    /// This node's name in the cluster's leases.
    pub fn node_id(&self) -> &str {
        self.inner.leases.node_id()
    }

    /// Keeps `target` environments of the function initialized ahead of demand.
    pub fn set_provisioned(&self, function: Arc<Function>, code_dir: PathBuf, target: u32) {
        let mut st = self.inner.state.lock().expect("invoker state");
        let pool = st.pools.entry(function.name.clone()).or_default();
        // A newer definition (any update changes the revision, a concurrency
        // setting too) retires the older environments now, as an invocation
        // would; else top_up would wait for that invocation to start any.
        if !pool.revision.is_empty() && pool.revision != function.revision_id {
            for env in pool.idle.drain(..) {
                env.retire();
            }
            pool.provisioned_live = 0;
            pool.revision = function.revision_id.clone();
        }
        pool.provisioned_target = target;
        pool.latest = Some((function, code_dir));
        drop(st);
        top_up(&self.inner);
    }

    /// Stops keeping environments of the function ahead of demand; the reaper
    /// retires the provisioned ones left.
    pub fn clear_provisioned(&self, name: &str) {
        if let Some(pool) = self.inner.state.lock().expect("invoker state").pools.get_mut(name) {
            pool.provisioned_target = 0;
        }
    }

    pub fn stats(&self, name: &str) -> PoolStats {
        let st = self.inner.state.lock().expect("invoker state");
        st.pools
            .get(name)
            .map(|p| PoolStats {
                idle: p.idle.len() as u32,
                busy: p.busy,
                provisioned_live: p.provisioned_live,
                provisioned_ready: p.idle.iter().filter(|e| e.provisioned).count() as u32,
                frozen: p.idle.iter().filter(|e| e.is_frozen()).count() as u32,
            })
            .unwrap_or_default()
    }

    /// Retires every environment of a function (deleted, or its code replaced).
    pub fn retire_function(&self, name: &str) {
        let mut st = self.inner.state.lock().expect("invoker state");
        if let Some(pool) = st.pools.get_mut(name) {
            for env in pool.idle.drain(..) {
                env.retire();
            }
            pool.provisioned_live = 0;
            pool.provisioned_target = 0;
            pool.revision.clear();
        }
    }

    /// Retires every environment and gives the node's slots back to the cluster
    /// (node shutdown). Blocks on the metadata engine.
    pub fn shutdown(&self) {
        {
            let mut st = self.inner.state.lock().expect("invoker state");
            for pool in st.pools.values_mut() {
                pool.provisioned_target = 0;
                for env in pool.idle.drain(..) {
                    env.retire();
                }
            }
        }
        self.inner.leases.close();
    }

    /// Runs one invocation on a warm environment, or a new one.
    pub async fn invoke(
        &self,
        function: Arc<Function>,
        code_dir: PathBuf,
        payload: Bytes,
        context: &InvokeContext,
    ) -> Result<Outcome> {
        // The cluster's limits first (no metadata traffic while the node holds
        // enough slots), then an environment here.
        let lease = self.inner.leases.acquire(&function).await?;
        let mut slot = self.admit(&function, &code_dir, lease)?;
        for attempt in 0.. {
            let env = match slot.env.clone() {
                Some(env) => env,
                None => match Environment::start(&self.inner.host, function.clone(), code_dir.clone(), false).await {
                    Ok(env) => {
                        let env = Arc::new(env);
                        slot.env = Some(env.clone());
                        env
                    }
                    Err(failure) => {
                        let tail = format!("{}\n", failure.report);
                        return Ok(Outcome {
                            payload: failure.body,
                            function_error: Some("Unhandled".to_string()),
                            log_tail: tail.into_bytes(),
                            duration: Duration::ZERO,
                            init_duration: Some(failure.init_duration),
                        });
                    }
                },
            };
            match env.invoke(payload.clone(), context).await {
                Some((outcome, keep)) => {
                    slot.done = keep;
                    return Ok(outcome);
                }
                // The warm environment had died unseen: start a new one (a cold one
                // that dies before taking the event is not retried forever).
                None if attempt >= 2 => {
                    return Err(LambdaError::service("the execution environment exited before taking the event"))
                }
                None => {
                    slot.env = None;
                    let mut st = self.inner.state.lock().expect("invoker state");
                    if env.provisioned {
                        if let Some(pool) = st.pools.get_mut(&function.name) {
                            pool.provisioned_live = pool.provisioned_live.saturating_sub(1);
                        }
                    }
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// Takes a warm environment if one is idle, for an invocation holding `lease`.
    fn admit(&self, function: &Arc<Function>, code_dir: &std::path::Path, lease: LeaseSlot) -> Result<Slot> {
        let mut st = self.inner.state.lock().expect("invoker state");
        let pool = st.pools.entry(function.name.clone()).or_default();
        if pool.revision != function.revision_id {
            for env in pool.idle.drain(..) {
                env.retire();
            }
            pool.provisioned_live = 0;
            pool.revision = function.revision_id.clone();
        }
        pool.latest = Some((function.clone(), code_dir.to_path_buf()));
        // The lease already holds the limits across the cluster; this is the same
        // check on this node's own count, which a lease can never allow past.
        if function.reserved_concurrency.is_some_and(|r| pool.busy >= r) {
            return Err(LambdaError::throttled("ReservedFunctionConcurrentInvocationLimitExceeded"));
        }
        pool.busy += 1;
        let mut env = None;
        while let Some(candidate) = pool.idle.pop() {
            if candidate.is_alive() {
                env = Some(candidate);
                break;
            }
            if candidate.provisioned {
                pool.provisioned_live = pool.provisioned_live.saturating_sub(1);
            }
        }
        Ok(Slot { inner: self.inner.clone(), name: function.name.clone(), env, done: false, _lease: lease })
    }
}

/// Starts provisioned environments until every pool has its target.
fn top_up(inner: &Arc<Inner>) {
    let mut st = inner.state.lock().expect("invoker state");
    for (name, pool) in st.pools.iter_mut() {
        let Some((function, code_dir)) = pool.latest.clone() else { continue };
        if function.revision_id != pool.revision && !pool.revision.is_empty() {
            continue;
        }
        pool.revision = function.revision_id.clone();
        while pool.provisioned_live < pool.provisioned_target {
            pool.provisioned_live += 1;
            let inner = inner.clone();
            let (name, function, code_dir) = (name.clone(), function.clone(), code_dir.clone());
            tokio::spawn(async move {
                let started = Environment::start(&inner.host, function.clone(), code_dir, true).await;
                let mut st = inner.state.lock().expect("invoker state");
                let pool = st.pools.entry(name).or_default();
                match started {
                    Ok(env) if pool.revision == function.revision_id && pool.provisioned_target > 0 => {
                        pool.idle.push(Arc::new(env));
                    }
                    Ok(env) => {
                        pool.provisioned_live = pool.provisioned_live.saturating_sub(1);
                        env.retire();
                    }
                    Err(failure) => {
                        pool.provisioned_live = pool.provisioned_live.saturating_sub(1);
                        tracing::warn!(
                            "provisioned environment failed to initialize: {}",
                            String::from_utf8_lossy(&failure.body)
                        );
                    }
                }
            });
        }
    }
}

/// Reclaims idle environments and keeps provisioned ones topped up, until the
/// invoker is dropped.
async fn reaper(inner: Weak<Inner>) {
    loop {
        let interval = match inner.upgrade() {
            Some(inner) => inner.config.reap_interval,
            None => return,
        };
        tokio::time::sleep(interval).await;
        let Some(inner) = inner.upgrade() else { return };
        {
            let mut st = inner.state.lock().expect("invoker state");
            let now = Instant::now();
            for pool in st.pools.values_mut() {
                let mut kept = Vec::with_capacity(pool.idle.len());
                for env in pool.idle.drain(..) {
                    let idle_for = now.duration_since(*env.last_used.lock().expect("last used"));
                    let dead = !env.is_alive();
                    if dead || (!env.provisioned && idle_for >= inner.config.idle_timeout) {
                        if env.provisioned {
                            pool.provisioned_live = pool.provisioned_live.saturating_sub(1);
                        }
                        env.retire();
                    } else if env.provisioned && pool.provisioned_live > pool.provisioned_target {
                        pool.provisioned_live -= 1;
                        env.retire();
                    } else {
                        kept.push(env);
                    }
                }
                pool.idle = kept;
            }
        }
        top_up(&inner);
    }
}
