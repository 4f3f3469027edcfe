//! Client tests' helpers: a TUF repository built in memory with
//! tufa-metadata ([`Repo`]), and a tiny HTTP server on 127.0.0.1 that serves
//! it, logs every request and injects faults ([`TestServer`]).
//!
//! The repository keeps every version it ever signed, so a test can play
//! the attacker: serve an old timestamp again, an old bin under a new
//! snapshot, a target with other bytes, a file that never ends.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tufa_client::role_name;
use tufa_client::updater::{HttpConfig, HttpFetcher, Updater, UpdaterConfig};
use tufa_metadata::key::Scheme;
use tufa_metadata::{
    DelegatedRole, Delegations, HashAlgorithm, MetaFile, Metadata, PrivateKey, Role, Root, Signer,
    Snapshot, SuccinctRoles, TargetFile, Targets, Timestamp, UtcTime,
};

// ---------------------------------------------------------------- server --

/// How the server misbehaves for one path.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and an empty body.
    Status(u16),
    /// Send the real body `chunk` bytes at a time, sleeping `every` between chunks.
    Trickle { chunk: usize, every: Duration },
    /// Send headers, then nothing for this long, then close.
    Stall(Duration),
    /// Send these bytes instead of the real ones.
    Body(Vec<u8>),
    /// Send bytes for ever (no Content-Length), until the client hangs up.
    Endless,
}

#[derive(Debug, Default)]
struct ServerState {
    files: BTreeMap<String, Vec<u8>>,
    faults: BTreeMap<String, Fault>,
    log: Vec<String>,
}

