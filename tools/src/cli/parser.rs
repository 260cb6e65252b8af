//! Reading `zabflow cli` input: lines and `-c` scripts into commands, as ZooKeeper's shell
//! reads them.
//!
//! ```text
//! script   = command ((";" | NL) command)*
//! command  = SP* word (SP+ word)* SP*
//! word     = '"' [^"]* '"' | "'" [^']* "'" | [^"' ;NL] [^ ;NL]*     quotes are removed
//! option   = "-" letter+ [value]           letters bundle (-sw); a value may be attached (-v3)
//! acl      = entry ("," entry)*
//! entry    = scheme ":" id ":" perms       id may contain ":" (digest user:hash)
//! perms    = [cdrwa]*
//! ```
//!
//! Options may appear anywhere among the arguments, as with Apache Commons CLI, which the
//! shell uses; `--` ends them, and a word like `-1` is an argument, not an option, so
//! negative numbers can be data. Parsing is pure: a [`Command`] or a message for the user.

use zabflow_net::jute::{AddWatchMode, Id, Perms, WatcherType, ACL};

/// What one line of the shell asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ls {
        path: String,
        recursive: bool,
        stat: bool,
        watch: bool,
    },
    Get {
        path: String,
        stat: bool,
        watch: bool,
    },
    Set {
        path: String,
        data: String,
        stat: bool,
        version: i32,
    },
    Create {
        path: String,
        data: Option<String>,
        acl: Option<Vec<ACL>>,
        kind: CreateKind,
    },
    Delete {
        path: String,
        version: i32,
    },
    DeleteAll {
        path: String,
    },
    Stat {
        path: String,
        watch: bool,
    },
    Sync {
        path: String,
    },
    AddAuth {
        scheme: String,
        auth: String,
    },
    GetAcl {
        path: String,
        stat: bool,
    },
    SetAcl {
        path: String,
        acl: Vec<ACL>,
        stat: bool,
        version: i32,
        recursive: bool,
    },
    GetEphemerals {
        path: String,
    },
    GetAllChildrenNumber {
        path: String,
    },
    AddWatch {
        path: String,
        mode: AddWatchMode,
    },
    RemoveWatches {
        path: String,
        watcher_type: WatcherType,
    },
    WhoAmI,
    Help,
    /// `close`: ends the session; the shell goes on, answering "Not connected".
    Close,
    /// `quit` or `exit`.
    Quit,
}

/// The `create` flags, checked for combinations ZooKeeper refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CreateKind {
    pub ephemeral: bool,
    pub sequential: bool,
    pub container: bool,
    pub ttl_ms: Option<i64>,
}

/// Each command's name and argument synopsis, sorted by name, for `help` and usage errors.
pub const USAGES: &[(&str, &str)] = &[
    ("addWatch", "[-m mode] path   (mode PERSISTENT or PERSISTENT_RECURSIVE, the default)"),
    ("addauth", "scheme auth"),
    ("close", ""),
    ("create", "[-s] [-e] [-c] [-t ttl] path [data] [acl]"),
    ("delete", "[-v version] path"),
    ("deleteall", "path"),
    ("get", "[-s] [-w] path"),
    ("getAcl", "[-s] path"),
    ("getAllChildrenNumber", "path"),
    ("getEphemerals", "[path]"),
    ("help", ""),
    ("ls", "[-s] [-w] [-R] path"),
    ("quit", ""),
    ("removewatches", "path [-c|-d|-p|-r|-a]"),
    ("set", "[-s] [-v version] path data"),
    ("setAcl", "[-s] [-v version] [-R] path acl"),
    ("stat", "[-w] path"),
    ("sync", "path"),
    ("whoami", ""),
];

/// Splits a script into commands, each a list of words; empty commands are dropped.
///
/// # Errors
/// A message when a quote is not closed.
pub fn split_script(script: &str) -> Result<Vec<Vec<String>>, String> {
    let mut commands = Vec::new();
    let mut words = Vec::new();
    let mut chars = script.chars().peekable();
    while let Some(&next) = chars.peek() {
        match next {
            ';' | '\n' => {
                chars.next();
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
            }
            _ if next.is_whitespace() => {
                chars.next();
            }
            '"' | '\'' => {
                chars.next();
                let mut word = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == next {
                        closed = true;
                        break;
                    }
                    word.push(c);
                }
                if !closed {
                    return Err(format!("unterminated quote {next} in: {script}"));
                }
                words.push(word);
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == ';' {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                words.push(word);
            }
        }
    }
    if !words.is_empty() {
        commands.push(words);
    }
    Ok(commands)
}

