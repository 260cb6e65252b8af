//! Removing what a run created on servers it does not own (`--target external`).
//!
//! A fresh zabflow or ZooKeeper target is stopped and its data dir deleted, so nothing needs
//! undoing. An external ensemble is someone else's: the run works under a root of its own
//! (`/bench-<run id>`, never an existing node) and removes that whole subtree afterwards,
//! whether the run succeeded or not. The keys are deleted by name (listing a million
//! children would not fit a reply); everything else under the root (the create/delete
//! pairs' leftovers, the sequential nodes) is found by listing, through a session that
//! accepts large replies, and deleted children first. Deletes are pipelined on one session,
//! which the server applies in order, so a parent's delete always follows its children's.

use super::load::Keyspace;
use crate::constants::{COORD_CLEANUP_DEPTH, COORD_CLEANUP_PACKET_BYTES_MAX, COORD_DRAIN_TIMEOUT};
use crate::error::{BenchError, Result};
use crossbeam_channel::Receiver;
use zabflow_net::client::{Client, ClientConfig, Completion, VERSION_ANY};
use zabflow_net::jute::{DeleteRequest, ErrorCode, Request};
use zabflow_net::ZkError;

/// A root for one run on an external ensemble: `/bench-<hex>`, from the process id and the
/// clock, so concurrent and earlier runs never share one.
pub fn unique_root() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64);
    format!("/bench-{:x}{:08x}", nanos / 1_000_000, std::process::id())
}

/// Deletes `keyspace.root` and everything under it from the servers at `hosts`; returns
/// the number of nodes deleted. Nodes already gone are fine.
///
/// # Errors
/// [`BenchError::Load`] when the servers cannot be reached or a delete fails, naming the
/// root to remove by hand.
pub fn remove_keyspace(hosts: &[String], keyspace: &Keyspace) -> Result<u64> {
    let by_hand = |error: String| {
        BenchError::Load(format!(
            "removing {root} from the external servers: {error}; remove it by hand \
             (zkCli: deleteall {root})",
            root = keyspace.root
        ))
    };
    let mut config = ClientConfig::new(&hosts.join(",")).map_err(|e| by_hand(e.to_string()))?;
    config.packet_bytes_max = COORD_CLEANUP_PACKET_BYTES_MAX;
    config.request_queue_capacity = COORD_CLEANUP_DEPTH;
    let client = Client::connect(config).map_err(|error| by_hand(error.to_string()))?;
    let mut deleted = delete_paths(&client, keyspace.paths.iter()).map_err(by_hand)?;
    let mut rest = Vec::new();
    children_first(&client, &keyspace.root, &mut rest).map_err(by_hand)?;
    deleted += delete_paths(&client, rest.iter()).map_err(by_hand)?;
    let _ = client.close();
    Ok(deleted)
}

/// Appends every node under `path`, then `path` itself, children before parents.
fn children_first(
    client: &Client,
    path: &str,
    out: &mut Vec<String>,
) -> std::result::Result<(), String> {
    let children = match client.get_children(path, false) {
        Ok(children) => children,
        Err(ZkError::Code(ErrorCode::NoNode)) => return Ok(()),
        Err(error) => return Err(format!("listing {path}: {error}")),
    };
    for child in children {
        children_first(client, &format!("{path}/{child}"), out)?;
    }
    out.push(path.to_owned());
    Ok(())
}

/// Deletes `paths` in order, `COORD_CLEANUP_DEPTH` in flight; returns how many existed.
fn delete_paths<'a>(
    client: &Client,
    paths: impl Iterator<Item = &'a String>,
) -> std::result::Result<u64, String> {
    let (sender, receiver) = crossbeam_channel::bounded(COORD_CLEANUP_DEPTH);
    let (mut in_flight, mut deleted) = (0usize, 0u64);
    for path in paths {
        if in_flight == COORD_CLEANUP_DEPTH {
            deleted += expect_deleted(&receiver)?;
            in_flight -= 1;
        }
        let request = Request::Delete(DeleteRequest { path: path.clone(), version: VERSION_ANY });
        client.submit(request, 0, &sender).map_err(|error| error.to_string())?;
        in_flight += 1;
    }
    for _ in 0..in_flight {
        deleted += expect_deleted(&receiver)?;
    }
    Ok(deleted)
}

/// 1 for a node deleted, 0 for one already gone.
fn expect_deleted(receiver: &Receiver<Completion>) -> std::result::Result<u64, String> {
    let completion = receiver
        .recv_timeout(COORD_DRAIN_TIMEOUT)
        .map_err(|_| "no reply to a delete".to_owned())?;
    match completion.result {
        Ok(_) => Ok(1),
        Err(ZkError::Code(ErrorCode::NoNode)) => Ok(0),
        Err(error) => Err(format!("delete: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_roots_are_top_level_and_distinct() {
        let first = unique_root();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = unique_root();
        assert!(first.starts_with("/bench-") && !first[1..].contains('/'), "{first}");
        assert_ne!(first, second);
    }
}
