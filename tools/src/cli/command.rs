//! Running one parsed [`Command`] against a ZooKeeper session: the calls it makes and the
//! text it prints, or the message of its failure.
//!
//! Each command makes the same calls as ZooKeeper's shell: `create` without data sends null
//! data (so `get` prints `null`), `ls -R`, `deleteall` and `setAcl -R` walk the subtree
//! depth first in name order, `stat` is `exists`. Paths are validated here, before any call,
//! as ZooKeeper's client does. A command whose path is bad or whose call fails returns the
//! message ZooKeeper's shell prints for it; the shell counts it as failed.

use zabflow_coord::constants::TTL_MS_MAX;
use zabflow_net::client::Client;
use zabflow_net::jute::{
    CreateMode, CreateRequest, CreateTTLRequest, ErrorCode, GetDataRequest, Id, Perms, Request,
    Response, ACL,
};
use zabflow_net::path::{validate_create_path, validate_path};
use zabflow_net::ZkError;

use super::output::{error_message, format_acl, format_list, format_stat};
use super::parser::{Command, CreateKind, USAGES};

/// Nodes `ls -R`, `deleteall` and `setAcl -R` visit at most: a walk larger than this is
/// refused rather than held in memory.
pub const TREE_NODES_MAX: usize = 1_000_000;

/// What a command printed, or why it failed.
pub type Outcome = Result<String, String>;

/// Runs `command` on `client` and returns what it prints on stdout. `Quit` and `Close` are
/// the shell's own and print nothing here.
///
/// # Errors
/// The message ZooKeeper's shell prints for the failure.
pub fn execute(client: &Client, command: &Command) -> Outcome {
    match command {
        Command::Ls { path, recursive, stat, watch } => ls(client, path, *recursive, *stat, *watch),
        Command::Get { path, stat, watch } => get(client, path, *stat, *watch),
        Command::Set { path, data, stat, version } => {
            valid(path)?;
            let new_stat = client.set_data(path, data.as_bytes(), *version).map_err(at(path))?;
            Ok(if *stat { format_stat(&new_stat) } else { String::new() })
        }
        Command::Create { path, data, acl, kind } => {
            create(client, path, data.as_deref(), acl.as_deref(), *kind)
        }
        Command::Delete { path, version } => {
            valid(path)?;
            client.delete(path, *version).map_err(at(path))?;
            Ok(String::new())
        }
        Command::DeleteAll { path } => delete_all(client, path),
        Command::Stat { path, watch } => {
            valid(path)?;
            match client.exists(path, *watch).map_err(at(path))? {
                Some(stat) => Ok(format_stat(&stat)),
                None => Err(error_message(&ZkError::Code(ErrorCode::NoNode), path)),
            }
        }
        Command::Sync { path } => {
            valid(path)?;
            match client.sync(path) {
                Ok(_) => Ok("Sync is OK\n".to_owned()),
                Err(ZkError::Code(code)) => Err(format!("Sync has failed. rc={}", code.code())),
                Err(error) => Err(error_message(&error, path)),
            }
        }
        Command::AddAuth { scheme, auth } => {
            client.add_auth(scheme, auth.as_bytes()).map_err(at(""))?;
            Ok(String::new())
        }
        Command::GetAcl { path, stat } => {
            valid(path)?;
            let (acl, node_stat) = client.get_acl(path).map_err(at(path))?;
            let stat_text = if *stat { format_stat(&node_stat) } else { String::new() };
            Ok(format_acl(&acl) + &stat_text)
        }
        Command::SetAcl { path, acl, stat, version, recursive } => {
            set_acl(client, path, acl, *stat, *version, *recursive)
        }
        _ => execute_more(client, command),
    }
}

