//! `Driver`: one generator thread, owner of its share of the sessions' sockets.
//!
//! A driver polls its sessions' non-blocking sockets itself (one `mio::Poll`, edge-triggered):
//! it encodes each request straight into its session's write buffer, decodes the replies in
//! the session's read buffer, timestamps and records them on the spot. There is no thread
//! per session and no channel per request, so a request costs the generator its encoding,
//! its share of a `write` and a `read`, and the recording, which is what lets the generator
//! stay small beside the servers on a machine with few cores.
//!
//! ```text
//! closed loop : every session keeps `depth` requests in flight; a reply (inside the
//!               window) sends the session's next request, due when the reply arrived
//! open loop   : requests are due every 1/(rate × my share) s from the run's start, each on
//!               the next session with fewer than `depth` in flight; a timerfd wakes the
//!               poll at the next due time with sub-millisecond precision (a poll timeout
//!               is rounded up to whole milliseconds); latency counts from the due time
//! window      : a reply counts (its latency recorded) when it arrives inside the window,
//!               a lost connection's requests when it is lost before the window's end
//! drain       : after the window nothing is sent; the requests in flight are awaited for
//!               at most COORD_DRAIN_TIMEOUT
//! every 10 ms : idle sessions ping, silent ones are declared lost
//! ```
//!
//! A session whose connection is lost sends nothing more (its requests count as
//! `ConnectionLoss`); a driver whose sessions are all lost stops before the window's end.

use super::load::{Keyspace, OpResult};
use super::session::{Completed, CreatedPaths, Outcome, Session};
use super::workload::{Mix, MixOp, Op, Pacing, Workload};
use crate::constants::COORD_DRAIN_TIMEOUT;
use crate::error::{BenchError, Result};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::fmt::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};
use zabflow_net::client::VERSION_ANY;
use zabflow_net::jute::{CreateMode, MultiHeader, OpCode, Record, Writer, ACL};

/// Longest a driver sleeps in `poll` before it looks at the clock.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// How often a driver pings idle sessions and looks for silent ones.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_millis(10);
/// Readiness events taken per poll.
const POLL_EVENTS_CAPACITY: usize = 256;
/// The poll token of the open-loop timer (sessions use their index).
const TIMER: Token = Token(usize::MAX);

/// A session as one run drives it.
struct Lane<'a> {
    session: &'a mut Session,
    rng: u64,
    /// `<root>/tmp/s<session id>-`: the create/delete nodes' names without their number.
    pair_prefix: String,
}

/// The open loop's schedule.
struct Schedule {
    next_due: Instant,
    interval: Duration,
    timer: Timer,
    armed_for: Option<Instant>,
}

/// One generator thread's sessions, their poll, and what they measured.
pub struct Driver<'a> {
    lanes: Vec<Lane<'a>>,
    keyspace: &'a Keyspace,
    mix: &'a Mix,
    pacing: Pacing,
    depth: usize,
    window: (Instant, Instant),
    results: Vec<OpResult>,
    in_flight: usize,
    next_lane: usize,
    poll: Poll,
    events: Events,
    ready: Vec<usize>,
    completions: Vec<Completed>,
    acl: [ACL; 1],
    sequential_path: String,
    path: String,
}

