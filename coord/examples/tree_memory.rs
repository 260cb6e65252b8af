//! Resident memory per znode of a [`DataTree`], without a server around it.
//!
//! Builds `ZNODES` znodes (default 1,000,000) of `VALUE_BYTES` (default 100) under
//! `/bench`, named as `zabflow bench coord-memory` names them (`/bench/n0000000` …), each
//! by a create txn carrying its own decoded `world:anyone` ACL as a client's request does,
//! and prints the growth of `VmRSS` divided by the znodes added.
//!
//! ```text
//! cargo run --release -p zabflow-coord --example tree_memory [-- ZNODES [VALUE_BYTES]]
//! ```

use zabflow_coord::acl;
use zabflow_coord::data_tree::DataTree;
use zabflow_coord::txn::{CreateTxn, Txn, TxnHeader};
use zabflow_net::jute::{OpCode, Perms};

const ZNODES_DEFAULT: usize = 1_000_000;
const VALUE_BYTES_DEFAULT: usize = 100;
const PARENT_PATH: &str = "/bench";

/// `VmRSS` of this process, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("a VmRSS line");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("kB");
    kib * 1024
}

fn create(tree: &mut DataTree, zxid: i64, path: String, data: Vec<u8>) {
    let txn = Txn::Create(CreateTxn {
        path,
        data: Some(data),
        acl: vec![acl::world(Perms::ALL)],
        ephemeral: false,
        parent_cversion: -1,
    });
    let header =
        TxnHeader { client_id: 1, cxid: 0, zxid, time_ms: zxid, txn_type: OpCode::Create.code() };
    let applied = tree.apply(&header, &txn);
    assert_eq!(applied.result.err, 0, "create {zxid}");
}

fn main() {
    let mut args = std::env::args().skip(1).map(|arg| arg.parse::<usize>().expect("a number"));
    let znodes = args.next().unwrap_or(ZNODES_DEFAULT);
    let value_bytes = args.next().unwrap_or(VALUE_BYTES_DEFAULT);

    let mut tree = DataTree::new();
    create(&mut tree, 1, PARENT_PATH.to_owned(), Vec::new());
    let before_bytes = rss_bytes();
    for key in 0..znodes {
        let zxid = i64::try_from(key).expect("zxid") + 2;
        create(&mut tree, zxid, format!("{PARENT_PATH}/n{key:07}"), vec![b'v'; value_bytes]);
    }
    let after_bytes = rss_bytes();
    let grown_bytes = after_bytes.saturating_sub(before_bytes);
    println!("znodes             {znodes} of {value_bytes} B");
    println!("node_count         {}", tree.node_count());
    println!("approx_data_size   {}", tree.approximate_data_size());
    println!("rss before/after   {before_bytes} / {after_bytes} B");
    println!("rss MiB after      {:.1}", after_bytes as f64 / f64::from(1u32 << 20));
    println!("bytes per znode    {:.1}", grown_bytes as f64 / znodes.max(1) as f64);
}
