//! Outcomes of the differential test: a step's result rendered as text that two servers must
//! produce identically, with the zxids it shows taken out and compared by order instead.
//!
//! Raw zxids differ between servers (ZooKeeper's epoch, failed writes that consume zxids), so
//! each outcome renders a zxid as `Z` and lists its value apart. [`ZxidOrder`] then pairs the
//! two servers' zxids step after step and requires the pairing to be an order-preserving
//! bijection: the same zxid on one side always pairs with the same zxid on the other, and
//! `a < b` on one side exactly when it holds on the other. Times are ignored except that a
//! node at version 0 must have `ctime == mtime`. Session ids are rendered as the index of the
//! session in the run (`s0`, `s1`, …); child and ephemeral lists are compared as sets.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use zabflow_net::jute::{ErrorCode, MultiResult, Response, Stat, ACL};
use zabflow_net::ZkResult;

/// A rendered outcome: the text with `Z` in place of each zxid, and the zxids in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub text: String,
    pub zxids: Vec<i64>,
}

/// Renders a step's result; `sessions` maps a session id to its index in the run.
pub fn render(result: &ZkResult<Response>, sessions: &[i64]) -> Outcome {
    let mut outcome = Outcome { text: String::new(), zxids: Vec::new() };
    match result {
        Ok(response) => outcome.response(response, sessions),
        Err(error) => match error.code() {
            Some(code) => outcome.text.push_str(&format!("error {code:?}")),
            None => outcome.text.push_str(&format!("failure {error}")),
        },
    }
    outcome
}

impl Outcome {
    fn response(&mut self, response: &Response, sessions: &[i64]) {
        match response {
            Response::Empty => self.text.push_str("ok"),
            Response::Create(created) => self.text.push_str(&format!("path {}", created.path)),
            Response::Create2(created) => {
                self.text.push_str(&format!("path {} ", created.path));
                self.stat(&created.stat, sessions);
            }
            Response::Exists(exists) => self.stat(&exists.stat, sessions),
            Response::GetData(get) => {
                self.text.push_str(&format!("data {} ", data_text(get.data.as_deref())));
                self.stat(&get.stat, sessions);
            }
            Response::SetData(set) => self.stat(&set.stat, sessions),
            Response::SetAcl(set) => self.stat(&set.stat, sessions),
            Response::GetAcl(get) => {
                self.text.push_str(&format!("acl {} ", acl_text(&get.acl)));
                self.stat(&get.stat, sessions);
            }
            Response::GetChildren(get) => self.text.push_str(&set_text(&get.children)),
            Response::GetChildren2(get) => {
                self.text.push_str(&format!("{} ", set_text(&get.children)));
                self.stat(&get.stat, sessions);
            }
            Response::Sync(sync) => self.text.push_str(&format!("synced {:?}", sync.path)),
            Response::Multi(multi) => {
                self.text.push_str("multi [");
                for result in &multi.results {
                    self.multi_result(result, sessions);
                    self.text.push_str("; ");
                }
                self.text.push(']');
            }
            Response::GetEphemerals(get) => self.text.push_str(&set_text(&get.ephemerals)),
            Response::GetAllChildrenNumber(get) => {
                self.text.push_str(&format!("descendants {}", get.total_number));
            }
            other => self.text.push_str(&format!("{other:?}")),
        }
    }

    fn multi_result(&mut self, result: &MultiResult, sessions: &[i64]) {
        match result {
            MultiResult::Create(created) => self.text.push_str(&format!("path {}", created.path)),
            MultiResult::Create2(created) => {
                self.text.push_str(&format!("path {} ", created.path));
                self.stat(&created.stat, sessions);
            }
            MultiResult::Delete => self.text.push_str("deleted"),
            MultiResult::SetData(set) => self.stat(&set.stat, sessions),
            MultiResult::Check => self.text.push_str("checked"),
            MultiResult::GetChildren(get) => self.text.push_str(&set_text(&get.children)),
            MultiResult::GetData(get) => {
                self.text.push_str(&format!("data {} ", data_text(get.data.as_deref())));
                self.stat(&get.stat, sessions);
            }
            MultiResult::Error(error) => {
                let code = ErrorCode::from_code(error.err);
                self.text.push_str(&format!("error {code:?}/{}", error.err));
            }
        }
    }

    fn stat(&mut self, stat: &Stat, sessions: &[i64]) {
        self.zxids.extend([stat.czxid, stat.mzxid, stat.pzxid]);
        let owner = match stat.ephemeral_owner {
            0 => "0".to_owned(),
            id => match sessions.iter().position(|session| *session == id) {
                Some(index) => format!("s{index}"),
                None => format!("unknown {id:#x}"),
            },
        };
        let _ = write!(
            self.text,
            "stat(czxid Z mzxid Z pzxid Z version {} cversion {} aversion {} owner {owner} \
             dataLength {} numChildren {}",
            stat.version, stat.cversion, stat.aversion, stat.data_length, stat.num_children,
        );
        if stat.version == 0 {
            let _ = write!(self.text, " ctime==mtime {}", stat.ctime == stat.mtime);
        }
        self.text.push(')');
    }
}

fn data_text(data: Option<&[u8]>) -> String {
    match data {
        None => "null".to_owned(),
        Some(bytes) if bytes.len() > 32 => format!("{} bytes", bytes.len()),
        Some(bytes) => format!("{:?}", String::from_utf8_lossy(bytes)),
    }
}

fn set_text(names: &[String]) -> String {
    let mut sorted = names.to_vec();
    sorted.sort();
    format!("{sorted:?}")
}

fn acl_text(acl: &[ACL]) -> String {
    let entries = acl
        .iter()
        .map(|entry| format!("{}:{}:{}", entry.id.scheme, entry.id.id, entry.perms))
        .collect::<Vec<_>>();
    format!("{entries:?}")
}

/// The order-preserving pairing of one server's zxids (`left`) with the other's (`right`).
#[derive(Debug, Default)]
pub struct ZxidOrder {
    left_to_right: BTreeMap<i64, i64>,
    right_to_left: BTreeMap<i64, i64>,
}

impl ZxidOrder {
    /// Pairs `left` with `right`; an error says which earlier pairing it contradicts.
    pub fn pair(&mut self, left: i64, right: i64) -> Result<(), String> {
        if let Some(&known) = self.left_to_right.get(&left) {
            if known == right {
                return Ok(());
            }
            return Err(format!("zxid {left:#x} was paired with {known:#x}, now {right:#x}"));
        }
        if let Some(&known) = self.right_to_left.get(&right) {
            return Err(format!("zxid {right:#x} was paired with {known:#x}, now {left:#x}"));
        }
        if let Some((&below, &below_right)) = self.left_to_right.range(..left).next_back() {
            if below_right > right {
                return Err(format!(
                    "{below:#x} < {left:#x} on one side but {below_right:#x} > {right:#x}"
                ));
            }
        }
        if let Some((&above, &above_right)) = self.left_to_right.range(left..).next() {
            if above_right < right {
                return Err(format!(
                    "{above:#x} > {left:#x} on one side but {above_right:#x} < {right:#x}"
                ));
            }
        }
        self.left_to_right.insert(left, right);
        self.right_to_left.insert(right, left);
        Ok(())
    }
}