/// A static HTTP/1.1 server on 127.0.0.1 with an in-memory file map. Each
/// connection gets a thread and `Connection: close`. Stops on drop.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<Mutex<ServerState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(ServerState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = handle(conn, &st);
                });
            }
        });
        TestServer {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ServerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves `bytes` at `path` (no leading slash; as the client requests it,
    /// percent-encoding included).
    pub fn put(&self, path: &str, bytes: Vec<u8>) {
        self.lock().files.insert(path.to_string(), bytes);
    }

    pub fn remove(&self, path: &str) {
        self.lock().files.remove(path);
    }

    pub fn get(&self, path: &str) -> Option<Vec<u8>> {
        self.lock().files.get(path).cloned()
    }

    /// Serves every file under `dir` at `prefix/{relative path}`.
    pub fn put_dir(&self, prefix: &str, dir: &Path) {
        fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, Vec<u8>)>) {
            for entry in std::fs::read_dir(dir).expect("read_dir") {
                let entry = entry.expect("entry");
                let name = entry.file_name().to_string_lossy().into_owned();
                let rel = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                if entry.file_type().expect("file type").is_dir() {
                    walk(&entry.path(), &rel, out);
                } else {
                    out.push((rel, std::fs::read(entry.path()).expect("read")));
                }
            }
        }
        let mut files = Vec::new();
        walk(dir, "", &mut files);
        let mut state = self.lock();
        let prefix = prefix.trim_matches('/');
        for (rel, bytes) in files {
            let key = if prefix.is_empty() {
                rel
            } else {
                format!("{prefix}/{rel}")
            };
            state.files.insert(key, bytes);
        }
    }

    pub fn set_fault(&self, path: &str, fault: Fault) {
        self.lock().faults.insert(path.to_string(), fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Request paths (no leading slash, as sent) since the last clear.
    pub fn requests(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn handle(conn: TcpStream, state: &Mutex<ServerState>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let _method = parts.next();
    let target = parts.next().unwrap_or("/");
    let path = target.trim_start_matches('/').to_string();
    let (body, fault) = {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.log.push(path.clone());
        let body = st
            .files
            .get(&path)
            .or_else(|| st.files.get(&percent_decode(&path)))
            .cloned();
        (body, st.faults.get(&path).cloned())
    };
    let mut out = conn;
    let respond = |out: &mut TcpStream, status: u16, body: &[u8]| -> std::io::Result<()> {
        write!(
            out,
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        out.write_all(body)?;
        out.flush()
    };
    match (fault, body) {
        (Some(Fault::Status(code)), _) => respond(&mut out, code, b""),
        (Some(Fault::Body(bytes)), _) => respond(&mut out, 200, &bytes),
        (Some(Fault::Endless), _) => {
            write!(out, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
            let chunk = vec![b' '; 16 * 1024];
            loop {
                out.write_all(&chunk)?;
            }
        }
        (Some(Fault::Stall(d)), Some(body)) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            out.flush()?;
            std::thread::sleep(d);
            Ok(())
        }
        (Some(Fault::Trickle { chunk, every }), Some(body)) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            for piece in body.chunks(chunk.max(1)) {
                out.write_all(piece)?;
                out.flush()?;
                std::thread::sleep(every);
            }
            Ok(())
        }
        (_, Some(body)) => respond(&mut out, 200, &body),
        (_, None) => respond(&mut out, 404, b""),
    }
}

// ------------------------------------------------------------ repository --

fn generate() -> Arc<PrivateKey> {
    Arc::new(PrivateKey::generate(Scheme::Ed25519).expect("generate ed25519"))
}

fn sign<T: Role>(signed: &T, signers: &[&PrivateKey]) -> Vec<u8> {
    let mut md = Metadata::new(signed.clone());
    for s in signers {
        md.sign(*s).expect("sign");
    }
    md.to_bytes().expect("serialise")
}

/// A TUF repository in memory, signed with ed25519 keys. Roles change
/// through the public fields; [`Repo::publish`] signs what changed, bumps
/// snapshot and timestamp, and [`Repo::serve`] puts the files on a server.
#[derive(Debug)]
pub struct Repo {
    pub consistent_snapshot: bool,
    /// Expiry given to everything signed from now on.
    pub expires: UtcTime,
    pub root: Root,
    pub timestamp: Timestamp,
    pub snapshot: Snapshot,
    /// `targets` and every delegated role.
    pub targets: BTreeMap<String, Targets>,
    /// Signers per role name (top-level and delegated).
    pub signers: BTreeMap<String, Vec<Arc<PrivateKey>>>,
    /// Target contents by target path.
    pub target_data: BTreeMap<String, Vec<u8>>,
    /// Every signed file: `(role, version)` to bytes.
    pub history: BTreeMap<(String, u64), Vec<u8>>,
    /// Record length and sha256 of each file in snapshot and timestamp meta
    /// (tufa itself writes versions only).
    pub meta_hashes: bool,
    /// Roles changed since the last publish.
    dirty: Vec<String>,
}

fn meta_for(version: u64, bytes: &[u8], with_hashes: bool) -> MetaFile {
    let mut meta = MetaFile::new(version);
    if with_hashes {
        meta.length = Some(bytes.len() as u64);
        meta.hashes = Some(BTreeMap::from([(
            "sha256".to_string(),
            hex::encode(HashAlgorithm::Sha256.digest(bytes)),
        )]));
    }
    meta
}

impl Repo {
    /// Root, timestamp, snapshot and targets version 1, one ed25519 key each,
    /// expiring in 30 days.
    pub fn new(consistent_snapshot: bool) -> Repo {
        let expires = UtcTime::now().plus_seconds(30 * 86_400);
        let mut root = Root::new(expires);
        root.consistent_snapshot = consistent_snapshot;
        let mut signers = BTreeMap::new();
        for role in ["root", "timestamp", "snapshot", "targets"] {
            let key = generate();
            root.add_key(role, key.public_key().clone())
                .expect("add key");
            signers.insert(role.to_string(), vec![key]);
        }
        let mut repo = Repo {
            consistent_snapshot,
            expires,
            root,
            timestamp: Timestamp::new(expires, MetaFile::new(1)),
            snapshot: Snapshot::new(expires),
            targets: BTreeMap::from([("targets".to_string(), Targets::new(expires))]),
            signers,
            target_data: BTreeMap::new(),
            history: BTreeMap::new(),
            meta_hashes: false,
            dirty: Vec::new(),
        };
        let root_bytes = repo.sign_root(&[]);
        repo.history.insert(("root".into(), 1), root_bytes);
        repo.dirty.push("targets".into());
        repo.publish_inner(false);
        repo
    }

    /// The bytes of root version `v` (version 1 is the client's trust anchor).
    pub fn root_bytes(&self, v: u64) -> Vec<u8> {
        self.history[&("root".to_string(), v)].clone()
    }

    fn signer_refs(&self, role: &str) -> Vec<&PrivateKey> {
        self.signers
            .get(role)
            .map(|v| v.iter().map(|k| k.as_ref()).collect())
            .unwrap_or_default()
    }

    fn sign_root(&self, extra: &[&PrivateKey]) -> Vec<u8> {
        let mut by = self.signer_refs("root");
        by.extend_from_slice(extra);
        sign(&self.root, &by)
    }

    /// Marks a targets role as changed, so the next publish re-signs it.
    pub fn touch(&mut self, role: &str) {
        if !self.dirty.iter().any(|r| r == role) {
            self.dirty.push(role.to_string());
        }
    }

    /// Adds (or replaces) a target in `role`.
    pub fn add_target(&mut self, role: &str, path: &str, data: &[u8]) {
        let file =
            TargetFile::from_bytes(data, &[HashAlgorithm::Sha256, HashAlgorithm::Blake2b256]);
        self.targets
            .get_mut(role)
            .unwrap_or_else(|| panic!("no role {role}"))
            .targets
            .insert(path.to_string(), file);
        self.target_data.insert(path.to_string(), data.to_vec());
        self.touch(role);
    }

    /// Delegates from `delegator` to a new role `name` with one new key,
    /// trusted for `paths` (or, with `hash_prefixes`, for path hash prefixes).
    pub fn delegate(
        &mut self,
        delegator: &str,
        name: &str,
        paths: Option<Vec<String>>,
        hash_prefixes: Option<Vec<String>>,
        terminating: bool,
    ) {
        let key = generate();
        let keyid = key.keyid().to_string();
        let parent = self.targets.get_mut(delegator).expect("delegator");
        let delegations = parent.delegations.get_or_insert_with(|| Delegations {
            keys: BTreeMap::new(),
            roles: Some(Vec::new()),
            succinct_roles: None,
            unrecognized: Default::default(),
        });
        delegations
            .keys
            .insert(keyid.clone(), key.public_key().clone());
        delegations
            .roles
            .get_or_insert_with(Vec::new)
            .push(DelegatedRole {
                name: name.to_string(),
                keyids: vec![keyid],
                threshold: 1,
                terminating,
                paths,
                path_hash_prefixes: hash_prefixes,
                unrecognized: Default::default(),
            });
        self.signers.insert(name.to_string(), vec![key]);
        self.targets
            .insert(name.to_string(), Targets::new(self.expires));
        self.touch(delegator);
        self.touch(name);
    }

    /// Delegates from `delegator` to `2^bit_length` succinct bins `{prefix}-*`,
    /// all signed by one new key; every bin exists (empty).
    pub fn succinct(&mut self, delegator: &str, bit_length: u32, prefix: &str) -> SuccinctRoles {
        let key = generate();
        let succinct = SuccinctRoles {
            keyids: vec![key.keyid().to_string()],
            threshold: 1,
            bit_length,
            name_prefix: prefix.to_string(),
            unrecognized: Default::default(),
        };
        let parent = self.targets.get_mut(delegator).expect("delegator");
        parent.delegations = Some(Delegations {
            keys: BTreeMap::from([(key.keyid().to_string(), key.public_key().clone())]),
            roles: None,
            succinct_roles: Some(succinct.clone()),
            unrecognized: Default::default(),
        });
        let names: Vec<String> = succinct.role_names().collect();
        for name in names {
            self.targets
                .insert(name.clone(), Targets::new(self.expires));
            self.signers.insert(name.clone(), vec![key.clone()]);
            self.touch(&name);
        }
        self.touch(delegator);
        succinct
    }

    /// Signs a new root version with the current root keys plus `extra`
    /// (for a rotation: the old root keys), and keeps it.
    pub fn publish_root_signed_by(&mut self, signers: &[&PrivateKey]) {
        self.root.version += 1;
        self.root.expires = self.expires;
        let bytes = sign(&self.root, signers);
        self.history
            .insert(("root".into(), self.root.version), bytes);
    }

    /// A new root version, signed by the current root keys.
    pub fn publish_root(&mut self) {
        let signers = self.signer_refs("root");
        let bytes = {
            let mut root = self.root.clone();
            root.version += 1;
            root.expires = self.expires;
            sign(&root, &signers)
        };
        self.root.version += 1;
        self.root.expires = self.expires;
        self.history
            .insert(("root".into(), self.root.version), bytes);
    }

    /// Replaces `role`'s keys in root with one new key; returns the old signers.
    pub fn rotate_top_level(&mut self, role: &str) -> Vec<Arc<PrivateKey>> {
        let key = generate();
        self.root.roles.get_mut(role).expect("role").keyids.clear();
        // A key may serve several roles; keep keys other roles still use.
        let used: Vec<String> = self
            .root
            .roles
            .values()
            .flat_map(|r| r.keyids.clone())
            .collect();
        self.root.keys.retain(|id, _| used.contains(id));
        self.root
            .add_key(role, key.public_key().clone())
            .expect("add key");
        self.signers
            .insert(role.to_string(), vec![key])
            .unwrap_or_default()
    }

    /// Re-signs every changed targets role (bumping its version), then
    /// snapshot and timestamp.
    pub fn publish(&mut self) {
        self.publish_inner(true);
    }

    fn publish_inner(&mut self, bump: bool) {
        let dirty = std::mem::take(&mut self.dirty);
        for role in &dirty {
            let expires = self.expires;
            let t = self.targets.get_mut(role).expect("role");
            if bump && self.history.contains_key(&(role.clone(), t.version)) {
                t.version += 1;
            }
            t.expires = expires;
            let t = t.clone();
            let bytes = sign(&t, &self.signer_refs(role));
            let meta = meta_for(t.version, &bytes, self.meta_hashes);
            self.history.insert((role.clone(), t.version), bytes);
            self.snapshot.meta.insert(format!("{role}.json"), meta);
        }
        self.publish_snapshot(bump);
    }

    /// Re-signs snapshot (bumped) and timestamp (bumped) as they are.
    pub fn publish_snapshot(&mut self, bump: bool) {
        if bump {
            self.snapshot.version += 1;
        }
        self.snapshot.expires = self.expires;
        let bytes = sign(&self.snapshot, &self.signer_refs("snapshot"));
        let meta = meta_for(self.snapshot.version, &bytes, self.meta_hashes);
        self.history
            .insert(("snapshot".into(), self.snapshot.version), bytes);
        self.timestamp.meta.insert("snapshot.json".into(), meta);
        self.publish_timestamp(bump);
    }

    /// Re-signs timestamp (bumped) as it is.
    pub fn publish_timestamp(&mut self, bump: bool) {
        if bump {
            self.timestamp.version += 1;
        }
        self.timestamp.expires = self.expires;
        let bytes = sign(&self.timestamp, &self.signer_refs("timestamp"));
        self.history
            .insert(("timestamp".into(), self.timestamp.version), bytes);
    }

    /// The signed bytes of `role` at `version`.
    pub fn signed_bytes(&self, role: &str, version: u64) -> Vec<u8> {
        self.history
            .get(&(role.to_string(), version))
            .cloned()
            .unwrap_or_else(|| panic!("{role} version {version} was never signed"))
    }

    /// The URL path (under the server root) the client fetches `role` at
    /// `version` from.
    pub fn metadata_path(&self, role: &str, version: u64) -> String {
        if role == "root" || (self.consistent_snapshot && role != "timestamp") {
            format!("metadata/{}", role_name::versioned_file_name(version, role))
        } else {
            format!("metadata/{}", role_name::file_name(role))
        }
    }

    /// The URL path of a target (hash-prefixed with consistent snapshots).
    pub fn target_path(&self, path: &str) -> String {
        let data = &self.target_data[path];
        let hash = hex::encode(HashAlgorithm::Blake2b256.digest(data));
        if self.consistent_snapshot {
            match path.rsplit_once('/') {
                Some((dir, base)) => format!("targets/{dir}/{hash}.{base}"),
                None => format!("targets/{hash}.{path}"),
            }
        } else {
            format!("targets/{path}")
        }
    }

    /// Puts the current repository on `server`: every root version, the
    /// current (and, with consistent snapshots, every earlier) version of
    /// every other role, and the targets.
    pub fn serve(&self, server: &TestServer) {
        let latest = |role: &str| -> u64 {
            match role {
                "timestamp" => self.timestamp.version,
                "snapshot" => self.snapshot.version,
                _ => self.targets.get(role).map(|t| t.version).unwrap_or(0),
            }
        };
        for ((role, version), bytes) in &self.history {
            let serve = role == "root"
                || (self.consistent_snapshot && role != "timestamp")
                || *version == latest(role);
            if serve {
                server.put(&self.metadata_path(role, *version), bytes.clone());
            }
        }
        for path in self.target_data.keys() {
            server.put(&self.target_path(path), self.target_data[path].clone());
        }
    }
}

// ---------------------------------------------------------------- client --

/// Timeouts short enough for tests, long enough for a loaded 2-core machine.
pub fn test_http_config() -> HttpConfig {
    HttpConfig {
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        ..HttpConfig::default()
    }
}

/// A client whose metadata directory is `metadata_dir` (which must hold the
/// trusted `root.json`), fetching from `server`'s `metadata/` and `targets/`.
pub fn updater(server: &TestServer, metadata_dir: &Path, target_dir: &Path) -> Updater {
    updater_with(server, metadata_dir, target_dir, test_http_config(), |_| {})
}

/// As [`updater`], with an HTTP configuration and a hook to change the
/// updater's configuration.
pub fn updater_with(
    server: &TestServer,
    metadata_dir: &Path,
    target_dir: &Path,
    http: HttpConfig,
    configure: impl FnOnce(&mut UpdaterConfig),
) -> Updater {
    let mut config = UpdaterConfig::new(metadata_dir, server.url("metadata"));
    config.target_dir = Some(target_dir.to_path_buf());
    config.target_base_url = Some(server.url("targets"));
    configure(&mut config);
    let fetcher = HttpFetcher::new(http).expect("http client");
    Updater::new(config, Box::new(fetcher)).expect("load trusted root")
}

/// Writes `root` as the trusted `root.json` of a fresh metadata directory.
pub fn init_metadata_dir(dir: &Path, root: &[u8]) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join("root.json"), root).expect("write root.json");
}

/// Reads back all the metadata files the updater persisted: file name to version.
pub fn trusted_versions(dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") {
            continue;
        }
        let bytes = std::fs::read(entry.path()).expect("read");
        let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        let version = value["signed"]["version"].as_u64().expect("version");
        out.insert(name, version);
    }
    out
}
