//! `Proxy`: a fault-injecting TCP forwarder to put between two processes — a network
//! partition, a link that drops, added latency — for multi-process tests.
//!
//! ```text
//! client ──▶ listen_address ══ Proxy ══▶ target_address
//!            per connection, per direction: reader thread ─(due time, bytes)─▶ writer thread
//! cut()      every forwarded connection is shut down (both ends see it end); connections
//!            accepted until heal() are held open and never forwarded (a blackhole: the
//!            connect succeeds, nothing ever comes back), as a partition looks to TCP
//! heal()     held connections are closed; new ones are forwarded again
//! set_delay  each chunk is written `delay` after it was read (one way; order kept; the
//!            throughput is unchanged, only the latency grows)
//! ```
//!
//! Plain threads and blocking sockets: a test proxies a handful of connections, and this
//! keeps the proxy obviously correct. A direction's queue is bounded
//! (`PROXY_QUEUED_CHUNKS_MAX` chunks), so a receiver that does not read pushes back on the
//! sender through the proxy as it would without it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};

/// Chunks read from one side and not yet written to the other, per direction.
pub const PROXY_QUEUED_CHUNKS_MAX: usize = 256;

/// Bytes one read asks for.
const CHUNK_BYTES: usize = 64 << 10;

/// How long connecting to the target may take before the client is dropped.
const TARGET_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the accept loop looks at the stop flag while no client connects.
const ACCEPT_POLL_INTERVAL: Duration = Duration::from_millis(2);

/// A running proxy; dropping it stops it and closes every connection.
pub struct Proxy {
    local_address: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    target_address: SocketAddr,
    cut: AtomicBool,
    stop: AtomicBool,
    delay_us: AtomicU64,
    /// Forwarded connections (pruned as they end).
    links: Mutex<Vec<Link>>,
    /// Connections accepted while cut.
    held: Mutex<Vec<TcpStream>>,
}

/// The two sockets of a forwarded connection, to shut down on `cut`.
struct Link {
    client: TcpStream,
    target: TcpStream,
    /// Directions (of 2) that have finished.
    directions_finished: Arc<AtomicU64>,
}

impl Proxy {
    /// Listens on `listen_address` (port 0 picks a free one; see [`Proxy::local_address`])
    /// and forwards every connection to `target_address`.
    ///
    /// # Errors
    /// The bind failure.
    pub fn start(listen_address: SocketAddr, target_address: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind(listen_address)?;
        listener.set_nonblocking(true)?;
        let local_address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target_address,
            cut: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            delay_us: AtomicU64::new(0),
            links: Mutex::new(Vec::new()),
            held: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name(format!("proxy-{}", local_address.port()))
            .spawn(move || accept_loop(&listener, &accept_shared))?;
        Ok(Proxy { local_address, shared, acceptor: Some(acceptor) })
    }

    /// The address clients connect to.
    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    /// Drops every forwarded connection and blackholes new ones until [`Proxy::heal`].
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        for link in lock(&self.shared.links).drain(..) {
            link.shut_down();
        }
    }

    /// Forwards new connections again; closes those held while cut.
    pub fn heal(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
        for socket in lock(&self.shared.held).drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// Whether the proxy is cut.
    pub fn is_cut(&self) -> bool {
        self.shared.cut.load(Ordering::SeqCst)
    }

    /// Adds `delay` to every chunk forwarded from now on, in each direction.
    pub fn set_delay(&self, delay: Duration) {
        let delay_us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.shared.delay_us.store(delay_us, Ordering::SeqCst);
    }

    /// Connections being forwarded now.
    pub fn forwarded_connections(&self) -> usize {
        let mut links = lock(&self.shared.links);
        links.retain(|link| link.directions_finished.load(Ordering::SeqCst) < 2);
        links.len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.cut();
        self.heal();
    }
}

impl Link {
    fn shut_down(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.target.shutdown(Shutdown::Both);
    }
}

/// The lock's data even if a pump thread panicked while holding it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                if let Err(error) = forward(client, shared) {
                    eprintln!("proxy to {}: {error}", shared.target_address);
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL_INTERVAL);
            }
            Err(error) => {
                eprintln!("proxy to {}: accept: {error}", shared.target_address);
                std::thread::sleep(ACCEPT_POLL_INTERVAL);
            }
        }
    }
}

