//! The op generator of the differential test: one `SmallRng` seeded with a `u64` draws a
//! sequence of steps over a small path space under `/s<seed>`.
//!
//! The path space is deliberately tiny (a handful of names, three levels) so that ops collide:
//! creates hit existing nodes, deletes hit parents with children, sessions own ephemerals that
//! others try to extend. Invalid paths, ACLs, versions, TTLs and create modes are drawn too,
//! because error precedence is where servers differ. The generator reads nothing of the
//! servers' state except the paths that sequential creates returned (both servers agree on
//! them until the first mismatch, after which the seed stops), so a seed replays exactly.

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use zabflow_net::jute::{
    CheckVersionRequest, CreateRequest, CreateTTLRequest, DeleteRequest, ExistsRequest,
    GetACLRequest, GetAllChildrenNumberRequest, GetChildren2Request, GetChildrenRequest,
    GetDataRequest, GetEphemeralsRequest, Id, MultiOp, MultiRequest, Request, SetACLRequest,
    SetDataRequest, SyncRequest, ACL,
};

/// Sessions open at any time; a closed one is replaced by a new session in its slot.
pub const SESSION_SLOTS: usize = 3;
/// Sequentially created paths remembered as targets (the newest ones).
const CREATED_PATHS_MAX: usize = 12;
/// Most ops in one generated multi or multiRead.
const MULTI_OPS_MAX: usize = 4;

/// The only password that matches the digest ACLs the generator writes.
pub const ALICE: &str = "alice:secret";

/// What one step does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Send this request on the slot's session.
    Call(Request),
    /// `addauth digest <user:password>` on the slot's session.
    AddAuth(String),
    /// Close the slot's session and open a new one in its place.
    Reopen,
}

/// One step of a sequence: an action on one session slot.
#[derive(Debug, Clone)]
pub struct Step {
    pub slot: usize,
    pub action: Action,
}

