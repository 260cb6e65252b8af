//! Read-only mode (`readonlymode.enabled`): ZooKeeper's `ReadOnlyZooKeeperServer` and
//! `ReadOnlyRequestProcessor`. An ensemble member that has been LOOKING for
//! `max(2000 ms, tickTime)` — cut off from its quorum — serves the clients that ask for it
//! from the tree it has, and refuses every change.
//!
//! ```text
//! LOOKING ──grace──▶ read-only ──any other role──▶ shut down: its clients are disconnected,
//!                                                  its sessions forgotten
//! connect   readOnly flag absent or false → closed (NOT_READ_ONLY_CLIENT)
//!           client ahead of our zxid      → closed
//!           session 0   → a local session: id from a tracker of its own, never replicated,
//!                         no zxid; ConnectResponse readOnly=true. Without
//!                         localSessionsEnabled ZooKeeper 3.8 refuses the createSession (its
//!                         reply is not a ConnectResponse): closed here
//!           a global session (in the replicated tree)  → closed (RENEW_GLOBAL_SESSION)
//!           a local one → resumed as usual; unknown or expired → the usual refusal
//! request   sync create create2 createTTL createContainer delete deleteContainer setData
//!           reconfig setACL multi check → NotReadOnly (-119), the tree's zxid, no body
//!           closeSession → the local session ends (reply 0, then the connection closes)
//!           everything else (reads, multiRead, watches, auth, ping) → served as usual
//! expiry    local sessions expire on their own tracker; their connections close
//! ```
//!
//! The mode lives beside the Zab machine, not in it: the machine only reports that it is
//! LOOKING, and read-only serving is what this driver does meanwhile.

use std::collections::HashSet;

use zabflow_net::jute::{ConnectRequest, ErrorCode, Request, RequestHeader};

use crate::constants::READ_ONLY_GRACE_MS_MIN;
use crate::server::{log_event, Server, SessionEntry};
use crate::session_tracker::SessionTracker;
use crate::watch_manager::SessionId;
use crate::zab::Role;

/// The read-only server while it runs: its local sessions and their expiry.
#[derive(Debug)]
pub(crate) struct ReadOnlyServer {
    tracker: SessionTracker,
    sessions: HashSet<SessionId>,
}

/// Whether a read-only server answers `request` with NotReadOnly
/// (`ReadOnlyRequestProcessor`'s list).
#[must_use]
pub fn refuses(request: &Request) -> bool {
    matches!(
        request,
        Request::Sync(_)
            | Request::Create(_)
            | Request::Create2(_)
            | Request::CreateTtl(_)
            | Request::CreateContainer(_)
            | Request::Delete(_)
            | Request::DeleteContainer(_)
            | Request::SetData(_)
            | Request::Reconfig(_)
            | Request::SetAcl(_)
            | Request::Multi(_)
            | Request::Check(_)
    )
}

/// How long a member looks before it serves read-only clients, in milliseconds.
#[must_use]
pub fn grace_ms(tick_time_ms: u32) -> i64 {
    i64::from(tick_time_ms.max(READ_ONLY_GRACE_MS_MIN))
}

impl Server {
    /// Whether this server runs in read-only mode now.
    pub(crate) fn read_only(&self) -> bool {
        self.read_only.is_some()
    }

    /// The machine's new role: LOOKING arms the grace timer (when the mode is enabled);
    /// any other role shuts the read-only server down.
    pub(crate) fn read_only_on_role(&mut self, role: Role) {
        if role == Role::Looking {
            if self.config.read_only_mode_enabled
                && self.read_only.is_none()
                && self.read_only_start_ms.is_none()
            {
                let at = self.clock.now_ms() + grace_ms(self.config.tick_time_ms);
                self.read_only_start_ms = Some(at);
            }
            return;
        }
        self.read_only_start_ms = None;
        if self.read_only.is_some() {
            self.stop_read_only();
        }
    }

    /// Starts the read-only server once the grace has passed; expires local sessions.
    pub(crate) fn read_only_timers(&mut self, now_ms: i64) {
        if self.read_only_start_ms.is_some_and(|at| now_ms >= at) {
            self.read_only_start_ms = None;
            let server_id = self.config.my_id.unwrap_or(0) as u8;
            let tracker = SessionTracker::new(self.config.tick_time_ms, server_id, now_ms);
            self.read_only = Some(ReadOnlyServer { tracker, sessions: HashSet::new() });
            log_event("read-only mode: no quorum; serving read-only clients");
        }
        let Some(read_only) = &mut self.read_only else { return };
        for session_id in read_only.tracker.expired(now_ms) {
            log_event(&format!("local session 0x{session_id:x} expired"));
            self.end_local_session(session_id);
        }
    }

