//! What a coord workload asks of the servers: the op mix, the pacing and the pipelining depth.
//!
//! A [`Mix`] weighs the kinds of request ([`MixOp`]); each session draws its next request from
//! it with its own seeded generator, so a run is reproducible request for request. `create`
//! and `delete` come as a pair: a session that created a node deletes it with its next
//! create/delete draw (the session's FIFO order makes that safe while both are in flight).

use crate::error::{BenchError, Result};
use std::fmt;

/// A kind of request the mix can draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MixOp {
    GetData,
    SetData,
    /// Alternately `create` and `delete` of the session's own node under `/bench/tmp`.
    CreateDelete,
    Exists,
    GetChildren,
    /// `multi` of two `setData`s on random keys.
    Multi,
    /// `create` of a persistent sequential node under `/bench/seq`.
    CreateSequential,
}

impl MixOp {
    const ALL: [MixOp; 7] = [
        MixOp::GetData,
        MixOp::SetData,
        MixOp::CreateDelete,
        MixOp::Exists,
        MixOp::GetChildren,
        MixOp::Multi,
        MixOp::CreateSequential,
    ];

    /// The name in `--mix` (ZooKeeper's op names).
    pub fn name(self) -> &'static str {
        match self {
            MixOp::GetData => "getData",
            MixOp::SetData => "setData",
            MixOp::CreateDelete => "create/delete",
            MixOp::Exists => "exists",
            MixOp::GetChildren => "getChildren",
            MixOp::Multi => "multi",
            MixOp::CreateSequential => "createSequential",
        }
    }
}

/// A request as measured: one latency histogram and one series per op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    GetData,
    SetData,
    Create,
    Delete,
    Exists,
    GetChildren,
    Multi,
    CreateSequential,
}

impl Op {
    /// Number of ops, for arrays indexed by [`Op::index`].
    pub const COUNT: usize = 8;
    /// Every op, in index order.
    pub const ALL: [Op; Op::COUNT] = [
        Op::GetData,
        Op::SetData,
        Op::Create,
        Op::Delete,
        Op::Exists,
        Op::GetChildren,
        Op::Multi,
        Op::CreateSequential,
    ];

    /// Position in [`Op::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The series name's first part (ZooKeeper's op names).
    pub fn name(self) -> &'static str {
        match self {
            Op::GetData => "getData",
            Op::SetData => "setData",
            Op::Create => "create",
            Op::Delete => "delete",
            Op::Exists => "exists",
            Op::GetChildren => "getChildren",
            Op::Multi => "multi",
            Op::CreateSequential => "createSequential",
        }
    }
}

/// Weighted kinds of request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    /// Each op with a positive weight, in [`MixOp`] order.
    weights: Vec<(MixOp, u32)>,
    weight_total: u32,
}

impl Mix {
    /// Only `op`.
    pub fn only(op: MixOp) -> Mix {
        Mix { weights: vec![(op, 1)], weight_total: 1 }
    }

    /// Parses `op=weight,…` (`getData=9,setData=1`); a bare op name weighs 1.
    ///
    /// # Errors
    /// [`BenchError::Param`] for an unknown op, a bad weight, or no positive weight.
    pub fn parse(text: &str) -> Result<Mix> {
        let mut weights: Vec<(MixOp, u32)> = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            let (name, weight) = entry.split_once('=').unwrap_or((entry, "1"));
            let op =
                MixOp::ALL.into_iter().find(|op| op.name() == name.trim()).ok_or_else(|| {
                    let names: Vec<&str> = MixOp::ALL.iter().map(|op| op.name()).collect();
                    BenchError::Param(format!(
                        "--mix: unknown op {name:?}; ops: {}",
                        names.join(", ")
                    ))
                })?;
            let weight: u32 =
                weight.trim().parse().ok().filter(|&w| w <= 1_000_000).ok_or_else(|| {
                    BenchError::Param(format!("--mix: bad weight in {entry:?} (0..=1000000)"))
                })?;
            if weight > 0 && !weights.iter().any(|(known, _)| *known == op) {
                weights.push((op, weight));
            }
        }
        weights.sort();
        let weight_total = weights.iter().map(|(_, weight)| weight).sum();
        if weight_total == 0 {
            return Err(BenchError::Param(format!("--mix {text:?} weighs no op")));
        }
        Ok(Mix { weights, weight_total })
    }

    /// The op drawn by `roll` (any `u64`, uniformly random).
    pub fn pick(&self, roll: u64) -> MixOp {
        let mut point = u32::try_from(roll % u64::from(self.weight_total)).unwrap_or(0);
        for &(op, weight) in &self.weights {
            if point < weight {
                return op;
            }
            point -= weight;
        }
        unreachable!("point {point} is below the total weight")
    }

    /// The single op of a one-op mix.
    pub fn single(&self) -> Option<MixOp> {
        match self.weights.as_slice() {
            [(op, _)] => Some(*op),
            _ => None,
        }
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(op) = self.single() {
            return formatter.write_str(op.name());
        }
        let parts: Vec<String> =
            self.weights.iter().map(|(op, weight)| format!("{}={weight}", op.name())).collect();
        formatter.write_str(&parts.join(","))
    }
}

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// Every session keeps `depth` requests in flight: as fast as the servers answer.
    Closed,
    /// `rate_per_s` requests per second over all sessions, on a fixed schedule; latency runs
    /// from the scheduled send time, so a stalled server is charged for the requests it
    /// held back (no coordinated omission).
    Open { rate_per_s: u64 },
}

/// One measured workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub mix: Mix,
    pub pacing: Pacing,
    /// Requests in flight per session (closed loop), or at most (open loop).
    pub depth: usize,
}

impl Workload {
    /// `closed/depth=128` or `open/rate=1000`: the part of a series name after the op.
    pub fn label(&self) -> String {
        match self.pacing {
            Pacing::Closed => format!("closed/depth={}", self.depth),
            Pacing::Open { rate_per_s } => format!("open/rate={rate_per_s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_picks_by_weight() {
        let mix = Mix::parse("setData=1, getData=3").unwrap();
        assert_eq!(mix.to_string(), "getData=3,setData=1");
        let picks: Vec<MixOp> = (0..4).map(|roll| mix.pick(roll)).collect();
        assert_eq!(picks, [MixOp::GetData, MixOp::GetData, MixOp::GetData, MixOp::SetData]);
        assert_eq!(Mix::parse("create/delete").unwrap().single(), Some(MixOp::CreateDelete));
        assert!(Mix::parse("getData=0").is_err());
        assert!(Mix::parse("sync").is_err());
        assert!(Mix::parse("getData=x").is_err());
    }
}