/// Draws steps for one seed.
pub struct Generator {
    rng: SmallRng,
    prefix: String,
    created: Vec<String>,
    alice_digest: String,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator {
            rng: SmallRng::seed_from_u64(seed),
            prefix: format!("/s{seed}"),
            created: Vec::new(),
            alice_digest: zabflow_coord::acl::generate_digest(ALICE),
        }
    }

    /// The root of this seed's path space, created before the first step.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Remembers a path a create returned, as a target of later steps.
    pub fn created(&mut self, path: &str) {
        if self.created.iter().any(|known| known == path) {
            return;
        }
        if self.created.len() == CREATED_PATHS_MAX {
            self.created.remove(0);
        }
        self.created.push(path.to_owned());
    }

    pub fn next_step(&mut self) -> Step {
        let slot = self.rng.gen_range(0..SESSION_SLOTS);
        let action = match self.rng.gen_range(0..1000) {
            0..=279 => Action::Call(self.create()),
            280..=389 => Action::Call(self.delete()),
            390..=499 => Action::Call(self.set_data()),
            500..=559 => Action::Call(self.exists()),
            560..=619 => Action::Call(Request::GetData(GetDataRequest {
                path: self.read_path(),
                watch: false,
            })),
            620..=659 => Action::Call(Request::GetChildren(GetChildrenRequest {
                path: self.read_path(),
                watch: false,
            })),
            660..=699 => Action::Call(Request::GetChildren2(GetChildren2Request {
                path: self.read_path(),
                watch: false,
            })),
            700..=739 => Action::Call(Request::GetAcl(GetACLRequest { path: self.read_path() })),
            740..=789 => Action::Call(self.set_acl()),
            790..=869 => Action::Call(Request::Multi(MultiRequest { ops: self.write_ops() })),
            870..=899 => Action::Call(Request::MultiRead(MultiRequest { ops: self.read_ops() })),
            900..=919 => Action::Call(Request::Sync(SyncRequest { path: self.any_path() })),
            920..=939 => Action::Call(Request::GetEphemerals(GetEphemeralsRequest {
                prefix_path: self.ephemerals_prefix(),
            })),
            940..=959 => Action::Call(Request::GetAllChildrenNumber(GetAllChildrenNumberRequest {
                path: self.read_path(),
            })),
            960..=979 => Action::AddAuth(self.auth()),
            980..=989 => Action::Call(Request::WhoAmI),
            _ => Action::Reopen,
        };
        Step { slot, action }
    }

    /// A valid path of the space: the fixed names, the prefix itself, or a created node.
    fn valid_path(&mut self) -> String {
        const NAMES: [&str; 8] = ["/d", "/d/a", "/d/a/b", "/d/c", "/e", "/e/f", "/d/a/c", "/d/e"];
        if !self.created.is_empty() && self.rng.gen_bool(0.2) {
            return self.created.choose(&mut self.rng).cloned().unwrap_or_default();
        }
        if self.rng.gen_bool(0.05) {
            return self.prefix.clone();
        }
        format!("{}{}", self.prefix, NAMES.choose(&mut self.rng).copied().unwrap_or("/d"))
    }

    /// An invalid (or odd but valid) path: trailing slash, empty component, `.` and `..`,
    /// relative, empty, control and reserved characters, names under a missing parent.
    fn invalid_path(&mut self) -> String {
        let prefix = &self.prefix;
        let choices = [
            format!("{prefix}/d/"),
            format!("{prefix}/d/a/"),
            format!("{prefix}//d"),
            format!("{prefix}/d/./a"),
            format!("{prefix}/d/."),
            format!("{prefix}/d/.."),
            format!("{prefix}/d/..a"),
            "d/a".to_owned(),
            String::new(),
            format!("{prefix}/d\u{1}"),
            format!("{prefix}/d/x\u{0}"),
            format!("{prefix}/missing/x\u{1}"),
            format!("{prefix}/missing/a/"),
            format!("{prefix}/d/\u{7f}x"),
            format!("{prefix}/d/\u{e000}"),
            format!("{prefix}/d/é"),
            format!("{prefix}/missing/a"),
        ];
        choices.choose(&mut self.rng).cloned().unwrap_or_default()
    }

    fn any_path(&mut self) -> String {
        if self.rng.gen_bool(0.12) {
            self.invalid_path()
        } else {
            self.valid_path()
        }
    }

    /// A path for a read: as [`Generator::any_path`] but never `""`, which ZooKeeper reads
    /// as the root — whose children and counts include other seeds' trees and `/zookeeper`.
    fn read_path(&mut self) -> String {
        let path = self.any_path();
        if path.is_empty() {
            format!("{}/", self.prefix)
        } else {
            path
        }
    }

    fn data(&mut self) -> Option<Vec<u8>> {
        match self.rng.gen_range(0..10) {
            0 => None,
            1 => Some(Vec::new()),
            2 => Some(vec![b'z'; self.rng.gen_range(500..2000)]),
            _ => {
                let length = self.rng.gen_range(1..16);
                Some((0..length).map(|_| self.rng.gen_range(b'a'..=b'z')).collect())
            }
        }
    }

    fn version(&mut self) -> i32 {
        *[-1, -1, 0, 0, 0, 1, 1, 2, 3, -2].choose(&mut self.rng).unwrap_or(&-1)
    }

    fn acl(&mut self) -> Vec<ACL> {
        let world = |perms| ACL { perms, id: id("world", "anyone") };
        let alice = ACL { perms: 31, id: id("digest", &self.alice_digest) };
        match self.rng.gen_range(0..100) {
            0..=64 => vec![world(31)],
            65..=69 => vec![world(self.rng.gen_range(0..32))],
            70..=74 => vec![alice],
            75..=77 => vec![alice, world(1)],
            78..=79 => vec![ACL { perms: 31, id: id("ip", "127.0.0.1") }],
            80..=81 => vec![ACL { perms: 31, id: id("ip", "10.0.0.0/8") }, world(1)],
            82..=85 => vec![ACL { perms: 31, id: id("auth", "") }],
            86 => Vec::new(),
            87 => vec![ACL { perms: 31, id: id("world", "bob") }],
            88 => vec![ACL { perms: 31, id: id("digest", "alice") }],
            89 => vec![ACL { perms: 31, id: id("ip", "300.1.1.1") }],
            90 => vec![ACL { perms: 31, id: id("ip", "127.0.0.1/33") }],
            91 => vec![ACL { perms: 31, id: id("foo", "bar") }],
            92..=93 => vec![world(31), world(31)],
            94..=95 => vec![world(1), world(31)],
            96 => vec![ACL { perms: 31, id: id("auth", "") }, world(1)],
            97 => vec![ACL { perms: 31, id: id("auth", "bob") }],
            98 => vec![ACL { perms: 31, id: id("digest", "a:b:c") }],
            _ => vec![ACL { perms: 31, id: id("ip", "127.0.0.1/24") }],
        }
    }

    fn create_request(&mut self) -> CreateRequest {
        let path = self.any_path();
        let flags = match self.rng.gen_range(0..100) {
            0..=34 => 0,
            35..=54 => 1,
            55..=69 => 2,
            70..=79 => 3,
            80..=97 => 4,
            98 => *[7, -1].choose(&mut self.rng).unwrap_or(&7),
            _ => 5,
        };
        CreateRequest { path, data: self.data(), acl: self.acl(), flags }
    }

    /// A createTTL body. At top level (`in_multi` false) a non-TTL mode comes only with a
    /// ttl >= 0: ZooKeeper 3.8 accepts a createTTL with a non-TTL mode and a negative ttl,
    /// logs it, and then cannot apply it (`EphemeralType.TTL.toEphemeralOwner` throws), which
    /// takes the server down — a ZooKeeper bug; zabflow answers BadArguments.
    fn ttl_request(&mut self, in_multi: bool) -> CreateTTLRequest {
        let CreateRequest { path, data, acl, .. } = self.create_request();
        let flags = *[5, 5, 6, 6, 0, 1].choose(&mut self.rng).unwrap_or(&5);
        let mut ttl = *[1, 1000, 3_600_000, 3_600_000, 0, -5, (1 << 40) - 1, 1 << 40]
            .choose(&mut self.rng)
            .unwrap_or(&1000);
        if !in_multi && !(5..=6).contains(&flags) && ttl < 0 {
            ttl = 0;
        }
        CreateTTLRequest { path, data, acl, flags, ttl }
    }

    /// A create body for a multi: never a TTL mode, which makes ZooKeeper 3.8 fail the whole
    /// multi with MarshallingError (a `ClassCastException`: the op becomes a createTTL that
    /// still holds a `CreateRequest`) — a ZooKeeper bug; zabflow fails only that op.
    fn multi_create_request(&mut self) -> CreateRequest {
        let mut request = self.create_request();
        if (5..=6).contains(&request.flags) {
            request.flags = 0;
        }
        request
    }

    fn create(&mut self) -> Request {
        match self.rng.gen_range(0..10) {
            0..=3 => Request::Create(self.create_request()),
            4..=6 => Request::Create2(self.create_request()),
            7 => {
                let mut request = self.create_request();
                if self.rng.gen_bool(0.9) {
                    request.flags = 4;
                }
                Request::CreateContainer(request)
            }
            _ => Request::CreateTtl(self.ttl_request(false)),
        }
    }

    fn delete(&mut self) -> Request {
        Request::Delete(DeleteRequest { path: self.any_path(), version: self.version() })
    }

    fn set_data(&mut self) -> Request {
        let path = self.any_path();
        Request::SetData(SetDataRequest { path, data: self.data(), version: self.version() })
    }

    fn exists(&mut self) -> Request {
        Request::Exists(ExistsRequest { path: self.read_path(), watch: false })
    }

    fn set_acl(&mut self) -> Request {
        let path = self.any_path();
        Request::SetAcl(SetACLRequest { path, acl: self.acl(), version: self.version() })
    }

    fn write_ops(&mut self) -> Vec<MultiOp> {
        let count = self.rng.gen_range(0..=MULTI_OPS_MAX);
        (0..count)
            .map(|_| match self.rng.gen_range(0..12) {
                0..=2 => MultiOp::Create(self.multi_create_request()),
                3 => MultiOp::Create2(self.multi_create_request()),
                4 => {
                    let mut request = self.create_request();
                    request.flags = 4;
                    MultiOp::CreateContainer(request)
                }
                5 => MultiOp::CreateTtl(self.ttl_request(true)),
                6..=7 => MultiOp::Delete(DeleteRequest {
                    path: self.any_path(),
                    version: self.version(),
                }),
                8..=9 => {
                    let path = self.any_path();
                    MultiOp::SetData(SetDataRequest {
                        path,
                        data: self.data(),
                        version: self.version(),
                    })
                }
                _ => MultiOp::Check(CheckVersionRequest {
                    path: self.any_path(),
                    version: self.version(),
                }),
            })
            .collect()
    }

    fn read_ops(&mut self) -> Vec<MultiOp> {
        let count = self.rng.gen_range(0..=MULTI_OPS_MAX);
        (0..count)
            .map(|_| {
                let path = self.read_path();
                if self.rng.gen_bool(0.5) {
                    MultiOp::GetData(GetDataRequest { path, watch: false })
                } else {
                    MultiOp::GetChildren(GetChildrenRequest { path, watch: false })
                }
            })
            .collect()
    }

    fn ephemerals_prefix(&mut self) -> String {
        match self.rng.gen_range(0..4) {
            0 => self.prefix.clone(),
            1 => format!("{}/d", self.prefix),
            2 => format!("{}/e", self.prefix),
            _ => self.valid_path(),
        }
    }

    fn auth(&mut self) -> String {
        ["alice:secret", "alice:secret", "alice:wrong", "bob:pw"]
            .choose(&mut self.rng)
            .map(|auth| (*auth).to_owned())
            .unwrap_or_default()
    }
}

fn id(scheme: &str, id: &str) -> Id {
    Id { scheme: scheme.to_owned(), id: id.to_owned() }
}