    fn stop_read_only(&mut self) {
        let Some(read_only) = self.read_only.take() else { return };
        log_event("read-only mode ends: disconnecting its clients");
        let mut sessions: Vec<SessionId> = read_only.sessions.into_iter().collect();
        sessions.sort_unstable();
        for session_id in sessions {
            let entry = self.sessions.remove(&session_id);
            self.tree.watches_mut().remove_session(session_id);
            if let Some(id) = entry.and_then(|entry| entry.connection) {
                self.close_connection(id, "the read-only server shut down");
            }
        }
    }

    /// Touches a session on the tracker that owns it: the read-only server's while it runs
    /// (no other session is served then), the replicated one otherwise.
    pub(crate) fn touch_session(&mut self, session_id: SessionId) -> bool {
        let now_ms = self.clock.now_ms();
        match &mut self.read_only {
            Some(read_only) => read_only.tracker.touch(session_id, now_ms),
            None => self.tracker.touch(session_id, now_ms),
        }
    }

    /// A ConnectRequest while read-only (see the module doc).
    pub(crate) fn read_only_connect(&mut self, id: u64, request: &ConnectRequest) {
        if request.read_only != Some(true) {
            self.close_connection(id, "refused: not a read-only client (read-only mode)");
            return;
        }
        let last_zxid = self.tree.last_processed_zxid();
        if request.last_zxid_seen > last_zxid {
            self.close_connection(id, "client ahead of the server");
            return;
        }
        let timeout_ms = self.config.session_config().negotiate_timeout_ms(request.time_out);
        let read_only = self.read_only.as_mut().expect("read-only mode");
        if request.session_id != 0 {
            if self.sessions.contains_key(&request.session_id)
                && !read_only.sessions.contains(&request.session_id)
            {
                self.close_connection(id, "refused: a global session in read-only mode");
                return;
            }
            self.resume_session(id, request, timeout_ms);
            return;
        }
        if !self.config.local_sessions_enabled {
            // ZooKeeper 3.8 answers such a createSession with a NotReadOnly reply header
            // where the client expects a ConnectResponse: the client's connection fails.
            self.close_connection(id, "refused: read-only mode needs localSessionsEnabled");
            return;
        }
        let session_id = read_only.tracker.create_session(timeout_ms, self.clock.now_ms());
        read_only.sessions.insert(session_id);
        self.sessions.insert(session_id, SessionEntry { timeout_ms, connection: None });
        log_event(&format!("local session 0x{session_id:x} created (read-only mode)"));
        self.establish(id, session_id, timeout_ms, request.read_only);
    }

    /// A request while read-only: true when answered here (a refused change or a
    /// closeSession), false for the usual read path.
    pub(crate) fn read_only_request(
        &mut self,
        id: u64,
        session_id: SessionId,
        header: RequestHeader,
        request: &Request,
    ) -> bool {
        if refuses(request) {
            self.queue_read(id, header, Err(ErrorCode::NotReadOnly.code()));
            return true;
        }
        if !matches!(request, Request::CloseSession) {
            return false;
        }
        let zxid = self.tree.last_processed_zxid();
        self.reply(id, header.xid, zxid, 0, None);
        self.end_local_session(session_id);
        true
    }

    /// Forgets a local session; its connection closes once its replies are written.
    fn end_local_session(&mut self, session_id: SessionId) {
        if let Some(read_only) = &mut self.read_only {
            read_only.sessions.remove(&session_id);
            read_only.tracker.remove(session_id);
        }
        self.tree.watches_mut().remove_session(session_id);
        self.end_session(session_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zabflow_net::jute::{ExistsRequest, MultiRequest, SyncRequest};

    #[test]
    fn changes_and_sync_are_refused_reads_are_not() {
        let sync = Request::Sync(SyncRequest { path: "/".into() });
        let multi = Request::Multi(MultiRequest { ops: Vec::new() });
        assert!(refuses(&sync) && refuses(&multi));
        let exists = Request::Exists(ExistsRequest { path: "/".into(), watch: false });
        assert!(!refuses(&exists) && !refuses(&Request::Ping));
        assert!(!refuses(&Request::MultiRead(MultiRequest { ops: Vec::new() })));
        assert!(!refuses(&Request::CloseSession), "a local session may close");
    }

    #[test]
    fn the_grace_is_at_least_two_seconds() {
        assert_eq!(grace_ms(200), 2_000);
        assert_eq!(grace_ms(3_000), 3_000);
    }
}
