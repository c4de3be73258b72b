//! A TCP proxy in front of a real Redis that loses one answer on demand: the connection whose next command holds an
//! armed pattern is cut on the client's side, and that whole command is then delivered to the server. The server
//! runs it; its answer never arrives. That is a network cut at the worst moment, which no amount of killing
//! processes reproduces.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{Notify, oneshot},
    task::JoinHandle,
};

#[derive(Default)]
struct State {
    /// What the next cut waits for in a client's bytes; taken by the cut.
    armed: Mutex<Option<Vec<u8>>>,
    cuts: AtomicUsize,
    cut: Notify,
}

impl State {
    /// Whether `command` holds the armed pattern; disarms.
    fn hits(&self, command: &[u8]) -> bool {
        let mut armed = self.armed.lock().unwrap_or_else(PoisonError::into_inner);
        let hit = armed.as_ref().is_some_and(|p| !p.is_empty() && command.windows(p.len()).any(|w| w == p.as_slice()));
        if hit {
            *armed = None;
        }
        hit
    }
}

/// The proxy; it stops accepting when dropped.
pub struct CutProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl CutProxy {
    /// Listens on a free loopback port and forwards each connection to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let state = Arc::new(State::default());
        let accepting = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = accepting.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        relay(client, server, state).await;
                    }
                });
            }
        });
        Self { addr, state, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next request whose bytes hold `pattern` reaches the server, and its connection is cut before any answer.
    pub fn arm(&self, pattern: &[u8]) {
        *self.state.armed.lock().unwrap_or_else(PoisonError::into_inner) = Some(pattern.to_vec());
    }

    /// How many connections were cut so far.
    pub fn cuts(&self) -> usize {
        self.state.cuts.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` connections were cut.
    pub async fn cut(&self, n: usize) {
        loop {
            let notified = self.state.cut.notified();
            if self.cuts() >= n {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies both ways until either side closes, or until a cut: then the client is closed on first, and the request is
/// delivered after, on a server connection kept open so the server runs it (its answers drained).
async fn relay(client: TcpStream, server: TcpStream, state: Arc<State>) {
    let (mut from_client, to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    // A cut: the answering side closes on the client, then says so.
    let (cut_tx, cut_rx) = oneshot::channel::<oneshot::Sender<()>>();
    let answers = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut to_client = Some(to_client);
        let mut cut_rx = Some(cut_rx);
        loop {
            let read = match cut_rx.as_mut() {
                Some(rx) => tokio::select! {
                    r = from_server.read(&mut buf) => r,
                    closed = rx => {
                        cut_rx = None;
                        to_client = None;
                        if let Ok(closed) = closed {
                            let _ = closed.send(());
                        }
                        continue;
                    }
                },
                None => from_server.read(&mut buf).await,
            };
            let n = match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if let Some(c) = to_client.as_mut()
                && c.write_all(&buf[..n]).await.is_err()
            {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes read from the client and not yet forwarded: commands go on whole, so a cut delivers the whole of one.
    let mut unsent: Vec<u8> = Vec::new();
    loop {
        let n = match from_client.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        unsent.extend_from_slice(&buf[..n]);
        let mut whole = 0;
        let mut hit = None;
        while let Some(len) = command_len(&unsent[whole..]) {
            if state.hits(&unsent[whole..whole + len]) {
                hit = Some(whole + len);
                break;
            }
            whole += len;
        }
        if let Some(end) = hit {
            let _ = to_server.write_all(&unsent[..whole]).await;
            let (closed_tx, closed_rx) = oneshot::channel();
            if cut_tx.send(closed_tx).is_err() || closed_rx.await.is_err() {
                break;
            }
            // The client's side closes as this half is dropped too: its further commands go nowhere.
            drop(from_client);
            let _ = to_server.write_all(&unsent[whole..end]).await;
            state.cuts.fetch_add(1, Ordering::SeqCst);
            state.cut.notify_waiters();
            // The server's side stays open while the answering side drains it.
            std::future::pending::<()>().await;
            return;
        }
        if whole > 0 {
            if to_server.write_all(&unsent[..whole]).await.is_err() {
                break;
            }
            unsent.drain(..whole);
        }
    }
    answers.abort();
}

/// The length of the first command in `b` (RESP: an array of bulk strings, or an inline command ending its line);
/// `None` while it is incomplete.
fn command_len(b: &[u8]) -> Option<usize> {
    if b.first()? != &b'*' {
        return line_end(b, 0);
    }
    let (count, mut at) = number(b, 1)?;
    for _ in 0..count {
        if b.get(at)? != &b'$' {
            // Not a bulk string: no framing to follow, so the bytes so far pass as they are.
            return Some(b.len());
        }
        let (len, data) = number(b, at + 1)?;
        at = data + len + 2;
        if at > b.len() {
            return None;
        }
    }
    Some(at)
}

/// Where the line starting at `from` ends (past its CRLF).
fn line_end(b: &[u8], from: usize) -> Option<usize> {
    b.get(from..)?.windows(2).position(|w| w == b"\r\n").map(|p| from + p + 2)
}

/// The decimal number starting at `from` and ending its line, and where the next line starts.
fn number(b: &[u8], from: usize) -> Option<(usize, usize)> {
    let end = line_end(b, from)?;
    let n = std::str::from_utf8(&b[from..end - 2]).ok()?.parse().ok();
    // A length that is not a number: no framing to follow, so the bytes so far pass as they are.
    Some(n.map_or((0, b.len()), |n| (n, end)))
}

#[cfg(test)]
mod tests {
    use super::command_len;

    #[test]
    fn a_command_is_whole_only_with_its_last_bulk_string() {
        let cmd = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n";
        assert_eq!(command_len(cmd), Some(20));
        for cut in 0..20 {
            assert_eq!(command_len(&cmd[..cut]), None, "{cut} bytes");
        }
        assert_eq!(command_len(b"PING\r\n"), Some(6));
    }
}