impl<'a> Driver<'a> {
    /// A driver of `sessions` (each with its index among all sessions, which seeds its
    /// choices) running `workload` with the measured window `window`.
    ///
    /// # Errors
    /// [`BenchError::Load`] when the poll cannot be created or a socket registered.
    pub fn new(
        sessions: Vec<(usize, &'a mut Session)>,
        keyspace: &'a Keyspace,
        workload: &'a Workload,
        window: (Instant, Instant),
    ) -> Result<Driver<'a>> {
        let poll = Poll::new().map_err(|error| load_error("create a poll", &error))?;
        let lanes: Vec<Lane<'a>> = sessions
            .into_iter()
            .map(|(index, session)| Lane {
                rng: splitmix64(keyspace.seed ^ (index as u64).wrapping_mul(0x9E37_79B9)),
                pair_prefix: format!("{}/s{:x}-", keyspace.tmp_path(), session.id()),
                session,
            })
            .collect();
        let interest = Interest::READABLE | Interest::WRITABLE;
        for (index, lane) in lanes.iter().enumerate() {
            if lane.session.lost().is_none() {
                let fd = lane.session.raw_fd();
                poll.registry()
                    .register(&mut SourceFd(&fd), Token(index), interest)
                    .map_err(|error| load_error("register a session", &error))?;
            }
        }
        Ok(Driver {
            lanes,
            keyspace,
            mix: &workload.mix,
            pacing: workload.pacing,
            depth: workload.depth,
            window,
            results: Op::ALL.iter().map(|_| OpResult::new()).collect(),
            in_flight: 0,
            next_lane: 0,
            poll,
            events: Events::with_capacity(POLL_EVENTS_CAPACITY),
            ready: Vec::with_capacity(POLL_EVENTS_CAPACITY),
            completions: Vec::new(),
            acl: [ACL::open_unsafe()],
            sequential_path: format!("{}/s-", keyspace.seq_path()),
            path: String::new(),
        })
    }

    /// Sends until the window ends (or every session is lost), then drains; `share` is
    /// (my sessions, all sessions), which sets my part of an open loop's rate.
    ///
    /// # Errors
    /// [`BenchError::Load`] when polling fails or requests stay unanswered past the drain.
    pub fn run(mut self, start: Instant, share: (usize, usize)) -> Result<Vec<OpResult>> {
        let end = self.window.1;
        let mut schedule = match self.pacing {
            Pacing::Closed => {
                let now = Instant::now();
                for lane in 0..self.lanes.len() {
                    (0..self.depth).for_each(|_| self.send(lane, now));
                }
                None
            }
            Pacing::Open { rate_per_s } => {
                let rate = rate_per_s as f64 * share.0 as f64 / share.1 as f64;
                let interval = Duration::from_secs_f64(1.0 / rate.max(1e-3));
                let timer = Timer::new().map_err(|error| load_error("create a timer", &error))?;
                let fd = timer.fd.as_raw_fd();
                self.poll
                    .registry()
                    .register(&mut SourceFd(&fd), TIMER, Interest::READABLE)
                    .map_err(|error| load_error("register the timer", &error))?;
                Some(Schedule { next_due: start, interval, timer, armed_for: None })
            }
        };
        let mut keep_alive_due = Instant::now();
        loop {
            let now = Instant::now();
            if now >= keep_alive_due {
                self.keep_alive(now);
                keep_alive_due = now + KEEP_ALIVE_INTERVAL;
                if self.lanes.iter().all(|lane| lane.session.lost().is_some()) {
                    break;
                }
            }
            if now >= end {
                break;
            }
            if let Some(schedule) = schedule.as_mut() {
                self.send_due(schedule, now)?;
            }
            self.flush(now);
            self.poll_once((end - now).min(POLL_INTERVAL))?;
            self.serve_ready(schedule.is_none());
        }
        self.drain()?;
        Ok(self.results)
    }

    /// Sends the open loop's requests that are due, then sets the timer for the next one.
    fn send_due(&mut self, schedule: &mut Schedule, now: Instant) -> Result<()> {
        let end = self.window.1;
        while schedule.next_due <= now && schedule.next_due < end {
            let Some(lane) = self.lane_with_room() else { break };
            self.send(lane, schedule.next_due);
            schedule.next_due += schedule.interval;
        }
        let next_due = schedule.next_due;
        if next_due > now && next_due < end && schedule.armed_for != Some(next_due) {
            schedule.timer.arm(next_due - now).map_err(|e| load_error("set the timer", &e))?;
            schedule.armed_for = Some(next_due);
        }
        Ok(())
    }

