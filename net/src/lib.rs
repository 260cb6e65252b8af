//! zabflow-net: event loops, framing and the wire codecs (ZooKeeper's jute client
//! protocol and zabflow's peer protocol).
//!
//! The codecs land with the coordination service; this crate exists now so that the
//! dependency direction of the workspace (`net` on `core`, `coord` on both) is fixed from
//! the start.
