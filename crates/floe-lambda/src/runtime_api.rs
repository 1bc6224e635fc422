//! The AWS Lambda Runtime API (2018-06-01), one server per execution environment
//! on its own loopback port: the runtime inside long-polls `/next` for an event and
//! posts the response or error; floe hands it invocations one at a time.
//!
//! The environment's processes are frozen (cgroup freezer) once the runtime has
//! waited in `/next` with nothing queued for `FREEZE_AFTER`, and thawed before an
//! invocation is handed over; both happen under one lock with the queue count and
//! an epoch bumped by every dispatch, so a freeze can never strand an invocation.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::peer::{GuardedListener, Members};

const PREFIX: &str = "/2018-06-01/runtime";

/// One invocation handed to the runtime.
#[derive(Debug)]
pub(crate) struct Invocation {
    pub id: String,
    pub payload: Bytes,
    pub deadline_ms: u64,
    pub function_arn: String,
    pub trace_id: String,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
    pub reply: oneshot::Sender<Reply>,
    /// Set when the runtime takes the event with `/next`.
    pub delivered: Arc<std::sync::atomic::AtomicBool>,
}

/// What the runtime answered for an invocation.
#[derive(Debug)]
pub(crate) enum Reply {
    Response(Bytes),
    Error(Bytes),
    /// The response was over the payload limit.
    TooLarge,
}

/// How the init phase ended, as the runtime reported it.
#[derive(Debug)]
pub(crate) enum InitReport {
    /// The runtime asked for its first event.
    Ready,
    Error {
        body: Bytes,
        error_type: Option<String>,
    },
}

/// Freezes and thaws the environment; a no-op without a cgroup.
pub(crate) trait Freezer: Send + Sync + 'static {
    fn freeze(&self);
    fn thaw(&self);
}

struct Shared {
    state: Mutex<ApiState>,
    next_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    max_payload: usize,
    /// Set once the environment's processes exist.
    freezer: std::sync::OnceLock<Box<dyn Freezer>>,
}

struct ApiState {
    init: Option<oneshot::Sender<InitReport>>,
    current: Option<(String, oneshot::Sender<Reply>)>,
    queued: usize,
    frozen: bool,
    /// Bumped whenever the environment gets work, so that a freeze scheduled while
    /// it was idle is called off.
    epoch: u64,
}

/// How long an environment waits with nothing to do before it is frozen: back to
/// back invocations then pay neither the freeze nor the thaw (≈0.1–0.3 ms each here).
const FREEZE_AFTER: std::time::Duration = std::time::Duration::from_millis(20);

/// The server of one environment; dropping it stops the server.
pub(crate) struct RuntimeApi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    next_tx: mpsc::UnboundedSender<Invocation>,
    server: tokio::task::JoinHandle<()>,
    members: tokio::sync::watch::Sender<Option<Arc<dyn Members>>>,
}