/// Holds `client` (while cut) or connects it to the target and starts its pumps.
fn forward(client: TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    client.set_nonblocking(false)?;
    if shared.cut.load(Ordering::SeqCst) {
        lock(&shared.held).push(client);
        return Ok(());
    }
    let target = TcpStream::connect_timeout(&shared.target_address, TARGET_CONNECT_TIMEOUT)?;
    let _ = client.set_nodelay(true);
    let _ = target.set_nodelay(true);
    let finished = Arc::new(AtomicU64::new(0));
    let link = Link {
        client: client.try_clone()?,
        target: target.try_clone()?,
        directions_finished: Arc::clone(&finished),
    };
    let mut links = lock(&shared.links);
    if shared.cut.load(Ordering::SeqCst) {
        // Cut while connecting: `cut` did not see this link.
        link.shut_down();
        return Ok(());
    }
    links.retain(|link| link.directions_finished.load(Ordering::SeqCst) < 2);
    links.push(link);
    drop(links);
    pump(client.try_clone()?, target.try_clone()?, shared, Arc::clone(&finished))?;
    pump(target, client, shared, finished)?;
    Ok(())
}

/// Starts one direction: a reader thread stamps each chunk with its due time, a writer
/// thread writes it then. End of stream is passed on as a half-close; an error shuts down
/// the whole connection.
fn pump(
    mut source: TcpStream,
    sink: TcpStream,
    shared: &Arc<Shared>,
    finished: Arc<AtomicU64>,
) -> io::Result<()> {
    let (chunks, queued): (Sender<(Instant, Vec<u8>)>, Receiver<_>) =
        bounded(PROXY_QUEUED_CHUNKS_MAX);
    let reader_shared = Arc::clone(shared);
    let (source_for_writer, sink_for_reader) = (source.try_clone()?, sink.try_clone()?);
    std::thread::Builder::new().name("proxy-read".to_owned()).spawn(move || {
        let mut buffer = vec![0; CHUNK_BYTES];
        loop {
            let read = match source.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            let delay = Duration::from_micros(reader_shared.delay_us.load(Ordering::SeqCst));
            if chunks.send((Instant::now() + delay, buffer[..read].to_vec())).is_err() {
                let _ = sink_for_reader.shutdown(Shutdown::Both);
                break;
            }
        }
    })?;
    std::thread::Builder::new().name("proxy-write".to_owned()).spawn(move || {
        let mut sink = sink;
        let mut failed = false;
        for (due, bytes) in queued {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if sink.write_all(&bytes).is_err() {
                failed = true;
                break;
            }
        }
        if failed {
            let _ = source_for_writer.shutdown(Shutdown::Both);
            let _ = sink.shutdown(Shutdown::Both);
        } else {
            let _ = sink.shutdown(Shutdown::Write);
        }
        finished.fetch_add(1, Ordering::SeqCst);
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on a free port; it runs until the test process ends.
    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for socket in listener.incoming() {
                let Ok(mut socket) = socket else { continue };
                std::thread::spawn(move || {
                    let mut buffer = [0; 4096];
                    while let Ok(read @ 1..) = socket.read(&mut buffer) {
                        if socket.write_all(&buffer[..read]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        address
    }

    fn connect(proxy: &Proxy) -> TcpStream {
        let socket = TcpStream::connect(proxy.local_address()).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        socket
    }

    /// Sends `text` and reads its echo; the round trip's duration.
    fn round_trip(socket: &mut TcpStream, text: &[u8]) -> io::Result<Duration> {
        let start = Instant::now();
        socket.write_all(text)?;
        let mut echoed = vec![0; text.len()];
        socket.read_exact(&mut echoed)?;
        assert_eq!(echoed, text);
        Ok(start.elapsed())
    }

    /// Whether `socket` ends (end of stream or reset) within its read timeout.
    fn ends(socket: &mut TcpStream) -> bool {
        let mut buffer = [0; 16];
        match socket.read(&mut buffer) {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => error.kind() == io::ErrorKind::ConnectionReset,
        }
    }

    #[test]
    fn forwards_cuts_blackholes_heals_and_delays() {
        let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), echo_server()).unwrap();
        let mut first = connect(&proxy);
        round_trip(&mut first, b"hello").unwrap();
        let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        round_trip(&mut first, &big).unwrap();
        assert_eq!(proxy.forwarded_connections(), 1);

        proxy.cut();
        assert!(ends(&mut first), "a cut drops the connection");
        // While cut, a connection is accepted but nothing comes back.
        let mut held = connect(&proxy);
        held.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let error = round_trip(&mut held, b"lost").unwrap_err();
        assert!(matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut));

        proxy.heal();
        held.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert!(ends(&mut held), "heal closes held connections");
        let mut second = connect(&proxy);
        round_trip(&mut second, b"again").unwrap();

        proxy.set_delay(Duration::from_millis(100));
        let elapsed = round_trip(&mut second, b"slow").unwrap();
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}: each way is delayed");
        proxy.set_delay(Duration::ZERO);
        round_trip(&mut second, b"fast").unwrap();
        drop(proxy);
        assert!(ends(&mut second), "dropping the proxy closes its connections");
    }
}
