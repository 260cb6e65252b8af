//! The ensemble-wide facts the invariants are checked against.
//!
//! - The **committed history**: for every zxid any server has committed, the hash chain of
//!   the history up to it. A server committing zxid z with another chain, or committing z
//!   when a later zxid was committed without it, means two committed histories disagree.
//!   A snapshot's zxid is one point of that history whose earlier entries are not known
//!   one by one; a server may fill them in later (its chain at the snapshot's zxid is
//!   compared when it gets there).
//! - The **leaders**: which server established each epoch.
//! - The **acknowledged writes**: zxids applied at the server their client wrote to.
//!
//! Everything is kept in ordered maps so that nothing depends on hash iteration order.

use std::collections::{BTreeMap, BTreeSet};

use super::{request_of, zxid_text, Violation};
use crate::zab::{make_zxid, ServerId, Zxid};

/// The invariant names a failure reports.
pub mod invariant {
    pub const ONE_LEADER: &str = "at most one established leader per epoch";
    pub const PREFIXES_AGREE: &str = "committed prefixes of all servers agree";
    pub const ACKED_SURVIVE: &str = "acknowledged writes are in every later leader's history";
    pub const APPLIED_IS_REPLAY: &str = "applied state equals the replay of the committed log";
    pub const SYNC: &str =
        "sync: writes acknowledged or proposed before it are applied when it returns";
    pub const CONTRACT: &str = "the machine keeps the driver contract";
    pub const LIVENESS: &str = "after the faults heal, a leader commits client writes";
    pub const NO_PANIC: &str = "nothing panics";
    pub const DETERMINISM: &str = "a seed replays exactly";
}

/// The facts the invariants are checked against.
#[derive(Debug, Default)]
pub struct Checker {
    /// zxid → hash chain of the committed history up to it, and whether it is known only
    /// as a snapshot's zxid.
    committed: BTreeMap<Zxid, (u64, bool)>,
    /// Client request id → the zxid that committed it.
    requests: BTreeMap<u64, Zxid>,
    /// Epoch → the server that established it.
    leaders: BTreeMap<u32, ServerId>,
    acknowledged: BTreeSet<Zxid>,
}

impl Checker {
    /// How many zxids are known committed.
    #[must_use]
    pub fn committed_len(&self) -> usize {
        self.committed.len()
    }

    /// How many epochs were established.
    #[must_use]
    pub fn epochs_established(&self) -> usize {
        self.leaders.len()
    }

    /// How many writes were acknowledged.
    #[must_use]
    pub fn acknowledged_len(&self) -> usize {
        self.acknowledged.len()
    }

    /// The chain of the committed history at `zxid`, if `zxid` is committed.
    #[must_use]
    pub fn chain_at(&self, zxid: Zxid) -> Option<u64> {
        self.committed.get(&zxid).map(|&(chain, _)| chain)
    }

    /// Server `by` holds `zxid` committed, with `chain` as its history's hash chain up to it
    /// and `data` as the entry (`None` for a snapshot's zxid).
    ///
    /// # Errors
    /// If that disagrees with what other servers committed, or a client request is
    /// committed twice.
    pub fn commit(
        &mut self,
        by: ServerId,
        zxid: Zxid,
        chain: u64,
        data: Option<&[u8]>,
    ) -> Result<(), Violation> {
        if zxid == 0 {
            return Ok(());
        }
        if let Some(known) = self.chain_at(zxid) {
            if known == chain {
                return Ok(());
            }
            let detail = format!(
                "server {by} committed {} with history {chain:016x}, others with {known:016x}",
                zxid_text(zxid)
            );
            return Err(Violation::new(invariant::PREFIXES_AGREE, detail));
        }
        let next = self.committed.range(zxid + 1..).next();
        if let Some((&later, _)) = next.filter(|(_, &(_, snapshot))| !snapshot) {
            let detail = format!(
                "server {by} committed {}, but {} was committed by others without it",
                zxid_text(zxid),
                zxid_text(later)
            );
            return Err(Violation::new(invariant::PREFIXES_AGREE, detail));
        }
        self.committed.insert(zxid, (chain, data.is_none()));
        if let Some((request, _)) = data.and_then(request_of) {
            if let Some(&first) = self.requests.get(&request) {
                let detail = format!(
                    "request {request} committed twice, at {} and {}",
                    zxid_text(first),
                    zxid_text(zxid)
                );
                return Err(Violation::new(invariant::PREFIXES_AGREE, detail));
            }
            self.requests.insert(request, zxid);
        }
        Ok(())
    }

    /// Whether a log entry with this zxid and chain is committed.
    #[must_use]
    pub fn is_committed(&self, zxid: Zxid, chain: u64) -> bool {
        self.chain_at(zxid) == Some(chain)
    }

    /// Server `id` established `epoch`.
    ///
    /// # Errors
    /// If another server established it first.
    pub fn establish(&mut self, epoch: u32, id: ServerId) -> Result<(), Violation> {
        match self.leaders.insert(epoch, id) {
            Some(other) if other != id => {
                let detail = format!("servers {other} and {id} both established epoch {epoch}");
                Err(Violation::new(invariant::ONE_LEADER, detail))
            }
            _ => Ok(()),
        }
    }

    /// A client was told its write at `zxid` succeeded.
    pub fn acknowledge(&mut self, zxid: Zxid) {
        self.acknowledged.insert(zxid);
    }

    /// The last acknowledged zxid of `epoch` or an earlier one.
    #[must_use]
    pub fn last_acknowledged_by_epoch(&self, epoch: u32) -> Option<Zxid> {
        self.acknowledged.range(..=make_zxid(epoch, u32::MAX)).next_back().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_histories_must_agree() {
        let mut checker = Checker::default();
        let entry = Some(&b"entry"[..]);
        checker.commit(1, make_zxid(1, 1), 11, entry).unwrap();
        checker.commit(1, make_zxid(1, 3), 13, entry).unwrap();
        checker.commit(2, make_zxid(1, 1), 11, entry).unwrap();
        assert!(checker.commit(2, make_zxid(1, 3), 99, entry).is_err(), "another chain");
        assert!(checker.commit(2, make_zxid(1, 2), 12, entry).is_err(), "a gap filled late");
        assert!(checker.is_committed(make_zxid(1, 3), 13));
        checker.commit(3, make_zxid(2, 5), 25, None).unwrap();
        checker.commit(2, make_zxid(2, 4), 24, entry).expect("below a snapshot point");
    }

    #[test]
    fn a_request_commits_once() {
        let mut checker = Checker::default();
        let payload = super::super::request_payload(7, 1);
        checker.commit(1, make_zxid(1, 1), 11, Some(&payload)).unwrap();
        assert!(checker.commit(1, make_zxid(1, 2), 12, Some(&payload)).is_err());
    }

    #[test]
    fn one_leader_per_epoch() {
        let mut checker = Checker::default();
        checker.establish(1, 3).unwrap();
        checker.establish(2, 2).unwrap();
        assert!(checker.establish(2, 2).is_ok());
        assert!(checker.establish(1, 2).is_err());
    }

    #[test]
    fn acknowledged_by_epoch() {
        let mut checker = Checker::default();
        checker.acknowledge(make_zxid(1, 4));
        checker.acknowledge(make_zxid(3, 1));
        assert_eq!(checker.last_acknowledged_by_epoch(2), Some(make_zxid(1, 4)));
        assert_eq!(checker.last_acknowledged_by_epoch(3), Some(make_zxid(3, 1)));
        assert_eq!(checker.last_acknowledged_by_epoch(0), None);
    }
}