impl RuntimeApi {
    /// Starts a server on a fresh loopback port. The returned receiver reports how
    /// the init phase ends.
    pub async fn start(max_payload: usize) -> std::io::Result<(RuntimeApi, oneshot::Receiver<InitReport>)> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (init_tx, init_rx) = oneshot::channel();
        let (next_tx, next_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            state: Mutex::new(ApiState { init: Some(init_tx), current: None, queued: 0, frozen: false, epoch: 0 }),
            next_rx: tokio::sync::Mutex::new(next_rx),
            max_payload,
            freezer: std::sync::OnceLock::new(),
        });
        let app = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(&format!("{PREFIX}/invocation/{{id}}/response"), post(response))
            .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(error))
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(shared.clone());
        // Only the environment's processes may connect; replies go out without
        // waiting for Nagle's algorithm (REFERENCE: +43 ms otherwise).
        let (members, members_rx) = tokio::sync::watch::channel(None);
        let listener = GuardedListener { listener, members: members_rx };
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok((RuntimeApi { addr, shared, next_tx, server, members }, init_rx))
    }

    /// Tells the server which processes may connect.
    pub fn set_members(&self, members: Arc<dyn Members>) {
        self.members.send_replace(Some(members));
    }

    /// Lets the server freeze the environment while it waits with nothing to do.
    pub fn set_freezer(&self, freezer: Box<dyn Freezer>) {
        let _ = self.shared.freezer.set(freezer);
    }

    /// Queues an invocation for the runtime's next `/next`, thawing it first.
    pub fn dispatch(&self, invocation: Invocation) {
        {
            let mut st = self.shared.state.lock().expect("runtime api state");
            if st.frozen {
                if let Some(f) = self.shared.freezer.get() {
                    f.thaw();
                }
                st.frozen = false;
            }
            st.queued += 1;
            st.epoch += 1;
        }
        let _ = self.next_tx.send(invocation);
    }

    /// Forgets the invocation in progress (after a timeout), so that a late answer
    /// from the runtime is refused.
    pub fn abandon_current(&self) {
        self.shared.state.lock().expect("runtime api state").current = None;
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    {
        let mut st = shared.state.lock().expect("runtime api state");
        if let Some(init) = st.init.take() {
            let _ = init.send(InitReport::Ready);
        }
        // A runtime asking for more without answering: the caller gets an error.
        if let Some((id, reply)) = st.current.take() {
            let body = serde_json::json!({
                "errorMessage": format!(
                    "RequestId: {id} Error: the runtime asked for the next event without answering this one"
                ),
                "errorType": "Runtime.NoResponse",
            })
            .to_string();
            let _ = reply.send(Reply::Error(body.into()));
        }
        if st.queued == 0 && !st.frozen && shared.freezer.get().is_some() {
            let epoch = st.epoch;
            let shared = shared.clone();
            tokio::spawn(async move {
                tokio::time::sleep(FREEZE_AFTER).await;
                let mut st = shared.state.lock().expect("runtime api state");
                if st.epoch == epoch && st.queued == 0 && st.current.is_none() && !st.frozen {
                    if let Some(f) = shared.freezer.get() {
                        f.freeze();
                        st.frozen = true;
                    }
                }
            });
        }
    }
    let invocation = {
        let mut rx = shared.next_rx.lock().await;
        rx.recv().await
    };
    let Some(inv) = invocation else {
        // The environment is going away: Lambda's 500 tells the runtime to exit.
        return (StatusCode::INTERNAL_SERVER_ERROR, "environment shutting down").into_response();
    };
    {
        let mut st = shared.state.lock().expect("runtime api state");
        st.queued = st.queued.saturating_sub(1);
        inv.delivered.store(true, std::sync::atomic::Ordering::Release);
        st.current = Some((inv.id.clone(), inv.reply));
    }
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    put("lambda-runtime-aws-request-id", &inv.id);
    put("lambda-runtime-deadline-ms", &inv.deadline_ms.to_string());
    put("lambda-runtime-invoked-function-arn", &inv.function_arn);
    put("lambda-runtime-trace-id", &inv.trace_id);
    if let Some(c) = &inv.client_context {
        put("lambda-runtime-client-context", c);
    }
    if let Some(c) = &inv.cognito_identity {
        put("lambda-runtime-cognito-identity", c);
    }
    put("content-type", "application/json");
    (StatusCode::OK, headers, Body::from(inv.payload)).into_response()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, [("content-type", "application/json")], "{\"status\":\"OK\"}").into_response()
}

fn refused(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({ "errorMessage": message, "errorType": error_type }).to_string();
    (status, [("content-type", "application/json")], body).into_response()
}

/// Takes the reply channel of invocation `id` if it is the one in progress.
fn take_current(shared: &Shared, id: &str) -> Option<oneshot::Sender<Reply>> {
    let mut st = shared.state.lock().expect("runtime api state");
    match &st.current {
        Some((current, _)) if current == id => st.current.take().map(|(_, reply)| reply),
        _ => None,
    }
}

/// The body, or `Err` when it is over the payload limit.
async fn read_body(shared: &Shared, request: Request) -> Result<Bytes, ()> {
    match axum::body::to_bytes(request.into_body(), shared.max_payload + 1).await {
        Ok(body) if body.len() <= shared.max_payload => Ok(body),
        _ => Err(()),
    }
}

async fn response(State(shared): State<Arc<Shared>>, Path(id): Path<String>, request: Request) -> Response {
    let body = read_body(&shared, request).await;
    let Some(reply) = take_current(&shared, &id) else {
        return refused(StatusCode::FORBIDDEN, "InvalidStateTransition", &format!("no invocation {id} in progress"));
    };
    match body {
        Ok(body) => {
            let _ = reply.send(Reply::Response(body));
            accepted()
        }
        Err(_) => {
            let _ = reply.send(Reply::TooLarge);
            refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!("Exceeded maximum allowed payload size ({} bytes).", shared.max_payload),
            )
        }
    }
}

fn error_type(headers: &HeaderMap) -> Option<String> {
    headers.get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok()).map(str::to_string)
}

async fn error(State(shared): State<Arc<Shared>>, Path(id): Path<String>, request: Request) -> Response {
    let body = read_body(&shared, request).await.unwrap_or_else(|_| Bytes::from_static(b"{}"));
    let Some(reply) = take_current(&shared, &id) else {
        return refused(StatusCode::FORBIDDEN, "InvalidStateTransition", &format!("no invocation {id} in progress"));
    };
    let _ = reply.send(Reply::Error(body));
    accepted()
}

async fn init_error(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let error_type = error_type(request.headers());
    let body = read_body(&shared, request).await.unwrap_or_else(|_| Bytes::from_static(b"{}"));
    let init = shared.state.lock().expect("runtime api state").init.take();
    match init {
        Some(init) => {
            let _ = init.send(InitReport::Error { body, error_type });
            accepted()
        }
        None => refused(StatusCode::FORBIDDEN, "InvalidStateTransition", "the init phase is over"),
    }
}
