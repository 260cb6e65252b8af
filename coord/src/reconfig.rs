//! `Reconfig`: the answer to a `reconfig` request (op 16), checked in ZooKeeper 3.8's order.
//!
//! zabflow does not change an ensemble's membership, but clients still see ZooKeeper's
//! answers for every request ZooKeeper would refuse, so a tool that probes reconfig (kazoo's
//! tests do) gets the same error codes. Like any refused write, the answer is an error txn
//! that takes a zxid. The checks, each stopping at its first failure:
//!
//! ```text
//! reconfigEnabled unset                      ReconfigDisabled
//! standalone server                          Unimplemented
//! curConfigId not -1 and not the version     BadVersion
//! newMembers given:  each "server.N=spec"    BadArguments when a line does not parse
//! else incremental:  leaving = id ("," id)*  MarshallingError for an id that is no number
//!                    joining = joiner ("," joiner)*
//!                    joiner  = "server." N "=" host ":" port ":" port [":" role] ";" client
//!                                            BadArguments when it does not parse
//!                                            (MarshallingError when N is no number)
//! fewer voting members afterwards than 2      BadArguments
//!   (1 with standaloneEnabled=false)
//! WRITE on /zookeeper/config (super only)    NoAuth
//! a valid request from super                 Unimplemented (ZooKeeper would reconfigure)
//! ```
//!
//! The version of an ensemble's configuration is the zxid of its first epoch, as ZooKeeper's
//! is until its first reconfig. Not checked: duplicate addresses in the new configuration and
//! whether a quorum of it is connected (NewConfigNoQuorum).

use std::collections::BTreeMap;

use zabflow_net::jute::{ErrorCode, Id, Perms, ReconfigRequest, ACL};

use crate::acl;

/// `QuorumVerifier.getVersion()` of a configuration no reconfig has changed: epoch 1's zxid.
pub const CONFIG_VERSION_INITIAL: i64 = 1 << 32;

/// What the reconfig checks need to know of the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconfigConfig {
    /// zoo.cfg `reconfigEnabled`.
    pub enabled: bool,
    /// The `server.N` lines: id → whether it votes (a participant, not an observer). Empty
    /// for a standalone server.
    pub members: BTreeMap<u64, bool>,
    /// The fewest voting members a new configuration may have: 2, or 1 when zoo.cfg says
    /// `standaloneEnabled=false` (ZooKeeper would rather run standalone than with one voter).
    pub voters_min: usize,
}

/// The error a reconfig request gets; `config_acl` is `/zookeeper/config`'s ACL.
#[must_use]
pub fn check(
    config: &ReconfigConfig,
    request: &ReconfigRequest,
    config_acl: &[ACL],
    auth_ids: &[Id],
) -> ErrorCode {
    if !config.enabled {
        return ErrorCode::ReconfigDisabled;
    }
    if config.members.is_empty() {
        return ErrorCode::Unimplemented;
    }
    if request.cur_config_id != -1 && request.cur_config_id != CONFIG_VERSION_INITIAL {
        return ErrorCode::BadVersion;
    }
    let next = match &request.new_members {
        Some(members) => non_incremental(members),
        None => incremental(config, request),
    };
    let next = match next {
        Ok(next) => next,
        Err(code) => return code,
    };
    if next.values().filter(|&&voting| voting).count() < config.voters_min {
        return ErrorCode::BadArguments;
    }
    if let Err(code) = acl::check(config_acl, Perms::WRITE, auth_ids) {
        return code;
    }
    ErrorCode::Unimplemented
}

/// `newMembers`: a whole configuration, lines or commas of `server.N=spec` (other keys, such
/// as `version=`, are ignored as ZooKeeper's dynamic config parser ignores them).
fn non_incremental(members: &str) -> Result<BTreeMap<u64, bool>, ErrorCode> {
    let mut next = BTreeMap::new();
    for line in members.split([',', '\n']).map(str::trim).filter(|line| !line.is_empty()) {
        let (key, spec) = line.split_once('=').ok_or(ErrorCode::BadArguments)?;
        let Some(id) = key.trim().strip_prefix("server.") else { continue };
        let id = id.parse::<u64>().map_err(|_| ErrorCode::BadArguments)?;
        next.insert(id, parse_spec(spec.trim(), false)?);
    }
    Ok(next)
}