    /// Awaits the requests in flight, sending nothing more.
    fn drain(&mut self) -> Result<()> {
        let deadline = Instant::now() + COORD_DRAIN_TIMEOUT;
        let mut keep_alive_due = Instant::now();
        while self.in_flight > 0 {
            let now = Instant::now();
            if now >= deadline {
                let in_flight = self.in_flight;
                return Err(BenchError::Load(format!(
                    "{in_flight} requests unanswered {COORD_DRAIN_TIMEOUT:?} after the window"
                )));
            }
            if now >= keep_alive_due {
                self.keep_alive(now);
                keep_alive_due = now + KEEP_ALIVE_INTERVAL;
            }
            self.flush(now);
            self.poll_once((deadline - now).min(POLL_INTERVAL))?;
            self.serve_ready(false);
        }
        Ok(())
    }

    fn poll_once(&mut self, timeout: Duration) -> Result<()> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Err(error) if error.kind() != std::io::ErrorKind::Interrupted => {
                Err(load_error("poll", &error))
            }
            _ => Ok(()),
        }
    }

    /// Reads every session the poll found ready and settles its replies.
    fn serve_ready(&mut self, send_next: bool) {
        self.ready.clear();
        for event in &self.events {
            // The timer only wakes the loop, which then sends what is due.
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            if event.token() != TIMER && readable {
                self.ready.push(event.token().0);
            }
        }
        for position in 0..self.ready.len() {
            let index = self.ready[position];
            let lane = &mut self.lanes[index];
            let sequential_prefix = self.sequential_path.as_bytes();
            let paths =
                CreatedPaths { pair_prefix: lane.pair_prefix.as_bytes(), sequential_prefix };
            lane.session.receive(paths, &mut self.completions);
            self.settle(Some(index), send_next);
        }
    }

    /// Records the pending completions; in closed loop, inside the window, each sends the
    /// next request of session `lane`, due when the reply arrived.
    fn settle(&mut self, lane: Option<usize>, send_next: bool) {
        let mut completions = std::mem::take(&mut self.completions);
        for completed in completions.drain(..) {
            self.in_flight -= 1;
            self.record(&completed);
            if let Some(lane) = lane.filter(|_| send_next && completed.at < self.window.1) {
                self.send(lane, completed.at);
            }
        }
        self.completions = completions;
    }

    /// Counts a completion that belongs to the window: a reply that arrived inside it, a
    /// lost request whose connection was lost before its end.
    fn record(&mut self, completed: &Completed) {
        let (from, to) = self.window;
        let at = completed.at;
        let result = &mut self.results[completed.sent.op.index()];
        match completed.outcome {
            Outcome::Ok if at >= from && at < to => {
                let latency = at.saturating_duration_since(completed.sent.due);
                let latency_ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
                result.record(at - from, latency_ns);
            }
            Outcome::Failed(_) | Outcome::Unexpected if at >= from && at < to => {
                result.count_error(completed.outcome);
            }
            Outcome::Lost if at < to => result.count_error(completed.outcome),
            _ => {}
        }
    }

    /// Writes every session's buffered requests; a failed write loses its session.
    fn flush(&mut self, now: Instant) {
        for lane in &mut self.lanes {
            if lane.session.unsent_bytes() > 0 {
                lane.session.flush(now, &mut self.completions);
            }
        }
        self.settle_lost();
    }

    /// Pings idle sessions and loses silent ones.
    fn keep_alive(&mut self, now: Instant) {
        for lane in &mut self.lanes {
            lane.session.keep_alive(now, &mut self.completions);
        }
        self.settle_lost();
    }

    /// Records completions that send no new request (lost connections).
    fn settle_lost(&mut self) {
        self.settle(None, false);
    }

    /// The next session, round-robin, that has its connection and fewer than `depth`
    /// requests in flight.
    fn lane_with_room(&mut self) -> Option<usize> {
        let count = self.lanes.len();
        let start = self.next_lane;
        let depth = self.depth;
        let lane = (0..count).map(|step| (start + step) % count).find(|&lane| {
            let session = &self.lanes[lane].session;
            session.lost().is_none() && session.in_flight() < depth
        })?;
        self.next_lane = (lane + 1) % count;
        Some(lane)
    }

    /// Encodes the next request of session `lane` (drawn from the mix) into its write
    /// buffer, due at `due`.
    fn send(&mut self, lane: usize, due: Instant) {
        let keyspace = self.keyspace;
        let Lane { session, rng, pair_prefix } = &mut self.lanes[lane];
        if session.lost().is_some() {
            return;
        }
        let roll = next_random(rng);
        let mut key = || {
            let roll = next_random(rng);
            keyspace.paths[(roll % keyspace.paths.len() as u64) as usize].as_str()
        };
        let value = keyspace.value.as_slice();
        match self.mix.pick(roll) {
            MixOp::GetData => {
                let path = key();
                session.send(Op::GetData, due, |writer| write_path_watch(writer, path));
            }
            MixOp::Exists => {
                let path = key();
                session.send(Op::Exists, due, |writer| write_path_watch(writer, path));
            }
            MixOp::GetChildren => {
                let path = key();
                session.send(Op::GetChildren, due, |writer| write_path_watch(writer, path));
            }
            MixOp::SetData => {
                let path = key();
                session.send(Op::SetData, due, |writer| write_set_data(writer, path, value));
            }
            MixOp::Multi => {
                let paths = [key(), key()];
                session.send(Op::Multi, due, |writer| write_multi_set_data(writer, paths, value));
            }
            MixOp::CreateSequential => {
                let (path, acl) = (&self.sequential_path, &self.acl);
                let mode = CreateMode::PersistentSequential;
                session
                    .send(Op::CreateSequential, due, |w| write_create(w, path, value, acl, mode));
            }
            MixOp::CreateDelete => {
                let path = &mut self.path;
                path.clear();
                match session.pair_created.take() {
                    Some(number) => {
                        let _ = write!(path, "{pair_prefix}{number}");
                        session.send(Op::Delete, due, |writer| write_delete(writer, path));
                    }
                    None => {
                        session.pair_count += 1;
                        session.pair_created = Some(session.pair_count);
                        let _ = write!(path, "{pair_prefix}{}", session.pair_count);
                        let (acl, mode) = (&self.acl, CreateMode::Persistent);
                        session.send(Op::Create, due, |w| write_create(w, path, value, acl, mode));
                    }
                }
            }
        }
        self.in_flight += 1;
    }
}

