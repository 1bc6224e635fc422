//! Concurrency across the cluster: slot leases in the metadata engine.
//!
//! Several nodes share one metadata engine, and Lambda's limits hold for the whole
//! account: a function with reserved concurrency R never has more than R
//! environments busy at once, anywhere; the other functions share the account
//! limit minus every reservation. Each node holds *leases* on slots, one record per
//! (group, node): kind `concurrency-lease/<group>`, name = the node's id, body
//! `{count, expires_ms}`. A group is `fn:<name>` for a function with reserved
//! concurrency (its limit is R) or `unreserved` (its limit is the account's
//! concurrency minus the reservations of every function record). A kind per group
//! keeps the listing a grow reads to the group's own records.
//!
//! - **Fast path, no metadata traffic:** an invocation takes one of the slots its
//!   node already holds (`busy < held`). A warm invocation on a node that has
//!   been busy costs one mutex and a map lookup, nothing more.
//! - **Grow:** past what the node holds, one write transaction reads the other
//!   nodes' unexpired leases of the group and the group's limit (the function
//!   record, or every function record for the unreserved pool, so that a
//!   reservation made through another node counts) and raises this node's lease
//!   if `others + mine + 1 <= limit`; else the caller is throttled. PostgreSQL runs
//!   write transactions SERIALIZABLE and `Meta` retries conflicts, SQLite has one
//!   writer, so two nodes can never both take the last slot. Callers waiting for a
//!   grow at once are served by one transaction (it asks for as many slots as are
//!   waiting, as far as the limit allows).
//! - **Throttled:** once a grow found the group full, the next ones first look in
//!   read transactions (which never conflict, and on SQLite do not wait for the
//!   writer) and write only if they saw room, so that a flood of requests past
//!   the limit costs reads, not writes.
//! - **Shrink and renew:** every `lease_interval` a background round shrinks each
//!   lease to the peak busy count seen since the previous round (held-but-unused
//!   slots go back to the cluster within two rounds) and pushes every expiry
//!   `lease_ttl` ahead. A node killed without cleanup loses its slots when its
//!   leases expire; others ignore expired leases (and delete them a ttl later).
//!   The round also re-reads the limits: a group found over its limit (a
//!   reservation lowered or added elsewhere) leaves the fast path, so new
//!   invocations go through the limit check until the group is back under it.
//!   Invocations already running are never cut short, as in Lambda.
//! - **Shutdown** deletes the node's leases.
//!
//! Expiry times are wall-clock milliseconds written by the lease's node and read by
//! the others, as file system session heartbeats are: the nodes' clocks must agree
//! to well within the ttl (NTP). A node stops using its held slots on the fast
//! path half a ttl after its last successful renewal (a monotonic clock), so a
//! node cut off from the metadata engine stops before the others count it gone.
//!
//! Every node must run with the same `account_concurrency`. Provisioned
//! environments count when busy, like any other; idle ones take no slot (Lambda
//! also counts the allocation of provisioned concurrency; floe does not yet).
//!
//! Invariant (local): `busy <= held` for every group; `held` grows only in a grow,
//! and a round lowers it locally before writing the lower count, so the record
//! never shows fewer slots than the node uses. All lease writes of one node are
//! serialized by `writer` (never held with `state`'s lock taken first).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use floe_meta::{Meta, MetaTxn, Record};
use serde::{Deserialize, Serialize};

use crate::error::{LambdaError, Result};
use crate::model::Function;
use crate::time::now_millis;

const KIND_PREFIX: &str = "concurrency-lease/";
/// Where function definitions are (the service's records).
pub(crate) const FUNCTION_KIND: &str = "function";

/// Which pool a slot comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Group {
    /// A function with reserved concurrency.
    Function(String),
    Unreserved,
}

impl Group {
    fn of(function: &Function) -> Group {
        match function.reserved_concurrency {
            Some(_) => Group::Function(function.name.clone()),
            None => Group::Unreserved,
        }
    }

