//! A fault-injecting TCP proxy for the links between ensemble members.
//!
//! ```text
//! dialer ──▶ proxy port ──(accept, dial target)──▶ target port
//!            two pump threads per connection copy bytes each way
//! pass     bytes flow
//! stall    bytes stop (both ways, or one way only) (held by the pumps, then the kernel buffers): a partition as TCP
//!          sees one: nothing is lost, nothing arrives, no connection ends; new
//!          connections are accepted and stall too
//! cut      every connection is closed and new ones are closed at once (a partition whose
//!          packets are rejected: both ends see the links break)
//! heal     back to pass; stalled bytes flow on
//! ```
//!
//! One end closing (or failing) closes the other: a killed server's peers see their links
//! through the proxy break as they would on a direct link.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the proxy waits for its target to accept a connection.
const DIAL_TIMEOUT: Duration = Duration::from_secs(1);

/// Bytes a pump reads at once.
const PUMP_BUFFER_BYTES: usize = 64 * 1024;

const BOTH: [Direction; 2] = [Direction::ToTarget, Direction::ToDialer];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pass,
    Stall,
    Cut,
}

/// The direction of bytes: from the dialer to the target, or back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ToTarget = 0,
    ToDialer = 1,
}

struct Shared {
    target: SocketAddr,
    /// Per [`Direction`].
    mode: Mutex<[Mode; 2]>,
    mode_changed: Condvar,
    /// Open connections: id → (accepted side, dialled side).
    connections: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
    next_id: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn cut_off(&self) -> bool {
        self.mode.lock().unwrap_or_else(PoisonError::into_inner).contains(&Mode::Cut)
    }

    fn set_mode(&self, directions: &[Direction], mode: Mode) {
        let mut modes = self.mode.lock().unwrap_or_else(PoisonError::into_inner);
        for &direction in directions {
            modes[direction as usize] = mode;
        }
        self.mode_changed.notify_all();
    }

    /// Blocks while `direction` is stalled; whether bytes may flow (false once cut or
    /// stopped).
    fn wait_to_pass(&self, direction: Direction) -> bool {
        let mut modes = self.mode.lock().unwrap_or_else(PoisonError::into_inner);
        while modes[direction as usize] == Mode::Stall && !self.stop.load(Ordering::Acquire) {
            modes = self.mode_changed.wait(modes).unwrap_or_else(PoisonError::into_inner);
        }
        modes[direction as usize] == Mode::Pass && !self.stop.load(Ordering::Acquire)
    }

    fn close(&self, id: u64) {
        let removed = self.connections.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        if let Some((accepted, dialled)) = removed {
            let _ = accepted.shutdown(Shutdown::Both);
            let _ = dialled.shutdown(Shutdown::Both);
        }
    }

    fn close_all(&self) {
        let ids: Vec<u64> = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        for id in ids {
            self.close(id);
        }
    }
}

/// A proxy listening on `127.0.0.1:port`, forwarding to its target.
pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a proxy port");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Shared {
            target,
            mode: Mutex::new([Mode::Pass; 2]),
            mode_changed: Condvar::new(),
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let acceptor = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("proxy-{port}"))
                .spawn(move || accept_loop(&listener, &shared))
                .expect("spawn a proxy thread")
        };
        Proxy { port, shared, acceptor: Some(acceptor) }
    }

    /// Closes every connection and refuses new ones until [`Proxy::heal`].
    pub fn cut(&self) {
        self.shared.set_mode(&BOTH, Mode::Cut);
        self.shared.close_all();
    }

    /// Stops every byte (connections stay open) until [`Proxy::heal`].
    pub fn stall(&self) {
        self.shared.set_mode(&BOTH, Mode::Stall);
    }

    /// Stops the bytes going one way only (an asymmetric partition).
    pub fn stall_one_way(&self, direction: Direction) {
        self.shared.set_mode(&[direction], Mode::Stall);
    }

    /// Lets bytes flow again.
    pub fn heal(&self) {
        self.shared.set_mode(&BOTH, Mode::Pass);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.set_mode(&BOTH, Mode::Cut);
        self.shared.close_all();
        // Wake the blocking accept.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for accepted in listener.incoming() {
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        let Ok(accepted) = accepted else { continue };
        if shared.cut_off() {
            continue; // Dropped: closed at once.
        }
        let Ok(dialled) = TcpStream::connect_timeout(&shared.target, DIAL_TIMEOUT) else {
            continue; // The target is down: the dialer sees its connection close.
        };
        let _ = accepted.set_nodelay(true);
        let _ = dialled.set_nodelay(true);
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (Ok(accepted_copy), Ok(dialled_copy)) = (accepted.try_clone(), dialled.try_clone())
        else {
            continue;
        };
        let (Ok(accepted_reader), Ok(dialled_reader)) = (accepted.try_clone(), dialled.try_clone())
        else {
            continue;
        };
        shared
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, (accepted_copy, dialled_copy));
        let pumps = [
            (accepted_reader, dialled, Direction::ToTarget),
            (dialled_reader, accepted, Direction::ToDialer),
        ];
        for (from, to, direction) in pumps {
            let pump_shared = shared.clone();
            let spawned = std::thread::Builder::new().name("proxy-pump".into()).spawn(move || {
                pump(from, to, direction, &pump_shared);
                pump_shared.close(id);
            });
            if spawned.is_err() {
                shared.close(id);
            }
        }
    }
}

/// Copies bytes from `from` to `to` until either end closes or the proxy is cut.
fn pump(mut from: TcpStream, mut to: TcpStream, direction: Direction, shared: &Shared) {
    let mut buffer = vec![0u8; PUMP_BUFFER_BYTES];
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if !shared.wait_to_pass(direction) || to.write_all(&buffer[..read]).is_err() {
            return;
        }
    }
}