/// `path:ustring watch:boolean` (false): the body of getData, exists and getChildren.
fn write_path_watch(writer: &mut Writer, path: &str) {
    writer.write_ustring(path);
    writer.write_bool(false);
}

/// `SetDataRequest` of any version.
fn write_set_data(writer: &mut Writer, path: &str, value: &[u8]) {
    writer.write_ustring(path);
    writer.write_buffer(value);
    writer.write_int(VERSION_ANY);
}

/// `MultiOperationRecord` of one `setData` (any version) per path.
fn write_multi_set_data(writer: &mut Writer, paths: [&str; 2], value: &[u8]) {
    for path in paths {
        MultiHeader { op: OpCode::SetData.code(), done: false, err: -1 }.write(writer);
        write_set_data(writer, path, value);
    }
    MultiHeader::END.write(writer);
}

/// `CreateRequest`.
fn write_create(writer: &mut Writer, path: &str, value: &[u8], acl: &[ACL], mode: CreateMode) {
    writer.write_ustring(path);
    writer.write_buffer(value);
    writer.write_vector(acl, |writer, acl| acl.write(writer));
    writer.write_int(mode.code());
}

/// `DeleteRequest` of any version.
fn write_delete(writer: &mut Writer, path: &str) {
    writer.write_ustring(path);
    writer.write_int(VERSION_ANY);
}

fn load_error(what: &str, error: &std::io::Error) -> BenchError {
    BenchError::Load(format!("cannot {what}: {error}"))
}

