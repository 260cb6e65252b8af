//! The simulation's trace: one line per event, formatted only when tracing is on, kept as a
//! bounded tail for failure reports or printed as it happens (`zabflow sim --verbose`).
//! Zxids read `epoch:counter`; messages read as short phrases.

use std::collections::VecDeque;

use super::request_of;
use crate::zab::{counter_of, epoch_of, Entry, Message, SyncMode, Zxid};

/// Trace lines a failure shows.
const TRACE_TAIL_LINES: usize = 60;

/// How a run traces its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceMode {
    /// No trace (fastest).
    Off,
    /// Keep the last lines for the failure report.
    Tail,
    /// Print every line to stdout.
    Print,
}

/// The trace: off, a bounded tail, or printed.
#[derive(Debug)]
pub struct Trace {
    pub mode: TraceMode,
    pub tail: VecDeque<String>,
}

impl Trace {
    pub fn on(&self) -> bool {
        self.mode != TraceMode::Off
    }

    pub fn line(&mut self, line: String) {
        match self.mode {
            TraceMode::Off => {}
            TraceMode::Print => println!("{line}"),
            TraceMode::Tail => {
                if self.tail.len() == TRACE_TAIL_LINES {
                    self.tail.pop_front();
                }
                self.tail.push_back(line);
            }
        }
    }
}

/// `epoch:counter`, as traces show zxids.
pub fn zxid_text(zxid: Zxid) -> String {
    format!("{}:{}", epoch_of(zxid), counter_of(zxid))
}

pub fn zxids_text(zxids: &[Zxid]) -> String {
    match zxids {
        [] => "nothing".to_owned(),
        [one] => zxid_text(*one),
        [first, .., last] => format!("{}..{}", zxid_text(*first), zxid_text(*last)),
    }
}

pub fn entries_text(entries: &[Entry]) -> String {
    let zxids: Vec<Zxid> =
        [entries.first(), entries.last()].into_iter().flatten().map(|entry| entry.zxid).collect();
    format!("{} ({})", zxids_text(&zxids), entries.len())
}

pub fn side_text(sides: &[bool]) -> String {
    let side = |which: bool| -> Vec<String> {
        (0..sides.len()).filter(|&i| sides[i] == which).map(|i| format!("s{}", i + 1)).collect()
    };
    format!("{} | {}", side(true).join(" "), side(false).join(" "))
}

/// A message as one short trace phrase.
pub fn message_text(message: &Message) -> String {
    match message {
        Message::Vote(vote) => format!(
            "Vote(s{} {} e{} round {} {:?})",
            vote.leader,
            zxid_text(vote.zxid),
            vote.peer_epoch,
            vote.round,
            vote.state
        ),
        Message::FollowerInfo { accepted_epoch, last_zxid } => {
            format!("FollowerInfo(accepted {accepted_epoch}, last {})", zxid_text(*last_zxid))
        }
        Message::LeaderInfo { epoch } => format!("LeaderInfo({epoch})"),
        Message::AckEpoch { current_epoch, last_zxid, counts } => {
            let counts = if *counts { "" } else { ", not counted" };
            format!("AckEpoch(current {current_epoch}, last {}{counts})", zxid_text(*last_zxid))
        }
        Message::Sync { mode, entries } => {
            let mode = match mode {
                SyncMode::Diff => "DIFF".to_owned(),
                SyncMode::Trunc { to } => format!("TRUNC to {}", zxid_text(*to)),
                SyncMode::Snap { zxid, .. } => format!("SNAP at {}", zxid_text(*zxid)),
            };
            format!("Sync({mode}, {})", entries_text(entries))
        }
        Message::NewLeader { epoch, zxid } => format!("NewLeader({epoch}, {})", zxid_text(*zxid)),
        Message::AckNewLeader { zxid } => format!("AckNewLeader({})", zxid_text(*zxid)),
        Message::UpToDate { committed } => format!("UpToDate({})", zxid_text(*committed)),
        Message::Proposal { entries } => format!("Proposal({})", entries_text(entries)),
        Message::Ack { zxid } => format!("Ack({})", zxid_text(*zxid)),
        Message::Commit { zxid } => format!("Commit({})", zxid_text(*zxid)),
        Message::Ping { committed } => format!("Ping({})", zxid_text(*committed)),
        Message::Request { payload } => match request_of(payload) {
            Some((request, _)) => format!("Request({request})"),
            None => "Request(?)".to_owned(),
        },
        Message::Sessions { .. } => "Sessions".to_owned(),
        Message::SyncRequest { id } => format!("SyncRequest({id})"),
        Message::SyncReply { id } => format!("SyncReply({id})"),
    }
}