/// The options and arguments of one command line, per its option spec.
#[derive(Debug, Default)]
struct Options {
    flags: Vec<char>,
    values: Vec<(char, String)>,
    /// The command name first, then the arguments.
    args: Vec<String>,
}

impl Options {
    fn has(&self, flag: char) -> bool {
        self.flags.contains(&flag)
    }

    fn value(&self, option: char) -> Option<&str> {
        self.values.iter().rev().find(|(name, _)| *name == option).map(|(_, v)| v.as_str())
    }

    fn version(&self) -> Result<i32, String> {
        self.value('v').map_or(Ok(-1), |value| {
            value.parse().map_err(|_| "-v argument must be an int value".to_owned())
        })
    }
}

/// Separates options from arguments. `flags` are the letters without a value, `valued`
/// those that take one.
fn parse_options(words: &[String], flags: &str, valued: &str) -> Result<Options, String> {
    let mut options = Options::default();
    let mut rest = words.iter();
    let mut options_ended = false;
    while let Some(word) = rest.next() {
        let is_option = !options_ended
            && word.len() >= 2
            && word.starts_with('-')
            && word[1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '-');
        if !is_option {
            options.args.push(word.clone());
            continue;
        }
        if word == "--" {
            options_ended = true;
            continue;
        }
        for (index, letter) in word[1..].char_indices() {
            if flags.contains(letter) {
                options.flags.push(letter);
            } else if valued.contains(letter) {
                let attached = &word[1 + index + letter.len_utf8()..];
                let value = match attached {
                    "" => rest.next().cloned(),
                    _ => Some(attached.to_owned()),
                };
                let value = value.ok_or(format!("Missing argument for option: {letter}"))?;
                options.values.push((letter, value));
                break;
            } else {
                return Err(format!("Unrecognized option: -{letter}"));
            }
        }
    }
    Ok(options)
}

/// The usage error of command `name`.
fn usage(name: &str) -> String {
    let synopsis = USAGES.iter().find(|(command, _)| *command == name).map_or("", |u| u.1);
    format!("Usage: {name} {synopsis}").trim_end().to_owned()
}

/// Parses one command's words (the name first).
///
/// # Errors
/// A message for the user: an unknown command, an unknown option, missing arguments, or a
/// bad option value.
pub fn parse_command(words: &[String]) -> Result<Command, String> {
    let name = words.first().map_or("", String::as_str);
    let (flags, valued, min_args, max_args) = match name {
        "ls" => ("sRw", "", 1, 1),
        "get" => ("sw", "", 1, 1),
        "set" => ("s", "v", 2, 2),
        "create" => ("esc", "t", 1, 3),
        "delete" => ("", "v", 1, 1),
        "deleteall" | "sync" | "getAllChildrenNumber" => ("", "", 1, 1),
        "stat" => ("w", "", 1, 1),
        "addauth" => ("", "", 1, 2),
        "getAcl" => ("s", "", 1, 1),
        "setAcl" => ("sR", "v", 2, 2),
        "getEphemerals" => ("", "", 0, 1),
        "addWatch" => ("", "m", 1, 1),
        "removewatches" => ("cdpra", "", 1, 1),
        "whoami" | "help" | "close" | "quit" | "exit" => ("", "", 0, 0),
        _ => return Err(format!("Command not found: {name} (try help)")),
    };
    let options = parse_options(&words[1..], flags, valued)?;
    if !(min_args..=max_args).contains(&options.args.len()) {
        return Err(usage(name));
    }
    build_command(name, options)
}

