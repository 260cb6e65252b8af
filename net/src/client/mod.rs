//! A ZooKeeper client with pipelining, for the CLI, the `bench coord` load generator and the
//! stream engine's coordinator; it speaks to zabflow and to Apache ZooKeeper alike.
//!
//! **Threads.** A [`Client`] is one session served by one dedicated I/O thread (`mio`), which
//! owns the socket; application threads never touch it. Any number of threads may share a
//! `Client` (`&Client` is enough for every call).
//!
//! **Two ways to call.** Blocking calls ([`Client::get_data`], [`Client::create`], …) return
//! `ZkResult<T>`, with ZooKeeper's error codes as [`ZkError::Code`]. [`Client::submit`] queues
//! a raw [`Request`] and returns at once; its [`Completion`] (carrying the caller's `tag`)
//! arrives later on the caller's channel, so one thread can keep many requests in flight —
//! what a load generator needs. Requests of one client are sent, and answered, in submission
//! order (ZooKeeper's per-session FIFO promise); replies are matched to requests by xid.
//!
//! **Bounds.** The request queue is bounded ([`ClientConfig::request_queue_capacity`]): a full
//! queue blocks [`Client::submit`] and fails [`Client::try_submit`] with
//! [`ZkError::QueueFull`]. At most [`ClientConfig::in_flight_max`] requests are on the wire.
//! Completion channels given to `submit` must have room for every request the caller keeps in
//! flight, and the event channel ([`Client::events`]) must be drained: the I/O thread waits
//! (and stops reading from the server) while either is full.
//!
//! **Watches** set by `watch: true` reads and by [`Client::add_watch`] arrive as
//! [`WatchedEvent`]s on [`Client::events`], together with session-state changes
//! (`event_type` `None`: `SyncConnected`, `Disconnected`, `Expired`, `AuthFailed`, `Closed`).
//!
//! **Reconnect.** When the connection breaks (or is silent for 2/3 of the session timeout),
//! requests in flight fail with `ConnectionLoss`, queued ones wait, and the client tries the
//! next server with the same session id and password. On success it replays its auth
//! packets and re-registers its watches with `setWatches2` relative to the last zxid it saw,
//! then sends the queued requests. If the server says the session expired, every request
//! fails with `SessionExpired` and the client is finished.
//!
//! Not supported: chroot connect strings (refused), read-only mode, SASL.

mod config;
mod connection;
mod four_letter;
mod session;
mod watch_registry;

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};

pub use config::{ClientConfig, SessionCredentials};
pub use connection::handshake;
pub use four_letter::four_letter_word;
use session::{SessionLoop, Shared, Sink, Submission, WAKER};

use crate::error::{ZkError, ZkResult};
use crate::jute::{
    AddWatchMode, AddWatchRequest, AuthPacket, CreateMode, CreateRequest, CreateTTLRequest,
    DeleteRequest, ErrorCode, EventType, ExistsRequest, GetACLRequest, GetAllChildrenNumberRequest,
    GetChildren2Request, GetChildrenRequest, GetDataRequest, GetEphemeralsRequest, KeeperState,
    MultiOp, MultiRequest, MultiResult, RemoveWatchesRequest, Request, Response, SetACLRequest,
    SetDataRequest, Stat, SyncRequest, WatcherType, ACL,
};

/// The version argument that matches any version (ZooKeeper's -1).
pub const VERSION_ANY: i32 = -1;

/// How long dropping an open client waits for its `closeSession` reply, in milliseconds.
const DROP_CLOSE_WAIT_MS: u64 = 2_000;

/// The answer to a submitted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The tag given to [`Client::submit`].
    pub tag: u64,
    /// The zxid of the reply header (-1 when the client failed the request itself).
    pub zxid: i64,
    /// The reply body, or the error code.
    pub result: ZkResult<Response>,
}

/// A watch notification or a session-state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// `EventType::None` for a session-state change.
    pub event_type: EventType,
    pub state: KeeperState,
    /// The znode's path; `None` for a session-state change.
    pub path: Option<String>,
}

/// One ZooKeeper session and the I/O thread that serves it. Dropping it closes the session.
#[derive(Debug)]
pub struct Client {
    submissions: Sender<Submission>,
    events: Receiver<WatchedEvent>,
    shared: Arc<Shared>,
    waker: mio::Waker,
    io_thread: Mutex<Option<JoinHandle<()>>>,
    close_requested: AtomicBool,
}