/// `leavingServers` and `joiningServers` applied to the current members.
fn incremental(
    config: &ReconfigConfig,
    request: &ReconfigRequest,
) -> Result<BTreeMap<u64, bool>, ErrorCode> {
    let mut next = config.members.clone();
    for leaving in split_list(request.leaving_servers.as_deref()) {
        let id = leaving.parse::<i64>().map_err(|_| ErrorCode::MarshallingError)?;
        next.remove(&(id as u64));
    }
    for joiner in split_list(request.joining_servers.as_deref()) {
        let parts: Vec<&str> = joiner.split('=').map(str::trim).filter(|p| !p.is_empty()).collect();
        let [key, spec] = parts[..] else { return Err(ErrorCode::BadArguments) };
        let id = key[key.rfind('.').map_or(0, |dot| dot + 1)..]
            .parse::<i64>()
            .map_err(|_| ErrorCode::MarshallingError)?;
        next.insert(id as u64, parse_spec(spec, true)?);
    }
    Ok(next)
}

/// ZooKeeper's `StringUtils.split(text, ",")`: trimmed, empty items dropped.
fn split_list(text: Option<&str>) -> impl Iterator<Item = &str> {
    text.unwrap_or_default().split(',').map(str::trim).filter(|item| !item.is_empty())
}

/// `QuorumServer(id, spec)`: `host:port:port[:participant|observer][;[host:]port]`; whether
/// the server votes. `client_required` is the incremental joiner's rule.
fn parse_spec(spec: &str, client_required: bool) -> Result<bool, ErrorCode> {
    let (server, client) = match spec.split_once(';') {
        Some((server, client)) => (server, Some(client)),
        None => (spec, None),
    };
    let parts: Vec<&str> = server.split(':').collect();
    if !(3..=4).contains(&parts.len()) || parts[0].is_empty() {
        return Err(ErrorCode::BadArguments);
    }
    for port in &parts[1..3] {
        port.trim().parse::<u16>().map_err(|_| ErrorCode::BadArguments)?;
    }
    let voting = match parts.get(3).map(|role| role.trim().to_ascii_lowercase()) {
        None => true,
        Some(role) if role == "participant" => true,
        Some(role) if role == "observer" => false,
        Some(_) => return Err(ErrorCode::BadArguments),
    };
    match client {
        Some(client) => {
            let port = client.rsplit(':').next().unwrap_or_default().trim();
            port.parse::<u16>().map_err(|_| ErrorCode::BadArguments)?;
        }
        None if client_required => return Err(ErrorCode::BadArguments),
        None => {}
    }
    Ok(voting)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ensemble() -> ReconfigConfig {
        let members = [(1, true), (2, true), (3, true)].into();
        ReconfigConfig { enabled: true, members, voters_min: 2 }
    }

    fn request(joining: Option<&str>, leaving: Option<&str>, version: i64) -> ReconfigRequest {
        ReconfigRequest {
            joining_servers: joining.map(str::to_owned),
            leaving_servers: leaving.map(str::to_owned),
            new_members: None,
            cur_config_id: version,
        }
    }

    #[test]
    fn checks_run_in_zookeepers_order() {
        let read_only = [acl::world(Perms::READ)];
        let observer = Some("server.999=0.0.0.0:1234:2345:observer;3456");
        let check = |config: &ReconfigConfig, request: &ReconfigRequest, ids: &[Id]| {
            check(config, request, &read_only, ids)
        };
        let superuser = [Id { scheme: "super".into(), id: String::new() }];
        let disabled = ReconfigConfig { enabled: false, ..ensemble() };
        let standalone = ReconfigConfig { members: BTreeMap::new(), ..ensemble() };
        let one_voter = ReconfigConfig { voters_min: 1, ..ensemble() };
        let cases = [
            (&disabled, request(observer, None, -1), &[][..], ErrorCode::ReconfigDisabled),
            (&standalone, request(observer, None, -1), &[], ErrorCode::Unimplemented),
            (&ensemble(), request(observer, None, 12345), &[], ErrorCode::BadVersion),
            (&ensemble(), request(Some("some thing"), None, -1), &[], ErrorCode::BadArguments),
            (&ensemble(), request(Some("server.9=h:1:2"), None, -1), &[], ErrorCode::BadArguments),
            (&ensemble(), request(None, Some("x"), -1), &[], ErrorCode::MarshallingError),
            (&ensemble(), request(None, Some("1,2"), -1), &[], ErrorCode::BadArguments),
            (&one_voter, request(None, Some("1,2"), -1), &[], ErrorCode::NoAuth),
            (&one_voter, request(None, Some("1,2,3"), -1), &[], ErrorCode::BadArguments),
            (
                &ensemble(),
                request(Some("server.x=h:1:2;3"), None, -1),
                &[],
                ErrorCode::MarshallingError,
            ),
            (&ensemble(), request(observer, None, -1), &[], ErrorCode::NoAuth),
            (&ensemble(), request(observer, None, CONFIG_VERSION_INITIAL), &[], ErrorCode::NoAuth),
            (&ensemble(), request(None, Some("77"), -1), &superuser, ErrorCode::Unimplemented),
        ];
        for (config, request, ids, expected) in cases {
            assert_eq!(check(config, &request, ids), expected, "{request:?}");
        }
    }
}