fn build_command(name: &str, options: Options) -> Result<Command, String> {
    let mut args = options.args.iter().cloned();
    let mut next = || args.next().unwrap_or_default();
    let command = match name {
        "ls" => Command::Ls {
            path: next(),
            recursive: options.has('R'),
            stat: options.has('s'),
            watch: options.has('w'),
        },
        "get" => Command::Get { path: next(), stat: options.has('s'), watch: options.has('w') },
        "set" => Command::Set {
            path: next(),
            data: next(),
            stat: options.has('s'),
            version: options.version()?,
        },
        "create" => build_create(&options)?,
        "delete" => Command::Delete { path: next(), version: options.version()? },
        "deleteall" => Command::DeleteAll { path: next() },
        "sync" => Command::Sync { path: next() },
        "getAllChildrenNumber" => Command::GetAllChildrenNumber { path: next() },
        "stat" => Command::Stat { path: next(), watch: options.has('w') },
        "addauth" => Command::AddAuth { scheme: next(), auth: next() },
        "getAcl" => Command::GetAcl { path: next(), stat: options.has('s') },
        "setAcl" => Command::SetAcl {
            path: next(),
            acl: parse_acl(&next())?,
            stat: options.has('s'),
            version: options.version()?,
            recursive: options.has('R'),
        },
        "getEphemerals" => Command::GetEphemerals { path: args.next().unwrap_or("/".into()) },
        "addWatch" => Command::AddWatch { path: next(), mode: watch_mode(options.value('m'))? },
        "removewatches" => {
            Command::RemoveWatches { path: next(), watcher_type: watcher_type(&options) }
        }
        "whoami" => Command::WhoAmI,
        "help" => Command::Help,
        "close" => Command::Close,
        _ => Command::Quit,
    };
    Ok(command)
}

fn build_create(options: &Options) -> Result<Command, String> {
    let kind = CreateKind {
        ephemeral: options.has('e'),
        sequential: options.has('s'),
        container: options.has('c'),
        ttl_ms: match options.value('t') {
            Some(value) => {
                Some(value.parse().map_err(|_| "-t argument must be a long value".to_owned())?)
            }
            None => None,
        },
    };
    if kind.container && (kind.ephemeral || kind.sequential) {
        return Err("-c cannot be combined with -s or -e: containers are neither ephemeral \
                    nor sequential"
            .to_owned());
    }
    if kind.ttl_ms.is_some() && (kind.ephemeral || kind.container) {
        return Err(
            "-t cannot be combined with -e or -c: only persistent nodes have a TTL".to_owned()
        );
    }
    let acl = options.args.get(2).map(|text| parse_acl(text)).transpose()?;
    Ok(Command::Create {
        path: options.args[0].clone(),
        data: options.args.get(1).cloned(),
        acl,
        kind,
    })
}

fn watch_mode(value: Option<&str>) -> Result<AddWatchMode, String> {
    match value.map(str::to_ascii_uppercase).as_deref() {
        None | Some("PERSISTENT_RECURSIVE") => Ok(AddWatchMode::PersistentRecursive),
        Some("PERSISTENT") => Ok(AddWatchMode::Persistent),
        Some(_) => Err(usage("addWatch")),
    }
}

/// `-c` children, `-d` data, `-p` persistent, `-r` persistent recursive, else any.
fn watcher_type(options: &Options) -> WatcherType {
    let types = [
        ('c', WatcherType::Children),
        ('d', WatcherType::Data),
        ('p', WatcherType::Persistent),
        ('r', WatcherType::PersistentRecursive),
    ];
    types.into_iter().find(|(flag, _)| options.has(*flag)).map_or(WatcherType::Any, |t| t.1)
}

/// Parses `scheme:id:perms[,scheme:id:perms…]`; the id is everything between the first and
/// the last colon.
///
/// # Errors
/// A message naming the first entry without two colons or with an unknown permission.
pub fn parse_acl(text: &str) -> Result<Vec<ACL>, String> {
    text.split(',')
        .map(|entry| {
            let (first, last) = (entry.find(':'), entry.rfind(':'));
            let (Some(first), Some(last)) = (first, last) else {
                return Err(format!("{entry} does not have the form scheme:id:perm"));
            };
            if first == last {
                return Err(format!("{entry} does not have the form scheme:id:perm"));
            }
            let id =
                Id { scheme: entry[..first].to_owned(), id: entry[first + 1..last].to_owned() };
            Ok(ACL { perms: parse_perms(&entry[last + 1..])?, id })
        })
        .collect()
}