impl Client {
    /// Connects to the servers of `connect_string` with the default configuration.
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub fn connect_to(connect_string: &str) -> ZkResult<Client> {
        Client::connect(ClientConfig::new(connect_string)?)
    }

    /// Establishes a new session with one of `config.servers` (tried in order until
    /// `connect_timeout_ms`), then starts the I/O thread.
    ///
    /// # Errors
    /// [`ZkError::Connect`] for a bad configuration or when no server accepts a session.
    pub fn connect(config: ClientConfig) -> ZkResult<Client> {
        config.validate()?;
        let poll = mio::Poll::new().map_err(|error| ZkError::Connect(error.to_string()))?;
        let waker = mio::Waker::new(poll.registry(), WAKER)
            .map_err(|error| ZkError::Connect(error.to_string()))?;
        let (submissions, submission_receiver) =
            crossbeam_channel::bounded(config.request_queue_capacity);
        let (event_sender, events) = crossbeam_channel::bounded(config.event_queue_capacity);
        let shared = Arc::new(Shared {
            state: AtomicI32::new(KeeperState::Disconnected.code()),
            session_id: AtomicI64::new(0),
            session_timeout_ms: AtomicI32::new(0),
            io_idle: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            password: Mutex::new(Vec::new()),
        });
        let mut session =
            SessionLoop::new(config, poll, shared.clone(), submission_receiver, event_sender);
        let connection = session.connect_first()?;
        let io_thread = std::thread::Builder::new()
            .name("zk-client-io".to_owned())
            .spawn(move || session.run(connection))
            .map_err(|error| ZkError::Connect(format!("cannot start the I/O thread: {error}")))?;
        Ok(Client {
            submissions,
            events,
            shared,
            waker,
            io_thread: Mutex::new(Some(io_thread)),
            close_requested: AtomicBool::new(false),
        })
    }

    /// The session id the server assigned.
    #[must_use]
    pub fn session_id(&self) -> i64 {
        self.shared.session_id.load(Ordering::Acquire)
    }

    /// The session's id and password, with which another client (of this process or of a
    /// later one) can resume it ([`ClientConfig::with_session`]) — or take it over to close
    /// it at once instead of waiting for it to expire.
    #[must_use]
    pub fn session_credentials(&self) -> SessionCredentials {
        let password = self.shared.password.lock().map(|p| p.clone()).unwrap_or_default();
        SessionCredentials { id: self.session_id(), password }
    }

    /// The session timeout the server negotiated, in milliseconds.
    #[must_use]
    pub fn session_timeout_ms(&self) -> i32 {
        self.shared.session_timeout_ms.load(Ordering::Acquire)
    }

    /// The session's current state (`SyncConnected`, `Disconnected`, `Expired`, `Closed`).
    #[must_use]
    pub fn state(&self) -> KeeperState {
        let code = self.shared.state.load(Ordering::Acquire);
        KeeperState::from_code(code).unwrap_or(KeeperState::Unknown)
    }

    /// Watch events and session-state changes, in the order the I/O thread saw them.
    #[must_use]
    pub fn events(&self) -> &Receiver<WatchedEvent> {
        &self.events
    }

    /// The error a request gets once the session has ended.
    fn ended_error(&self) -> ZkError {
        match self.state() {
            KeeperState::Expired => ZkError::Code(ErrorCode::SessionExpired),
            _ => ZkError::Closed,
        }
    }

    fn ended(&self) -> bool {
        matches!(self.state(), KeeperState::Expired | KeeperState::Closed)
    }

    fn wake_io_thread(&self) {
        if self.shared.io_idle.swap(false, Ordering::SeqCst) {
            // A failed wake means the I/O thread is gone; the request then fails when the
            // queue is dropped, which the caller sees as a closed client.
            let _ = self.waker.wake();
        }
    }

    /// Queues `request`; its [`Completion`] with `tag` is sent to `completions` when the
    /// reply arrives. Blocks while the request queue is full.
    ///
    /// # Errors
    /// [`ZkError::Closed`] or `SessionExpired` when the session has ended.
    pub fn submit(
        &self,
        request: Request,
        tag: u64,
        completions: &Sender<Completion>,
    ) -> ZkResult<()> {
        let submission = self.submission(request, tag, completions)?;
        self.submissions.send(submission).map_err(|_| self.ended_error())?;
        self.wake_io_thread();
        Ok(())
    }

