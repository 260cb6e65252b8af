//! Loopback ports for servers that tests and benchmarks start.
//!
//! Ports handed out by `bind(127.0.0.1:0)` come from the kernel's ephemeral range, the same
//! range every outgoing connection takes its source port from. A server told to listen on
//! such a port a moment later can find it taken by some client or proxy connection of a test
//! running beside it ("Address already in use"). So servers get ports *below* that range
//! (or above it, when it starts too low), picked at random so parallel test processes rarely
//! meet, and checked free by binding them.

use std::io;
use std::net::TcpListener;

use rand::Rng as _;

/// The lowest port the kernel hands out as a source port (32768 when unreadable).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// `count` distinct loopback ports outside the ephemeral range that were free a moment ago.
pub fn free_loopback_ports(count: usize) -> io::Result<Vec<u16>> {
    let low = ephemeral_low();
    let (from, to) = if low > 12_000 { (10_000, low) } else { (61_000, u16::MAX) };
    let mut random = rand::thread_rng();
    let mut ports: Vec<u16> = Vec::with_capacity(count);
    let mut attempts = 0;
    while ports.len() < count {
        attempts += 1;
        if attempts > 100 * count + 1_000 {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("no free loopback port in {from}..{to} after {attempts} tries"),
            ));
        }
        let port = random.gen_range(from..to);
        if !ports.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let ports = free_loopback_ports(30).unwrap();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 30);
        let low = ephemeral_low();
        for port in ports {
            assert!(low <= 12_000 || port < low, "{port} is in the ephemeral range");
            TcpListener::bind(("127.0.0.1", port)).unwrap();
        }
    }
}
