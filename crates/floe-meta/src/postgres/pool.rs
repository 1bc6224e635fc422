//! A few connections, driven by a Tokio runtime of the store's own.
//!
//! Callers are synchronous and may themselves run on a Tokio runtime's thread, where
//! Tokio's `block_on` panics. So the store's runtime only drives the connections
//! (socket I/O, in one task per connection), and a caller waits for its statement
//! with `futures_executor::block_on`, which parks the calling thread, works on any
//! thread and needs no runtime: a statement's future only talks to its connection's
//! task through channels. The one wake-up per answer goes straight from the
//! connection task to the caller. Opening a connection needs the runtime's sockets, so
//! [`Pool::on_runtime`] runs it there and the caller waits on a standard channel.
//! TLS, as the URL's `sslmode` and `sslrootcert` ask, is [`super::tls`]'s.

use super::tls::{self, Connector, TlsParams};
use crate::url::OpenError;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio_postgres::config::Host;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, Statement};

/// How long start-up waits for a server that does not answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One open connection with the statements prepared on it.
pub(super) struct Conn {
    pub(super) client: Arc<Client>,
    pub(super) statements: HashMap<String, Statement>,
}

/// Why no connection could be had.
#[derive(Debug)]
pub(super) enum PoolError {
    Postgres(tokio_postgres::Error),
    /// The store's runtime is shutting down (the store is being dropped).
    Stopped,
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PoolError::Postgres(e) => f.write_str(&super::describe(e)),
            PoolError::Stopped => f.write_str("the PostgreSQL store is shutting down"),
        }
    }
}

struct Slots {
    idle: Vec<Conn>,
    /// Connections open or being opened, idle or checked out.
    open: usize,
}

pub(super) struct Pool {
    config: Config,
    tls: Connector,
    tls_params: TlsParams,
    size: usize,
    slots: Mutex<Slots>,
    returned: Condvar,
    /// `None` only while dropping.
    runtime: Option<Runtime>,
}

impl Pool {
    pub(super) fn new(url: &str, size: usize) -> Result<Pool, OpenError> {
        let bad_url = |reason: String| OpenError::BadUrl { url: redact(url), reason };
        let (rest, tls_params) = tls::split(url).map_err(bad_url)?;
        let mut config: Config = rest.parse().map_err(|e| bad_url(super::describe(&e)))?;
        config.ssl_mode(tls_params.mode.for_tokio_postgres());
        if config.get_hosts().iter().all(|h| matches!(h, Host::Unix(_))) {
            // PostgreSQL has no TLS on its Unix sockets; libpq does not ask there, in
            // any sslmode.
            config.ssl_mode(SslMode::Disable);
        }
        let tls = Connector::new(&tls_params, &server_name(&config))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("floe");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("floe-postgres")
            .enable_all()
            .build()
            .map_err(|e| OpenError::Postgres {
                server: server_name(&config),
                reason: format!("cannot start the connection threads: {e}"),
            })?;
        Ok(Pool {
            config,
            tls,
            tls_params,
            size,
            slots: Mutex::new(Slots { idle: Vec::new(), open: 0 }),
            returned: Condvar::new(),
            runtime: Some(runtime),
        })
    }

    /// Runs `fut` on the store's runtime and waits for it; `None` if the runtime is
    /// shutting down. Safe to call from any thread, a runtime's included.
    pub(super) fn on_runtime<F>(&self, fut: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.runtime.as_ref()?.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().ok()
    }