fn parse_perms(text: &str) -> Result<i32, String> {
    text.chars().try_fold(0, |perms, letter| {
        let bit = match letter {
            'r' => Perms::READ,
            'w' => Perms::WRITE,
            'c' => Perms::CREATE,
            'd' => Perms::DELETE,
            'a' => Perms::ADMIN,
            other => return Err(format!("Unknown perm type: {other}")),
        };
        Ok(perms | bit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        let mut commands = split_script(line).unwrap();
        assert_eq!(commands.len(), 1, "{line}");
        commands.remove(0)
    }

    #[test]
    fn scripts_split_on_semicolons_newlines_and_respect_quotes() {
        let commands = split_script("create /a 'x; y'; get /a\n\n ls  \"/\" ;").unwrap();
        assert_eq!(commands, [vec!["create", "/a", "x; y"], vec!["get", "/a"], vec!["ls", "/"]]);
        assert_eq!(words("set /a \"\""), ["set", "/a", ""]);
        assert_eq!(words("set /a it's"), ["set", "/a", "it's"]);
        assert!(split_script("set /a 'open").is_err());
        assert!(split_script("set /a \"").is_err());
        assert!(split_script(" ; \n").unwrap().is_empty());
    }

    #[test]
    fn options_bundle_attach_and_go_anywhere() {
        let parse = |line: &str| parse_command(&words(line));
        let ls = Command::Ls { path: "/a".into(), recursive: true, stat: false, watch: true };
        assert_eq!(parse("ls -Rw /a"), Ok(ls.clone()));
        assert_eq!(parse("ls /a -w -R"), Ok(ls));
        let set = Command::Set { path: "/a".into(), data: "-1".into(), stat: true, version: 3 };
        assert_eq!(parse("set -v3 /a -1 -s"), Ok(set.clone()));
        assert_eq!(parse("set -s /a -v 3 -- -1"), Ok(set));
        assert_eq!(parse("ls -x /a"), Err("Unrecognized option: -x".into()));
        assert_eq!(parse("delete -v"), Err("Missing argument for option: v".into()));
        assert_eq!(parse("delete -v x /a"), Err("-v argument must be an int value".into()));
        assert_eq!(parse("get"), Err("Usage: get [-s] [-w] path".into()));
        assert!(parse("frobnicate /a").unwrap_err().starts_with("Command not found: frobnicate"));
        assert_eq!(parse("exit"), Ok(Command::Quit));
        assert_eq!(parse("getEphemerals"), Ok(Command::GetEphemerals { path: "/".into() }));
    }

    #[test]
    fn create_refuses_what_zookeeper_refuses() {
        let parse = |line: &str| parse_command(&words(line));
        assert!(parse("create -c -s /a").is_err());
        assert!(parse("create -e -t 10 /a").is_err());
        assert!(parse("create -t ten /a").is_err());
        let Ok(Command::Create { kind, data, acl, .. }) =
            parse("create -s -t 500 /a d world:anyone:r")
        else {
            panic!("create did not parse");
        };
        assert_eq!(kind, CreateKind { sequential: true, ttl_ms: Some(500), ..kind });
        assert_eq!((data.as_deref(), acl.map(|acl| acl[0].perms)), (Some("d"), Some(Perms::READ)));
    }

    #[test]
    fn acls_parse_as_zookeeper() {
        let acl = parse_acl("world:anyone:cdrwa,digest:user:hash=:ra").unwrap();
        assert_eq!(acl[0].perms, Perms::ALL);
        assert_eq!((acl[1].id.scheme.as_str(), acl[1].id.id.as_str()), ("digest", "user:hash="));
        assert_eq!(acl[1].perms, Perms::READ | Perms::ADMIN);
        assert!(parse_acl("world:anyone").is_err());
        assert_eq!(parse_acl("world:anyone:x"), Err("Unknown perm type: x".into()));
        assert_eq!(parse_acl("ip:10.0.0.1:").unwrap()[0].perms, 0);
    }
}