    /// As [`Client::submit`], but never blocks.
    ///
    /// # Errors
    /// [`ZkError::QueueFull`] when the request queue is full; as [`Client::submit`].
    pub fn try_submit(
        &self,
        request: Request,
        tag: u64,
        completions: &Sender<Completion>,
    ) -> ZkResult<()> {
        match self.submissions.try_send(self.submission(request, tag, completions)?) {
            Ok(()) => {
                self.wake_io_thread();
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(ZkError::QueueFull),
            Err(TrySendError::Disconnected(_)) => Err(self.ended_error()),
        }
    }

    /// `request` ready to queue, or the session's end error once it has ended.
    fn submission(
        &self,
        request: Request,
        tag: u64,
        completions: &Sender<Completion>,
    ) -> ZkResult<Submission> {
        if self.ended() {
            return Err(self.ended_error());
        }
        Ok(Submission { request, sink: Sink { tag, sender: completions.clone() } })
    }

    /// Sends `request` and waits for its reply.
    ///
    /// # Errors
    /// The reply's error code, `ConnectionLoss` if the connection broke with the request in
    /// flight, or as [`Client::submit`].
    pub fn call(&self, request: Request) -> ZkResult<Response> {
        let (sender, receiver) = crossbeam_channel::bounded(1);
        self.submit(request, 0, &sender)?;
        receiver.recv().map_err(|_| self.ended_error())?.result
    }

    /// Creates a node and returns its path (with the sequence suffix for a sequential mode).
    /// Container mode uses `createContainer`; TTL modes need [`Client::create_ttl`].
    ///
    /// # Errors
    /// As [`Client::call`]: e.g. `NodeExists`, `NoNode` (no parent), `NoChildrenForEphemerals`,
    /// `NoAuth`, `InvalidAcl`, `BadArguments`.
    pub fn create(
        &self,
        path: &str,
        data: &[u8],
        acl: &[ACL],
        mode: CreateMode,
    ) -> ZkResult<String> {
        match self.call(create_request(path, data, acl, mode, false))? {
            Response::Create(created) => Ok(created.path),
            Response::Create2(created) => Ok(created.path),
            other => Err(unexpected(&other)),
        }
    }

    /// Creates a node and returns its path and `Stat` (`create2`).
    ///
    /// # Errors
    /// As [`Client::create`].
    pub fn create2(
        &self,
        path: &str,
        data: &[u8],
        acl: &[ACL],
        mode: CreateMode,
    ) -> ZkResult<(String, Stat)> {
        match self.call(create_request(path, data, acl, mode, true))? {
            Response::Create2(created) => Ok((created.path, created.stat)),
            other => Err(unexpected(&other)),
        }
    }

    /// Creates a TTL node (`mode` `PersistentWithTtl` or `PersistentSequentialWithTtl`).
    ///
    /// # Errors
    /// As [`Client::create`]; `Unimplemented` when the server has TTL nodes disabled.
    pub fn create_ttl(
        &self,
        path: &str,
        data: &[u8],
        acl: &[ACL],
        mode: CreateMode,
        ttl_ms: i64,
    ) -> ZkResult<(String, Stat)> {
        let request = CreateTTLRequest {
            path: path.to_owned(),
            data: Some(data.to_vec()),
            acl: acl.to_vec(),
            flags: mode.code(),
            ttl: ttl_ms,
        };
        match self.call(Request::CreateTtl(request))? {
            Response::Create2(created) => Ok((created.path, created.stat)),
            other => Err(unexpected(&other)),
        }
    }

    /// Deletes a node if its version is `version` (or any, with [`VERSION_ANY`]).
    ///
    /// # Errors
    /// As [`Client::call`]: `NoNode`, `BadVersion`, `NotEmpty`, `NoAuth`.
    pub fn delete(&self, path: &str, version: i32) -> ZkResult<()> {
        self.call(Request::Delete(DeleteRequest { path: path.to_owned(), version })).map(drop)
    }

    /// The node's `Stat`, or `None` when it does not exist; `watch` sets a data watch (or an
    /// exist watch when it does not exist).
    ///
    /// # Errors
    /// As [`Client::call`] (`NoNode` is `Ok(None)`).
    pub fn exists(&self, path: &str, watch: bool) -> ZkResult<Option<Stat>> {
        match self.call(Request::Exists(ExistsRequest { path: path.to_owned(), watch })) {
            Ok(Response::Exists(exists)) => Ok(Some(exists.stat)),
            Ok(other) => Err(unexpected(&other)),
            Err(ZkError::Code(ErrorCode::NoNode)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The node's data (empty for null data) and `Stat`; `watch` sets a data watch.
    ///
    /// # Errors
    /// As [`Client::call`]: `NoNode`, `NoAuth`.
    pub fn get_data(&self, path: &str, watch: bool) -> ZkResult<(Vec<u8>, Stat)> {
        match self.call(Request::GetData(GetDataRequest { path: path.to_owned(), watch }))? {
            Response::GetData(get) => Ok((get.data.unwrap_or_default(), get.stat)),
            other => Err(unexpected(&other)),
        }
    }

    /// Replaces the node's data if its version is `version` (or any, [`VERSION_ANY`]).
    ///
    /// # Errors
    /// As [`Client::call`]: `NoNode`, `BadVersion`, `NoAuth`.
    pub fn set_data(&self, path: &str, data: &[u8], version: i32) -> ZkResult<Stat> {
        let request = SetDataRequest { path: path.to_owned(), data: Some(data.to_vec()), version };
        match self.call(Request::SetData(request))? {
            Response::SetData(set) => Ok(set.stat),
            other => Err(unexpected(&other)),
        }
    }

    /// The names of the node's children; `watch` sets a child watch.
    ///
    /// # Errors
    /// As [`Client::call`]: `NoNode`, `NoAuth`.
    pub fn get_children(&self, path: &str, watch: bool) -> ZkResult<Vec<String>> {
        let request = GetChildrenRequest { path: path.to_owned(), watch };
        match self.call(Request::GetChildren(request))? {
            Response::GetChildren(get) => Ok(get.children),
            other => Err(unexpected(&other)),
        }
    }

    /// The names of the node's children and its `Stat`; `watch` sets a child watch.
    ///
    /// # Errors
    /// As [`Client::get_children`].
    pub fn get_children2(&self, path: &str, watch: bool) -> ZkResult<(Vec<String>, Stat)> {
        let request = GetChildren2Request { path: path.to_owned(), watch };
        match self.call(Request::GetChildren2(request))? {
            Response::GetChildren2(get) => Ok((get.children, get.stat)),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs write ops atomically (`multi`) and returns one result per op. A multi that
    /// failed is still `Ok`: its results hold `MultiResult::Error` entries (code 0 for the
    /// ops rolled back before the failing one, then the failure, then
    /// `RuntimeInconsistency`); [`multi_error`] finds the failure.
    ///
    /// # Errors
    /// As [`Client::call`], for failures of the request as a whole.
    pub fn multi(&self, ops: Vec<MultiOp>) -> ZkResult<Vec<MultiResult>> {
        match self.call(Request::Multi(MultiRequest { ops }))? {
            Response::Multi(multi) => Ok(multi.results),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs read ops (`multiRead`); each result succeeds or fails on its own.
    ///
    /// # Errors
    /// As [`Client::multi`].
    pub fn multi_read(&self, ops: Vec<MultiOp>) -> ZkResult<Vec<MultiResult>> {
        match self.call(Request::MultiRead(MultiRequest { ops }))? {
            Response::Multi(multi) => Ok(multi.results),
            other => Err(unexpected(&other)),
        }
    }

    /// Waits until the server this session is connected to has applied every write the
    /// leader committed before the sync; returns the path.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub fn sync(&self, path: &str) -> ZkResult<String> {
        match self.call(Request::Sync(SyncRequest { path: path.to_owned() }))? {
            Response::Sync(sync) => Ok(sync.path),
            other => Err(unexpected(&other)),
        }
    }

    /// Adds an identity to the session (`addauth`, e.g. scheme `digest`, auth `user:pass`).
    /// It is replayed on every reconnect once the server has accepted it.
    ///
    /// # Errors
    /// `AuthFailed` for an unknown scheme or bad credentials (the server then closes the
    /// connection; the client reconnects without that identity).
    pub fn add_auth(&self, scheme: &str, auth: &[u8]) -> ZkResult<()> {
        let packet = AuthPacket { auth_type: 0, scheme: scheme.to_owned(), auth: auth.to_vec() };
        self.call(Request::Auth(packet)).map(drop)
    }

    /// The node's ACL and `Stat`.
    ///
    /// # Errors
    /// As [`Client::call`]: `NoNode`, `NoAuth` (needs READ or ADMIN).
    pub fn get_acl(&self, path: &str) -> ZkResult<(Vec<ACL>, Stat)> {
        match self.call(Request::GetAcl(GetACLRequest { path: path.to_owned() }))? {
            Response::GetAcl(get) => Ok((get.acl, get.stat)),
            other => Err(unexpected(&other)),
        }
    }

    /// Replaces the node's ACL if its ACL version is `version` (or any, [`VERSION_ANY`]).
    ///
    /// # Errors
    /// As [`Client::call`]: `NoNode`, `BadVersion`, `NoAuth`, `InvalidAcl`.
    pub fn set_acl(&self, path: &str, acl: &[ACL], version: i32) -> ZkResult<Stat> {
        let request = SetACLRequest { path: path.to_owned(), acl: acl.to_vec(), version };
        match self.call(Request::SetAcl(request))? {
            Response::SetAcl(set) => Ok(set.stat),
            other => Err(unexpected(&other)),
        }
    }

    /// Adds a persistent (or persistent recursive) watch on `path`.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub fn add_watch(&self, path: &str, mode: AddWatchMode) -> ZkResult<()> {
        let request = AddWatchRequest { path: path.to_owned(), mode: mode.code() };
        self.call(Request::AddWatch(request)).map(drop)
    }

    /// Removes this session's watches of `watcher_type` on `path`.
    ///
    /// # Errors
    /// As [`Client::call`]: `NoWatcher` when there is none.
    pub fn remove_watches(&self, path: &str, watcher_type: WatcherType) -> ZkResult<()> {
        let request =
            RemoveWatchesRequest { path: path.to_owned(), watcher_type: watcher_type.code() };
        self.call(Request::RemoveWatches(request)).map(drop)
    }

    /// Paths of this session's ephemeral nodes under `prefix_path`.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub fn get_ephemerals(&self, prefix_path: &str) -> ZkResult<Vec<String>> {
        let request = GetEphemeralsRequest { prefix_path: prefix_path.to_owned() };
        match self.call(Request::GetEphemerals(request))? {
            Response::GetEphemerals(get) => Ok(get.ephemerals),
            other => Err(unexpected(&other)),
        }
    }

    /// The number of descendants of `path`.
    ///
    /// # Errors
    /// As [`Client::call`]: `NoNode`.
    pub fn get_all_children_number(&self, path: &str) -> ZkResult<i32> {
        let request = GetAllChildrenNumberRequest { path: path.to_owned() };
        match self.call(Request::GetAllChildrenNumber(request))? {
            Response::GetAllChildrenNumber(get) => Ok(get.total_number),
            other => Err(unexpected(&other)),
        }
    }

    /// Closes the session (its ephemeral nodes go) and stops the I/O thread. Requests still
    /// queued fail with [`ZkError::Closed`]. Closing twice is a no-op.
    ///
    /// # Errors
    /// As [`Client::call`] for the `closeSession` request, e.g. `SessionExpired`.
    pub fn close(&self) -> ZkResult<()> {
        let wait_ms = u64::try_from(self.session_timeout_ms()).unwrap_or(0);
        self.close_within(Duration::from_millis(wait_ms))
    }

    fn close_within(&self, wait: Duration) -> ZkResult<()> {
        if self.close_requested.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let (sender, receiver) = crossbeam_channel::bounded(1);
        let result = self.submit(Request::CloseSession, 0, &sender).and_then(|()| {
            let completion = receiver.recv_timeout(wait);
            completion.map_err(|_| ZkError::Code(ErrorCode::ConnectionLoss))?.result.map(drop)
        });
        self.shared.shutdown.store(true, Ordering::Release);
        let _ = self.waker.wake();
        let io_thread = self.io_thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(io_thread) = io_thread {
            let _ = io_thread.join();
        }
        match result {
            Err(ZkError::Closed) => Ok(()),
            other => other,
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.close_within(Duration::from_millis(DROP_CLOSE_WAIT_MS));
    }
}

/// The first real failure of a failed multi's results, if any.
#[must_use]
pub fn multi_error(results: &[MultiResult]) -> Option<ErrorCode> {
    results.iter().find_map(|result| match result {
        MultiResult::Error(error) if error.err != 0 => {
            Some(ErrorCode::from_code(error.err).unwrap_or(ErrorCode::SystemError))
        }
        _ => None,
    })
}

fn create_request(path: &str, data: &[u8], acl: &[ACL], mode: CreateMode, stat: bool) -> Request {
    let body = CreateRequest {
        path: path.to_owned(),
        data: Some(data.to_vec()),
        acl: acl.to_vec(),
        flags: mode.code(),
    };
    match mode {
        CreateMode::Container => Request::CreateContainer(body),
        _ if stat => Request::Create2(body),
        _ => Request::Create(body),
    }
}

fn unexpected(response: &Response) -> ZkError {
    ZkError::Codec(crate::error::Error::NoResponseFor { op: response.op_code().code() })
}