    fn kind(&self) -> String {
        match self {
            Group::Function(name) => format!("{KIND_PREFIX}fn:{name}"),
            Group::Unreserved => format!("{KIND_PREFIX}unreserved"),
        }
    }

    fn throttled(&self) -> LambdaError {
        match self {
            Group::Function(_) => LambdaError::throttled("ReservedFunctionConcurrentInvocationLimitExceeded"),
            Group::Unreserved => LambdaError::throttled("ConcurrentInvocationLimitExceeded"),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct LeaseBody {
    count: u32,
    /// Unix milliseconds, by the clock of the node holding the lease.
    expires_ms: u64,
}

/// What the limits need of a function record.
#[derive(Deserialize)]
struct Reservation {
    #[serde(default)]
    reserved_concurrency: Option<u32>,
}

/// One group's slots on this node.
#[derive(Default)]
struct Held {
    /// Slots in use by invocations.
    busy: u32,
    /// Slots the node's record holds (what the fast path may use).
    held: u32,
    /// Most slots in use at once since the last round.
    peak: u32,
    /// Callers waiting for a grow.
    waiting: u32,
    /// Whether a record of this node exists for the group.
    recorded: bool,
    /// Whether the group was within its limit at the last check.
    within: bool,
    /// The group's limit at the last check.
    limit: u32,
    /// When the last write of the record started (it expires a ttl later).
    renewed: Option<Instant>,
    /// The last grow found the group full.
    full: bool,
}

impl Held {
    fn fast(&self, hint: Option<u32>, ttl: Duration) -> bool {
        self.within
            && self.busy < self.held
            // A reservation lowered since the last check: ask the metadata engine.
            && hint.is_none_or(|r| r >= self.limit)
            && self.renewed.is_some_and(|at| at.elapsed() < ttl / 2)
    }

    fn take(&mut self) {
        self.busy += 1;
        self.peak = self.peak.max(self.busy);
    }
}

#[derive(Default)]
struct State {
    groups: HashMap<Group, Held>,
    /// Reserved concurrency of every function, as last read (or set here).
    reservations: HashMap<String, u32>,
    closed: bool,
}

pub(crate) struct Leases {
    meta: Meta,
    node_id: String,
    account: u32,
    ttl: Duration,
    state: Mutex<State>,
    /// Serializes this node's lease writes (grows, rounds, close).
    writer: Mutex<()>,
}

/// One slot taken by an invocation; given back (to the node's lease) on drop.
pub(crate) struct LeaseSlot {
    leases: Arc<Leases>,
    group: Group,
}

impl Drop for LeaseSlot {
    fn drop(&mut self) {
        let mut st = self.leases.state.lock().expect("lease state");
        if let Some(h) = st.groups.get_mut(&self.group) {
            h.busy = h.busy.saturating_sub(1);
        }
    }
}

/// A group's leases as read.
struct Tally {
    /// Slots of other nodes' unexpired leases.
    others: u32,
    mine: Option<Record>,
    /// Other nodes' leases expired for more than a ttl.
    gone: Vec<String>,
}

/// What a grow transaction decided.
enum Grant {
    /// The lease now holds `count` slots (or still does, renewed).
    Granted {
        count: u32,
        limit: u32,
        /// Whether every lease of the group fits in the limit (else held slots
        /// are not used without asking).
        within: bool,
    },
    Throttled,
}

impl Leases {
    /// Starts the node's leases and their background round (every `interval`).
    pub(crate) fn new(meta: Meta, node_id: String, account: u32, ttl: Duration, interval: Duration) -> Arc<Leases> {
        let leases = Arc::new(Leases {
            meta,
            node_id,
            account,
            ttl,
            state: Mutex::new(State::default()),
            writer: Mutex::new(()),
        });
        tokio::spawn(renewer(Arc::downgrade(&leases), interval));
        leases
    }

    /// Takes a slot for an invocation of `function` (its definition as just loaded),
    /// or says why not (`TooManyRequestsException`).
    pub(crate) async fn acquire(self: &Arc<Self>, function: &Function) -> Result<LeaseSlot> {
        let group = Group::of(function);
        let hint = function.reserved_concurrency;
        {
            let mut st = self.state.lock().expect("lease state");
            if st.closed {
                return Err(LambdaError::service("the node is shutting down"));
            }
            let h = st.groups.entry(group.clone()).or_default();
            // This node alone is at the reservation: no need to ask anyone.
            if hint.is_some_and(|r| h.busy >= r) {
                return Err(group.throttled());
            }
            if h.fast(hint, self.ttl) {
                h.take();
                return Ok(LeaseSlot { leases: self.clone(), group });
            }
            h.waiting += 1;
        }
        let leases = self.clone();
        tokio::task::spawn_blocking(move || leases.grow(group, hint)).await.map_err(LambdaError::service)?
    }

    /// Takes a slot the slow way: under the writer lock, a held slot if another
    /// grow got one meanwhile, else a transaction. Blocking.
    fn grow(self: &Arc<Self>, group: Group, hint: Option<u32>) -> Result<LeaseSlot> {
        let _writer = self.writer.lock().expect("lease writer");
        let (busy, held, waiting, full) = {
            let mut st = self.state.lock().expect("lease state");
            let closed = st.closed;
            let h = st.groups.entry(group.clone()).or_default();
            h.waiting = h.waiting.saturating_sub(1);
            if closed {
                return Err(LambdaError::service("the node is shutting down"));
            }
            if h.fast(hint, self.ttl) {
                h.take();
                return Ok(LeaseSlot { leases: self.clone(), group });
            }
            (h.busy, h.held, h.waiting + 1, h.full)
        };
        let started = Instant::now();
        let kind = group.kind();
        if full {
            // Read first: a flood past the limit costs no writes.
            let functions = match &group {
                Group::Function(name) => self.meta.record(FUNCTION_KIND, name)?.into_iter().collect(),
                Group::Unreserved => self.meta.records(FUNCTION_KIND)?,
            };
            let limit = self.limit(&group, hint, &functions)?;
            let tally = self.tally(self.meta.records(&kind)?, now_millis());
            if busy + 1 > limit.saturating_sub(tally.others) {
                return Err(group.throttled());
            }
        }
        let grant = self.meta.write_txn(|txn| {
            let functions = match &group {
                Group::Function(name) => txn.get_record(FUNCTION_KIND, name)?.into_iter().collect(),
                Group::Unreserved => txn.list_records(FUNCTION_KIND)?,
            };
            let limit = match self.limit(&group, hint, &functions) {
                Ok(limit) => limit,
                Err(e) => return Ok(Err(e)),
            };
            let now = now_millis();
            let (others, mine) = self.others(txn, &kind, now)?;
            let room = limit.saturating_sub(others);
            if busy + 1 > room {
                return Ok(Ok(Grant::Throttled));
            }
            // Held slots are enough (the group was over its limit, or the lease
            // was not renewed lately): renew them; else ask for every waiter.
            let count = if busy < held { held } else { (busy + waiting).max(busy + 1).min(room) };
            self.write(txn, &kind, mine, count, now)?;
            Ok(Ok(Grant::Granted { count, limit, within: others.saturating_add(count) <= limit }))
        })??;
        let mut st = self.state.lock().expect("lease state");
        let h = st.groups.entry(group.clone()).or_default();
        match grant {
            Grant::Granted { count, limit, within } => {
                // `count >= held`: a grow never lowers a lease (rounds do).
                h.held = h.held.max(count);
                h.limit = limit;
                h.within = within;
                h.recorded = true;
                h.renewed = Some(started);
                h.full = false;
                if h.busy < h.held {
                    h.take();
                    return Ok(LeaseSlot { leases: self.clone(), group });
                }
                Err(group.throttled())
            }
            Grant::Throttled => {
                h.full = true;
                Err(group.throttled())
            }
        }
    }

    /// The group's limit: the function's reservation (`functions` is its record, if
    /// any), or what every reservation leaves of the account's concurrency
    /// (`functions` is every function record).
    fn limit(&self, group: &Group, hint: Option<u32>, functions: &[Record]) -> Result<u32> {
        match group {
            Group::Function(_) => match functions.first() {
                Some(record) => Ok(parse_reservation(record)?.unwrap_or(0)),
                None => Ok(hint.unwrap_or(0)),
            },
            Group::Unreserved => {
                let mut reserved = 0u32;
                for record in functions {
                    reserved = reserved.saturating_add(parse_reservation(record)?.unwrap_or(0));
                }
                Ok(self.account.saturating_sub(reserved))
            }
        }
    }

    /// Reads a group's leases at `now`.
    fn tally(&self, records: Vec<Record>, now: u64) -> Tally {
        let mut tally = Tally { others: 0, mine: None, gone: Vec::new() };
        for record in records {
            if record.name == self.node_id {
                tally.mine = Some(record);
                continue;
            }
            // An unreadable lease counts as nothing: it cannot be renewed either.
            let Ok(lease) = serde_json::from_str::<LeaseBody>(&record.body) else { continue };
            if lease.expires_ms > now {
                tally.others = tally.others.saturating_add(lease.count);
            } else if now - lease.expires_ms > self.ttl.as_millis() as u64 {
                tally.gone.push(record.name);
            }
        }
        tally
    }

    /// Slots other nodes hold in the group (unexpired leases), and this node's
    /// record. Deletes leases expired for more than a ttl (their node is gone).
    fn others(&self, txn: &mut dyn MetaTxn, kind: &str, now: u64) -> floe_meta::Result<(u32, Option<Record>)> {
        let tally = self.tally(txn.list_records(kind)?, now);
        for name in &tally.gone {
            txn.delete_record(kind, name)?;
        }
        Ok((tally.others, tally.mine))
    }

    /// Writes this node's lease of `count` slots (deletes it at 0), expiring a ttl on.
    fn write(
        &self,
        txn: &mut dyn MetaTxn,
        kind: &str,
        mine: Option<Record>,
        count: u32,
        now: u64,
    ) -> floe_meta::Result<()> {
        if count == 0 {
            if mine.is_some() {
                txn.delete_record(kind, &self.node_id)?;
            }
            return Ok(());
        }
        let body = LeaseBody { count, expires_ms: now + self.ttl.as_millis() as u64 };
        let body = serde_json::to_string(&body).map_err(|e| floe_meta::MetaError::Backend(e.to_string()))?;
        let revision = mine.map_or(1, |r| r.revision + 1);
        txn.put_record(kind, &Record { name: self.node_id.clone(), body, revision })
    }

    /// One background round: shrinks every lease to its peak use since the last
    /// round, renews it, re-reads the limits and the reservations. Blocking.
    fn round(&self) -> Result<()> {
        let _writer = self.writer.lock().expect("lease writer");
        let started = Instant::now();
        let targets: Vec<(Group, u32, bool)> = {
            let mut st = self.state.lock().expect("lease state");
            if st.closed {
                return Ok(());
            }
            st.groups.retain(|_, h| h.busy > 0 || h.held > 0 || h.waiting > 0 || h.recorded);
            st.groups
                .iter_mut()
                .map(|(g, h)| {
                    // Lowered here first, so that the fast path never uses a slot
                    // the record is about to give back.
                    let target = h.peak.max(h.busy);
                    h.held = target;
                    h.peak = h.busy;
                    (g.clone(), target, h.recorded)
                })
                .collect()
        };
        let (reservations, checked) = if targets.is_empty() {
            (reservations(&self.meta.records(FUNCTION_KIND)?)?, Vec::new())
        } else {
            self.meta.write_txn(|txn| {
                let reservations = match reservations(&txn.list_records(FUNCTION_KIND)?) {
                    Ok(r) => r,
                    Err(e) => return Ok(Err(e)),
                };
                let unreserved =
                    self.account.saturating_sub(reservations.values().fold(0u32, |a, r| a.saturating_add(*r)));
                let now = now_millis();
                let mut checked = Vec::with_capacity(targets.len());
                for (group, target, _) in &targets {
                    let limit = match group {
                        Group::Function(name) => reservations.get(name).copied().unwrap_or(0),
                        Group::Unreserved => unreserved,
                    };
                    let kind = group.kind();
                    let (others, mine) = self.others(txn, &kind, now)?;
                    self.write(txn, &kind, mine, *target, now)?;
                    checked.push((limit, others.saturating_add(*target) <= limit));
                }
                Ok(Ok((reservations, checked)))
            })??
        };
        let mut st = self.state.lock().expect("lease state");
        st.reservations = reservations;
        for ((group, target, _), (limit, within)) in targets.iter().zip(checked) {
            if let Some(h) = st.groups.get_mut(group) {
                h.recorded = *target > 0;
                h.limit = limit;
                h.within = within;
                h.renewed = Some(started);
            }
        }
        Ok(())
    }

    /// Deletes this node's leases and takes no more slots (node shutdown). Blocking.
    pub(crate) fn close(&self) {
        let _writer = self.writer.lock().expect("lease writer");
        let kinds: Vec<String> = {
            let mut st = self.state.lock().expect("lease state");
            st.closed = true;
            st.groups.iter().filter(|(_, h)| h.recorded).map(|(g, _)| g.kind()).collect()
        };
        let deleted = self.meta.write_txn(|txn| {
            for kind in &kinds {
                if txn.get_record(kind, &self.node_id)?.is_some() {
                    txn.delete_record(kind, &self.node_id)?;
                }
            }
            Ok(())
        });
        if let Err(e) = deleted {
            tracing::warn!("the concurrency leases of node {} stay until they expire: {e}", self.node_id);
        }
    }

    /// Records a reservation set through this node (the round re-reads them all).
    pub(crate) fn note_reservation(&self, name: &str, reserved: Option<u32>) {
        let mut st = self.state.lock().expect("lease state");
        match reserved {
            Some(r) => st.reservations.insert(name.to_string(), r),
            None => st.reservations.remove(name),
        };
    }

    /// What the account has left unreserved, as of the last round.
    pub(crate) fn unreserved(&self) -> u32 {
        let st = self.state.lock().expect("lease state");
        self.account.saturating_sub(st.reservations.values().fold(0u32, |a, r| a.saturating_add(*r)))
    }

    pub(crate) fn node_id(&self) -> &str {
        &self.node_id
    }
}

fn parse_reservation(record: &Record) -> Result<Option<u32>> {
    serde_json::from_str::<Reservation>(&record.body)
        .map(|r| r.reserved_concurrency)
        .map_err(|e| LambdaError::service(format!("stored function {} is unreadable: {e}", record.name)))
}

fn reservations(records: &[Record]) -> Result<HashMap<String, u32>> {
    let mut out = HashMap::new();
    for record in records {
        if let Some(r) = parse_reservation(record)? {
            out.insert(record.name.clone(), r);
        }
    }
    Ok(out)
}

/// Sum of every function's reservation but `except`'s, read in the transaction
/// (for `PutFunctionConcurrency`'s account floor).
pub(crate) fn reserved_by_others(txn: &mut dyn MetaTxn, except: &str) -> floe_meta::Result<Result<u32>> {
    let records = txn.list_records(FUNCTION_KIND)?;
    Ok(reservations(&records)
        .map(|all| all.iter().filter(|(n, _)| n.as_str() != except).fold(0u32, |a, (_, r)| a.saturating_add(*r))))
}

/// A node id unique enough for a cluster: host, process and a random part.
pub(crate) fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_string());
    format!("{host}-{}-{:08x}", std::process::id(), rand::random::<u32>())
}

/// Runs a round every `interval` until the leases are dropped or closed.
async fn renewer(leases: Weak<Leases>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(strong) = leases.upgrade() else { return };
        if strong.state.lock().expect("lease state").closed {
            return;
        }
        let node = strong.node_id.clone();
        match tokio::task::spawn_blocking(move || strong.round()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("node {node}: concurrency leases not renewed: {e}"),
            Err(e) => tracing::warn!("node {node}: concurrency lease round failed: {e}"),
        }
    }
}