/// The commands of ZooKeeper 3.6 and later, and the shell's own.
fn execute_more(client: &Client, command: &Command) -> Outcome {
    match command {
        Command::GetEphemerals { path } => {
            valid(path)?;
            Ok(format_list(client.get_ephemerals(path).map_err(at(path))?))
        }
        Command::GetAllChildrenNumber { path } => {
            valid(path)?;
            Ok(format!("{}\n", client.get_all_children_number(path).map_err(at(path))?))
        }
        Command::AddWatch { path, mode } => {
            valid(path)?;
            client.add_watch(path, *mode).map_err(at(path))?;
            Ok(String::new())
        }
        Command::RemoveWatches { path, watcher_type } => {
            valid(path)?;
            client.remove_watches(path, *watcher_type).map_err(at(path))?;
            Ok(String::new())
        }
        Command::WhoAmI => who_am_i(client),
        Command::Help => Ok(help()),
        Command::Quit | Command::Close => Ok(String::new()),
        _ => unreachable!("execute handles {command:?}"),
    }
}

/// `help`: how to start the shell and every command's synopsis.
#[must_use]
pub fn help() -> String {
    let mut text =
        "zabflow cli --server host:port[,host:port...] [--timeout-ms N] [-c cmds]\n".to_owned();
    for (name, synopsis) in USAGES {
        text.push_str(format!("\t{name} {synopsis}").trim_end());
        text.push('\n');
    }
    text
}

fn valid(path: &str) -> Result<(), String> {
    validate_path(path).map_err(|invalid| invalid.to_string())
}

/// Turns a call's error into the shell's message about `path`.
fn at(path: &str) -> impl Fn(ZkError) -> String + '_ {
    move |error| error_message(&error, path)
}

fn ls(client: &Client, path: &str, recursive: bool, stat: bool, watch: bool) -> Outcome {
    valid(path)?;
    if recursive {
        let paths = subtree(client, path, watch)?;
        return Ok(paths.iter().map(|path| format!("{path}\n")).collect());
    }
    if stat {
        let (children, node_stat) = client.get_children2(path, watch).map_err(at(path))?;
        return Ok(format_list(children) + &format_stat(&node_stat));
    }
    Ok(format_list(client.get_children(path, watch).map_err(at(path))?))
}

fn get(client: &Client, path: &str, stat: bool, watch: bool) -> Outcome {
    valid(path)?;
    let request = Request::GetData(GetDataRequest { path: path.to_owned(), watch });
    let Response::GetData(reply) = client.call(request).map_err(at(path))? else {
        return Err(format!("unexpected reply to getData {path}"));
    };
    let mut text = match reply.data {
        Some(data) => String::from_utf8_lossy(&data).into_owned(),
        None => "null".to_owned(),
    };
    text.push('\n');
    if stat {
        text.push_str(&format_stat(&reply.stat));
    }
    Ok(text)
}

fn create(
    client: &Client,
    path: &str,
    data: Option<&str>,
    acl: Option<&[ACL]>,
    kind: CreateKind,
) -> Outcome {
    let mode = create_mode(kind);
    validate_create_path(path, mode.is_sequential()).map_err(|invalid| invalid.to_string())?;
    let open_acl =
        [ACL { perms: Perms::ALL, id: Id { scheme: "world".into(), id: "anyone".into() } }];
    let body = CreateRequest {
        path: path.to_owned(),
        data: data.map(|data| data.as_bytes().to_vec()),
        acl: acl.unwrap_or(&open_acl).to_vec(),
        flags: mode.code(),
    };
    let request = match kind.ttl_ms {
        Some(ttl_ms) if !(1..=TTL_MS_MAX).contains(&ttl_ms) => {
            return Err(format!("ttl must be positive and cannot be larger than: {TTL_MS_MAX}"));
        }
        Some(ttl) => Request::CreateTtl(CreateTTLRequest {
            path: body.path,
            data: body.data,
            acl: body.acl,
            flags: body.flags,
            ttl,
        }),
        None if kind.container => Request::CreateContainer(body),
        None => Request::Create(body),
    };
    let created = match client.call(request).map_err(at(path))? {
        Response::Create(reply) => reply.path,
        Response::Create2(reply) => reply.path,
        other => return Err(format!("unexpected reply to create {path}: {other:?}")),
    };
    Ok(format!("Created {created}\n"))
}