/// A one-shot `timerfd` on the monotonic clock (`Instant`'s), non-blocking.
struct Timer {
    fd: OwnedFd,
}

impl Timer {
    fn new() -> std::io::Result<Timer> {
        let flags = libc::TFD_NONBLOCK | libc::TFD_CLOEXEC;
        // SAFETY: timerfd_create has no memory preconditions.
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, flags) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        Ok(Timer { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Expires once, `delay` from now (re-arming resets its expiration count, so the
    /// edge-triggered poll sees each expiry without the count being read).
    fn arm(&self, delay: Duration) -> std::io::Result<()> {
        // A zero value would disarm it.
        let delay = delay.max(Duration::from_nanos(1));
        let value = libc::timespec {
            tv_sec: libc::time_t::try_from(delay.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(i32::try_from(delay.subsec_nanos()).unwrap_or(0)),
        };
        let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        let spec = libc::itimerspec { it_interval: zero, it_value: value };
        // SAFETY: `spec` is a valid itimerspec and the old value may be null.
        let result =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if result < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xorshift64*: a fast generator, good enough to pick keys and ops.
fn next_random(state: &mut u64) -> u64 {
    if *state == 0 {
        *state = 0x2545_F491_4F6C_DD1D;
    }
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zabflow_net::jute::{
        CreateRequest, DeleteRequest, GetDataRequest, MultiOp, MultiRequest, Request,
        SetDataRequest,
    };

    fn encoded(write: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut writer = Writer::new();
        write(&mut writer);
        writer.into_vec()
    }

    /// The hand-written encoders write what the codec's request records write.
    #[test]
    fn request_bodies_match_the_codec() {
        let value = b"vvv";
        let body = |request: Request| encoded(|writer| request.write_body(writer));
        let set = |path: &str| SetDataRequest {
            path: path.into(),
            data: Some(value.to_vec()),
            version: VERSION_ANY,
        };
        let get = GetDataRequest { path: "/b/n1".into(), watch: false };
        assert_eq!(encoded(|w| write_path_watch(w, "/b/n1")), body(Request::GetData(get)));
        assert_eq!(
            encoded(|w| write_set_data(w, "/b/n1", value)),
            body(Request::SetData(set("/b/n1")))
        );
        let ops = vec![MultiOp::SetData(set("/b/n1")), MultiOp::SetData(set("/b/n2"))];
        assert_eq!(
            encoded(|w| write_multi_set_data(w, ["/b/n1", "/b/n2"], value)),
            body(Request::Multi(MultiRequest { ops }))
        );
        let acl = [ACL::open_unsafe()];
        let mode = CreateMode::PersistentSequential;
        let create = CreateRequest {
            path: "/b/seq/s-".into(),
            data: Some(value.to_vec()),
            acl: acl.to_vec(),
            flags: mode.code(),
        };
        assert_eq!(
            encoded(|w| write_create(w, "/b/seq/s-", value, &acl, mode)),
            body(Request::Create(create))
        );
        let delete = DeleteRequest { path: "/b/tmp/s1-1".into(), version: VERSION_ANY };
        assert_eq!(encoded(|w| write_delete(w, "/b/tmp/s1-1")), body(Request::Delete(delete)));
    }

    #[test]
    fn the_timer_wakes_a_poll_when_it_expires() {
        let timer = Timer::new().unwrap();
        let mut poll = Poll::new().unwrap();
        let fd = timer.fd.as_raw_fd();
        poll.registry().register(&mut SourceFd(&fd), TIMER, Interest::READABLE).unwrap();
        let mut events = Events::with_capacity(4);
        for _ in 0..3 {
            let start = Instant::now();
            timer.arm(Duration::from_micros(300)).unwrap();
            poll.poll(&mut events, Some(Duration::from_secs(1))).unwrap();
            let waited = start.elapsed();
            assert!(events.iter().any(|event| event.token() == TIMER), "{waited:?}");
            assert!(waited >= Duration::from_micros(300), "{waited:?}");
        }
    }
}
