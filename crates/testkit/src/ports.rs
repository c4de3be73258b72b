//! Ports for servers a test starts as child processes, where binding port 0 and handing the listener over is not
//! possible (redis-server, or a binary that must be told its port before it starts).
//!
//! A port the OS picks for `bind(0)` or for an outgoing connection comes from the ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`), so once its server stops (a test kills redis-server to restart it)
//! any client socket may take it. The ports handed out here lie below that range: only another explicit bind can
//! take them, none is handed out twice by one process, and each is checked free when it is handed out.

use std::{
    collections::HashSet,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    sync::Mutex,
};

/// A port on 127.0.0.1 that was free when handed out, below the ephemeral range, never handed out twice in this
/// process.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let (low, high) = range();
    let span = u32::from(high - low);
    // A random start, so that several test processes rarely probe the same ports.
    let start = u32::from(rand_u16()) % span;
    let mut given = GIVEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let given = given.get_or_insert_with(HashSet::new);
    for i in 0..span {
        let port = low + u16::try_from((start + i) % span).unwrap_or(0);
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            given.insert(port);
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 between {low} and {high}");
}

/// `[low, high)`: the 8,000 ports below the ephemeral range (or 20000..28000 when the range cannot be read).
fn range() -> (u16, u16) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<u16>().ok()))
        .unwrap_or(28_000);
    let high = ephemeral_low.max(9_024);
    (high - 8_000, high)
}

fn rand_u16() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    (h.finish() & 0xffff) as u16
}

/// A port that refuses every connection for as long as this value lives: bound, never listening, so nothing else
/// can bind it meanwhile (a test's "unreachable server").
pub struct ClosedPort {
    _socket: tokio::net::TcpSocket,
    addr: SocketAddr,
}

impl ClosedPort {
    pub fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("binding 127.0.0.1:0");
        let addr = socket.local_addr().expect("the bound address");
        Self { _socket: socket, addr }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn redis_url(&self) -> String {
        format!("redis://{}", self.addr)
    }
}

impl Default for ClosedPort {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_lie_below_the_ephemeral_range_and_are_never_handed_out_twice() {
        let (low, high) = range();
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        assert!(ports.iter().all(|p| (low..high).contains(p)), "{ports:?} not in {low}..{high}");
        let distinct: HashSet<&u16> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len());
    }

    #[tokio::test]
    async fn a_closed_port_refuses_connections() {
        let closed = ClosedPort::new();
        let err = tokio::net::TcpStream::connect(("127.0.0.1", closed.port())).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}