    /// An idle connection, a new one while fewer than `size` are open, or else the
    /// first one given back.
    pub(super) fn checkout(&self) -> Result<Conn, PoolError> {
        let mut slots = self.lock();
        loop {
            if let Some(conn) = slots.idle.pop() {
                if !conn.client.is_closed() {
                    return Ok(conn);
                }
                // The server went away (restart, idle timeout): open another.
                slots.open -= 1;
                continue;
            }
            if slots.open < self.size {
                slots.open += 1;
                drop(slots);
                let conn = self.connect();
                if conn.is_err() {
                    self.lock().open -= 1;
                    self.returned.notify_one();
                }
                return conn;
            }
            slots = self.returned.wait(slots).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Returns a connection; one in an unknown state (a failed rollback, a lost
    /// server) is closed instead, and a new one opened when needed.
    pub(super) fn give_back(&self, conn: Conn, healthy: bool) {
        let mut slots = self.lock();
        if healthy && !conn.client.is_closed() {
            slots.idle.push(conn);
        } else {
            slots.open -= 1;
        }
        drop(slots);
        self.returned.notify_one();
    }

    fn connect(&self) -> Result<Conn, PoolError> {
        let (config, tls) = (self.config.clone(), self.tls.clone());
        let connected = self.on_runtime(async move {
            let (client, connection) = config.connect(tls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %super::describe(&e), "PostgreSQL connection lost");
                }
            });
            Ok::<_, tokio_postgres::Error>(client)
        });
        match connected {
            Some(Ok(client)) => Ok(Conn { client: Arc::new(client), statements: HashMap::new() }),
            Some(Err(e)) => Err(PoolError::Postgres(e)),
            None => Err(PoolError::Stopped),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        // Slots hold no invariant a panic could break halfway.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the store connects, for messages (never the password).
    pub(super) fn server(&self) -> String {
        server_name(&self.config)
    }

    /// Says what to fix when the first connection fails.
    pub(super) fn open_error(&self, e: PoolError) -> OpenError {
        let server = self.server();
        let e = match e {
            PoolError::Postgres(e) => e,
            PoolError::Stopped => return OpenError::Postgres { server, reason: PoolError::Stopped.to_string() },
        };
        if let Some(tls_error) = tls::open_error(&e, &server, &self.tls_params) {
            return tls_error;
        }
        let user = self.config.get_user().unwrap_or("").to_string();
        let database = self.config.get_dbname().unwrap_or(&user).to_string();
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            if *code == SqlState::INVALID_PASSWORD || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
                return OpenError::Credentials { server, user, reason: db.message().replace('\n', " ") };
            }
            if *code == SqlState::INVALID_CATALOG_NAME {
                return OpenError::NoDatabase { server, database };
            }
            return OpenError::Postgres { server, reason: super::describe(&e) };
        }
        let cause = std::error::Error::source(&e);
        if cause.is_some_and(|c| c.is::<std::io::Error>()) || e.to_string().starts_with("timeout") {
            return OpenError::Unreachable { server, reason: super::describe(&e) };
        }
        if e.to_string().starts_with("authentication") {
            return OpenError::Credentials { server, user, reason: super::describe(&e) };
        }
        OpenError::Postgres { server, reason: super::describe(&e) }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Dropping a runtime waits for its tasks, which panics when the last `Meta` is
        // dropped inside an async handler; the connections need no goodbye.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn server_name(config: &Config) -> String {
    let port = config.get_ports().first().copied().unwrap_or(5432);
    match config.get_hosts().first() {
        Some(Host::Tcp(host)) => format!("{host}:{port}"),
        Some(Host::Unix(dir)) => format!("{}/.s.PGSQL.{port}", dir.display()),
        None => format!("localhost:{port}"),
    }
}

/// The URL with its password masked, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // key=value form: mask the value of password=.
        return url
            .split(' ')
            .map(|kv| if kv.starts_with("password=") { "password=***" } else { kv })
            .collect::<Vec<_>>()
            .join(" ");
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    // libpq also takes the password as a query parameter.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<&str> =
                query.split('&').map(|kv| if kv.starts_with("password=") { "password=***" } else { kv }).collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => format!("{scheme}://{authority}{tail}"),
        },
        None => format!("{scheme}://{authority}{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_masks_only_the_password() {
        assert_eq!(redact("postgres://floe:secret@db:5432/meta"), "postgres://floe:***@db:5432/meta");
        assert_eq!(redact("postgres://floe@db/meta"), "postgres://floe@db/meta");
        assert_eq!(redact("postgres://db/meta?user=x"), "postgres://db/meta?user=x");
        assert_eq!(redact("host=db user=floe password=x"), "host=db user=floe password=***");
        assert_eq!(
            redact("postgres://floe@db/meta?password=x&sslmode=disable"),
            "postgres://floe@db/meta?password=***&sslmode=disable"
        );
        assert_eq!(
            redact("postgres://floe:a@db?host=/run&password=b"),
            "postgres://floe:***@db?host=/run&password=***"
        );
    }
}
