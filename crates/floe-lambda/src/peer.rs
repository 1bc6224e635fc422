//! Only the environment's own processes may talk to its Runtime API.
//!
//! Environments share the host's network namespace (functions need the network),
//! so any process on the host could connect to an environment's loopback port and
//! take its events. Each accepted connection is traced back to its socket: the
//! client end is found in `/proc/net/tcp` (local = the peer's address, remote = our
//! listener) and must be an open file of a process in the environment's cgroup.
//! Connections that are not are closed unanswered.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

/// The processes allowed to connect (host pids).
pub(crate) trait Members: Send + Sync + 'static {
    fn pids(&self) -> Vec<u32>;
}

pub(crate) struct GuardedListener {
    pub listener: TcpListener,
    /// Set once the environment's first process exists; a connection that arrives
    /// before (the runtime is quick) waits for it.
    pub members: tokio::sync::watch::Receiver<Option<Arc<dyn Members>>>,
}

impl axum::serve::Listener for GuardedListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("runtime API accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let Ok(local) = stream.local_addr() else { continue };
            let Ok(members) = self.members.wait_for(|m| m.is_some()).await.map(|m| m.clone()) else { continue };
            let pids = members.expect("waited for").pids();
            let allowed = tokio::task::spawn_blocking(move || belongs_to(peer, local, &pids)).await.unwrap_or(false);
            if allowed {
                let _ = stream.set_nodelay(true);
                return (stream, peer);
            }
            tracing::warn!(
                "runtime API on {local}: refused a connection from {peer}, not a process of the environment"
            );
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Whether the client end of the connection `peer` → `local` is open in one of `pids`.
pub(crate) fn belongs_to(peer: SocketAddr, local: SocketAddr, pids: &[u32]) -> bool {
    let Some(inode) = socket_inode(peer, local) else { return false };
    let wanted = format!("socket:[{inode}]");
    pids.iter().any(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == wanted.as_str()))
    })
}

/// The inode of the socket whose local address is `peer` and remote is `local`.
fn socket_inode(peer: SocketAddr, local: SocketAddr) -> Option<u64> {
    let table = if peer.is_ipv4() { "/proc/net/tcp" } else { "/proc/net/tcp6" };
    let text = std::fs::read_to_string(table).ok()?;
    let (want_local, want_remote) = (proc_addr(peer), proc_addr(local));
    text.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() > 9 && fields[1] == want_local && fields[2] == want_remote {
            fields[9].parse().ok()
        } else {
            None
        }
    })
}

/// An address as `/proc/net/tcp` writes it: the IP's bytes as native-endian 32-bit
/// words in hex, a colon, the port in hex.
fn proc_addr(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(v4) => format!("{:08X}", u32::from_ne_bytes(v4.octets())),
        IpAddr::V6(v6) => {
            v6.octets().chunks(4).map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))).collect()
        }
    };
    format!("{ip}:{:04X}", addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream as StdStream;

    #[test]
    fn proc_addresses() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(proc_addr(addr), "0100007F:1F90");
        }
    }

    #[test]
    fn a_connection_is_traced_to_its_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let _client = StdStream::connect(local).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        assert!(belongs_to(peer, local, &[std::process::id()]), "our own connection");
        assert!(!belongs_to(peer, local, &[1]), "not pid 1's");
        assert!(!belongs_to(peer, local, &[]));
    }
}