fn create_mode(kind: CreateKind) -> CreateMode {
    match (kind.ephemeral, kind.sequential, kind.container, kind.ttl_ms.is_some()) {
        (true, true, _, _) => CreateMode::EphemeralSequential,
        (true, false, _, _) => CreateMode::Ephemeral,
        (false, true, _, true) => CreateMode::PersistentSequentialWithTtl,
        (false, true, _, false) => CreateMode::PersistentSequential,
        (false, false, true, _) => CreateMode::Container,
        (false, false, false, true) => CreateMode::PersistentWithTtl,
        (false, false, false, false) => CreateMode::Persistent,
    }
}

/// The paths of `root`'s subtree, depth first, children in name order, `root` first.
/// Nodes deleted during the walk are skipped; `root` itself must exist.
fn subtree(client: &Client, root: &str, watch: bool) -> Result<Vec<String>, String> {
    let mut paths = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(path) = stack.pop() {
        let mut children = match client.get_children(&path, watch) {
            Ok(children) => children,
            Err(ZkError::Code(ErrorCode::NoNode)) if path != root => continue,
            Err(error) => return Err(error_message(&error, &path)),
        };
        children.sort_unstable_by(|left, right| right.cmp(left));
        let prefix = if path == "/" { "" } else { path.as_str() };
        stack.extend(children.iter().map(|child| format!("{prefix}/{child}")));
        paths.push(path);
        if paths.len() + stack.len() > TREE_NODES_MAX {
            return Err(format!("{root} has more than {TREE_NODES_MAX} nodes"));
        }
    }
    Ok(paths)
}

/// Deletes `path` and everything below it, deepest first. ZooKeeper's own nodes
/// (`/`, `/zookeeper`…) are left alone, as the server would refuse them.
fn delete_all(client: &Client, path: &str) -> Outcome {
    valid(path)?;
    let paths = subtree(client, path, false)?;
    for node in paths.iter().rev() {
        if node == "/" || node == "/zookeeper" || node.starts_with("/zookeeper/") {
            continue;
        }
        match client.delete(node, -1) {
            Ok(()) | Err(ZkError::Code(ErrorCode::NoNode)) => {}
            Err(error) => return Err(error_message(&error, node)),
        }
    }
    Ok(String::new())
}

fn set_acl(
    client: &Client,
    path: &str,
    acl: &[ACL],
    stat: bool,
    version: i32,
    recursive: bool,
) -> Outcome {
    valid(path)?;
    if !recursive {
        let new_stat = client.set_acl(path, acl, version).map_err(at(path))?;
        return Ok(if stat { format_stat(&new_stat) } else { String::new() });
    }
    let failures: Vec<String> = subtree(client, path, false)?
        .iter()
        .filter_map(|node| {
            client.set_acl(node, acl, version).err().map(|e| error_message(&e, node))
        })
        .collect();
    match failures.is_empty() {
        true => Ok(String::new()),
        false => Err(failures.join("\n")),
    }
}

fn who_am_i(client: &Client) -> Outcome {
    let Response::WhoAmI(reply) = client.call(Request::WhoAmI).map_err(at(""))? else {
        return Err("unexpected reply to whoAmI".to_owned());
    };
    let mut text = "Auth scheme: User\n".to_owned();
    for info in reply.client_info {
        text.push_str(&format!("{}: {}\n", info.auth_scheme, info.user));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_flags_map_to_zookeeper_modes() {
        let kind = |ephemeral, sequential, container, ttl_ms| CreateKind {
            ephemeral,
            sequential,
            container,
            ttl_ms,
        };
        assert_eq!(create_mode(kind(false, false, false, None)), CreateMode::Persistent);
        assert_eq!(create_mode(kind(true, true, false, None)), CreateMode::EphemeralSequential);
        assert_eq!(create_mode(kind(false, false, true, None)), CreateMode::Container);
        assert_eq!(create_mode(kind(false, false, false, Some(5))), CreateMode::PersistentWithTtl);
        let sequential_ttl = create_mode(kind(false, true, false, Some(5)));
        assert_eq!(sequential_ttl, CreateMode::PersistentSequentialWithTtl);
    }

    #[test]
    fn help_lists_every_command() {
        let text = help();
        assert!(text.contains("\tls [-s] [-w] [-R] path\n") && text.contains("\twhoami\n"));
        assert_eq!(text.lines().count(), USAGES.len() + 1);
    }
}
