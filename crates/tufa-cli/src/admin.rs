//! `tufa admin`: the operator's commands against a running service's API.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tufa_metadata::{Key, Metadata, PrivateKey, RawMetadata, Root, Signer, UtcTime};

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The service's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "TUFA_API")]
    api: String,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Send a bootstrap payload (from `tufa ceremony` or `rstuf admin ceremony`) and wait for it.
    SendBootstrap {
        /// The payload file.
        payload: PathBuf,
    },
    /// Make root version N+1 and send it: new expiry, threshold, root keys or
    /// online key. Signs with the given root keys, which must meet both the
    /// current and the new root threshold.
    UpdateRoot(UpdateRootArgs),
    /// Add your signature to the root waiting for signatures (distributed
    /// asynchronous signing): fetches it, signs with each key given, sends
    /// each signature.
    Sign {
        /// A root private key (PEM). Repeatable.
        #[arg(long = "root-key", value_name = "FILE", required = true)]
        root_keys: Vec<PathBuf>,
        /// Environment variable holding the password of encrypted key files.
        #[arg(long, value_name = "VAR")]
        root_key_password_env: Option<String>,
    },
    /// Abandon the root waiting for signatures.
    AbortSign,
    /// Re-sign online roles now (all of them when none is named).
    Resign {
        /// Role names: targets, snapshot, timestamp, bins, or one bin.
        roles: Vec<String>,
    },
    /// Show the service's settings.
    Config,
    /// List recent tasks, newest first.
    Tasks {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show one task.
    Task { task_id: String },
    /// pep480 project roles: developers' keys for `project-{name}`.
    Delegation {
        #[command(subcommand)]
        command: DelegationCommand,
    },
}

#[derive(Debug, Subcommand)]
enum DelegationCommand {
    /// Delegate a project's files to its developers' keys (under recently-claimed).
    Add(ProjectKeys),
    /// Replace a project's keys and threshold (developer key rotation).
    Update(ProjectKeys),
    /// Remove a project's role (its files fall back to the hash bins).
    Remove {
        /// The project name (normalised as PEP 503 says).
        project: String,
    },
    /// Send project metadata the developers made and signed (a JSON file).
    Upload {
        /// The project name (normalised as PEP 503 says).
        project: String,
        /// The signed targets metadata of `project-{name}`.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
struct ProjectKeys {
    /// The project name (normalised as PEP 503 says).
    project: String,
    /// A developer's key (PEM public or private). Repeatable.
    #[arg(long = "key", value_name = "FILE", required = true)]
    keys: Vec<PathBuf>,
    /// Signatures needed on the project's metadata.
    #[arg(long, default_value_t = 1)]
    threshold: u64,
}

fn project_role(project: &str) -> String {
    format!(
        "project-{}",
        tufa_repository::pep480::normalise_project(project)
    )
}

fn delegation_payload(p: &ProjectKeys) -> anyhow::Result<Value> {
    let mut keys = serde_json::Map::new();
    let mut keyids = Vec::new();
    for path in &p.keys {
        let key = load_public(path)?;
        keyids.push(key.keyid());
        keys.insert(key.keyid(), serde_json::to_value(&key)?);
    }
    Ok(json!({"delegations": {"keys": keys, "roles": [
        {"name": project_role(&p.project), "keyids": keyids, "threshold": p.threshold}
    ]}}))
}

fn delegation(api: &Api, command: DelegationCommand) -> anyhow::Result<()> {
    let (method, path, body) = match &command {
        DelegationCommand::Add(p) => ("POST", "/api/v1/delegations", delegation_payload(p)?),
        DelegationCommand::Update(p) => ("PUT", "/api/v1/delegations", delegation_payload(p)?),
        DelegationCommand::Remove { project } => (
            "POST",
            "/api/v1/delegations/delete",
            json!({"delegations": {"roles": [{"name": project_role(project)}]}}),
        ),
        DelegationCommand::Upload { project, file } => {
            let text =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let metadata: Value = serde_json::from_slice(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let mut map = serde_json::Map::new();
            map.insert(project_role(project), metadata);
            (
                "POST",
                "/api/v1/delegations/metadata",
                json!({"metadata": map}),
            )
        }
    };
    let resp = api.send(method, path, &body)?;
    let task = resp
        .pointer("/data/task_id")
        .and_then(Value::as_str)
        .context("no task id")?
        .to_string();
    let done = api.wait(&task)?;
    let failed = done
        .pointer("/data/result/details/failed_roles")
        .and_then(Value::as_array)
        .filter(|f| !f.is_empty());
    if let Some(failed) = failed {
        bail!(
            "task {task}: not applied to {} (POST of a role that exists, or PUT/remove of one that does not)",
            Value::Array(failed.clone())
        );
    }
    eprintln!("done (task {task}); published");
    Ok(())
}

#[derive(Debug, Args)]
struct UpdateRootArgs {
    /// A root private key (PEM) to sign with. Repeatable.
    #[arg(long = "root-key", value_name = "FILE")]
    root_keys: Vec<PathBuf>,
    /// Environment variable holding the password of encrypted root key files.
    #[arg(long, value_name = "VAR")]
    root_key_password_env: Option<String>,
    /// A key (PEM public or private) to add to root's keys. Repeatable.
    #[arg(long = "add-root-key", value_name = "FILE")]
    add_root_keys: Vec<PathBuf>,
    /// A keyid to remove from root's keys. Repeatable.
    #[arg(long = "remove-root-key", value_name = "KEYID")]
    remove_root_keys: Vec<String>,
    /// The new root threshold.
    #[arg(long)]
    root_threshold: Option<u64>,
    /// Days until the new root expires.
    #[arg(long, default_value_t = 365)]
    root_expiration: u32,
    /// Rotate the online key to this one (PEM public or private). The service
    /// must already hold its private key (`--online-key` or DATA_DIR/keys/online*.pem).
    #[arg(long, value_name = "FILE")]
    online_key: Option<PathBuf>,
    /// Also write the new root's payload here.
    #[arg(long)]
    out: Option<PathBuf>,
}

struct Api {
    base: String,
    http: reqwest::blocking::Client,
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.trim_end_matches('/'))
    }

    fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let resp = self
            .http
            .get(self.url(path))
            .send()
            .with_context(|| format!("GET {}", self.url(path)))?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().unwrap_or(Value::Null)))
    }

    fn get_bytes(&self, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let resp = self
            .http
            .get(self.url(path))
            .send()
            .with_context(|| format!("GET {}", self.url(path)))?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            bail!("GET {}: HTTP {}", self.url(path), resp.status());
        }
        Ok(Some(resp.bytes()?.to_vec()))
    }

    fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send("POST", path, body)
    }

    /// Sends a JSON body; fails unless the answer is 202, with the service's reason.
    fn send(&self, method: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
        let request = if method == "PUT" {
            self.http.put(self.url(path))
        } else {
            self.http.post(self.url(path))
        };
        let resp = request
            .json(body)
            .send()
            .with_context(|| format!("{method} {}", self.url(path)))?;
        let status = resp.status();
        let value: Value = resp.json().unwrap_or(Value::Null);
        if status.as_u16() != 202 {
            let error = value
                .pointer("/detail/error")
                .and_then(Value::as_str)
                .unwrap_or("");
            let field = value
                .pointer("/detail/field")
                .and_then(Value::as_str)
                .unwrap_or("");
            bail!(
                "{method} {path}: HTTP {status}: {error}{}",
                if field.is_empty() || error.contains(field) {
                    String::new()
                } else {
                    format!(" ({field})")
                }
            );
        }
        Ok(value)
    }

    /// True when the task waits for root signatures from other key holders.
    fn waits_for_signatures(&self, task_id: &str) -> anyhow::Result<bool> {
        let (_, body) = self.get(&format!("/api/v1/task/?task_id={task_id}"))?;
        let pending = body.pointer("/data/state").and_then(Value::as_str) == Some("PENDING");
        let message = body
            .pointer("/data/result/message")
            .and_then(Value::as_str)
            .unwrap_or("");
        Ok(pending && message.contains("waits for more signatures"))
    }

    /// Polls a task until it ends; fails unless it succeeded.
    fn wait(&self, task_id: &str) -> anyhow::Result<Value> {
        let start = Instant::now();
        loop {
            let (status, body) = self.get(&format!("/api/v1/task/?task_id={task_id}"))?;
            if status != 200 {
                bail!("task {task_id}: HTTP {status}: {body}");
            }
            match body.pointer("/data/state").and_then(Value::as_str) {
                Some("SUCCESS") => return Ok(body),
                Some("PENDING" | "STARTED" | "RUNNING") => {}
                other => bail!("task {task_id} ended {}: {body}", other.unwrap_or("?")),
            }
            if start.elapsed() > Duration::from_secs(600) {
                bail!("task {task_id} still pending after 10 minutes");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The newest root the service publishes, following the chain from 1.
    fn current_root(&self) -> anyhow::Result<Metadata<Root>> {
        let mut current = None;
        for version in 1u64.. {
            match self.get_bytes(&format!("/metadata/{version}.root.json"))? {
                Some(bytes) => current = Some(bytes),
                None => break,
            }
        }
        let bytes = current.context("the service publishes no root (is it bootstrapped?)")?;
        Ok(RawMetadata::from_slice("root", &bytes)?.into_metadata("root")?)
    }
}

fn load_public(path: &PathBuf) -> anyhow::Result<Key> {
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if pem.contains("PRIVATE KEY") {
        Ok(PrivateKey::from_pem(&pem, None, None)?.public_key().clone())
    } else {
        Ok(Key::from_public_pem(&pem, None)?)
    }
}

pub fn run(args: AdminArgs) -> anyhow::Result<ExitCode> {
    let api = Api {
        base: args.api,
        http: reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?,
    };
    match args.command {
        AdminCommand::SendBootstrap { payload } => {
            let text = std::fs::read_to_string(&payload)
                .with_context(|| format!("reading {}", payload.display()))?;
            let body: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", payload.display()))?;
            let resp = api.post("/api/v1/bootstrap/", &body)?;
            let task = resp
                .pointer("/data/task_id")
                .and_then(Value::as_str)
                .context("no task id")?
                .to_string();
            if api.waits_for_signatures(&task)? {
                eprintln!(
                    "bootstrap accepted (task {task}); root waits for more signatures: other key holders run `tufa admin sign`"
                );
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!("bootstrap accepted (task {task}); waiting for the first publication");
            api.wait(&task)?;
            eprintln!("bootstrap done");
        }
        AdminCommand::UpdateRoot(u) => update_root(&api, u)?,
        AdminCommand::Sign {
            root_keys,
            root_key_password_env,
        } => {
            let (status, body) = api.get("/api/v1/metadata/sign")?;
            if status != 200 {
                bail!("GET /api/v1/metadata/sign: HTTP {status}: {body}");
            }
            let pending = body
                .pointer("/data/metadata/root")
                .cloned()
                .context("no root is waiting for signatures")?;
            let root: Metadata<Root> =
                RawMetadata::from_value("root", pending)?.into_metadata("root")?;
            let bytes = root.signed_bytes()?;
            let password = root_key_password_env
                .as_deref()
                .and_then(|v| std::env::var(v).ok());
            for path in &root_keys {
                let pem = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let key = PrivateKey::from_pem(&pem, password.as_deref().map(str::as_bytes), None)
                    .with_context(|| format!("loading {}", path.display()))?;
                let sig = hex::encode(key.sign(&bytes)?);
                let resp = api.post(
                    "/api/v1/metadata/sign",
                    &json!({"role": "root", "signature": {"keyid": key.keyid(), "sig": sig}}),
                )?;
                let task = resp
                    .pointer("/data/task_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let (_, t) = api.get(&format!("/api/v1/task/?task_id={task}"))?;
                let complete = t
                    .pointer("/data/result/details/complete")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                eprintln!(
                    "signed root version {} with key {}{}",
                    root.signed.version,
                    key.keyid(),
                    if complete { "; threshold met" } else { "" }
                );
            }
        }
        AdminCommand::AbortSign => {
            api.post("/api/v1/metadata/sign/delete", &json!({"role": "root"}))?;
            eprintln!("signing abandoned");
        }
        AdminCommand::Resign { roles } => {
            let resp = api.post("/api/v1/metadata/online", &json!({"roles": roles}))?;
            let task = resp
                .pointer("/data/task_id")
                .and_then(Value::as_str)
                .context("no task id")?
                .to_string();
            api.wait(&task)?;
            eprintln!("online roles re-signed (task {task})");
        }
        AdminCommand::Delegation { command } => delegation(&api, command)?,
        AdminCommand::Config => {
            let (_, body) = api.get("/api/v1/config/")?;
            println!("{}", serde_json::to_string_pretty(&body["data"])?);
        }
        AdminCommand::Tasks { limit } => {
            let (_, body) = api.get(&format!("/api/v1/tasks?limit={limit}"))?;
            for t in body
                .pointer("/data/tasks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                println!(
                    "{}  {:<8} {:<30} {}",
                    t["task_id"].as_str().unwrap_or(""),
                    t["state"].as_str().unwrap_or(""),
                    t.pointer("/result/task")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                    t.pointer("/result/last_update")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                );
            }
        }
        AdminCommand::Task { task_id } => {
            let (status, body) = api.get(&format!("/api/v1/task/?task_id={task_id}"))?;
            println!("{}", serde_json::to_string_pretty(&body)?);
            if status != 200 {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn update_root(api: &Api, u: UpdateRootArgs) -> anyhow::Result<()> {
    let current = api.current_root()?;
    let mut root = current.signed.clone();
    root.version += 1;
    root.expires = UtcTime::now().plus_seconds(i64::from(u.root_expiration) * 86_400);
    for path in &u.add_root_keys {
        root.add_key("root", load_public(path)?)?;
    }
    for keyid in &u.remove_root_keys {
        let role = root
            .roles
            .get_mut("root")
            .context("root has no root role")?;
        if !role.keyids.contains(keyid) {
            bail!("--remove-root-key {keyid}: not a root key");
        }
        role.keyids.retain(|k| k != keyid);
        // In pep480 the root keys may also be targets keys: keep those.
        if !root.roles.values().any(|r| r.keyids.contains(keyid)) {
            root.keys.remove(keyid);
        }
    }
    if let Some(t) = u.root_threshold
        && let Some(role) = root.roles.get_mut("root")
    {
        role.threshold = t;
    }
    if let Some(path) = &u.online_key {
        let key = load_public(path)?;
        let keyid = key.keyid();
        let old: Vec<String> = root
            .roles
            .get("timestamp")
            .map(|r| r.keyids.clone())
            .unwrap_or_default();
        for role in ["targets", "snapshot", "timestamp"] {
            // targets follows the online key only where it uses it (pep458);
            // a pep480 targets is offline and keeps its keys.
            if let Some(r) = root.roles.get_mut(role)
                && (role != "targets" || r.keyids == old)
            {
                r.keyids = vec![keyid.clone()];
            }
        }
        for k in old {
            if !root.roles.values().any(|r| r.keyids.contains(&k)) {
                root.keys.remove(&k);
            }
        }
        root.keys.insert(keyid, key);
    }
    let mut md = Metadata::new(root);
    let password = u
        .root_key_password_env
        .as_deref()
        .and_then(|v| std::env::var(v).ok());
    for path in &u.root_keys {
        let pem =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let key = PrivateKey::from_pem(&pem, password.as_deref().map(str::as_bytes), None)
            .with_context(|| format!("loading {}", path.display()))?;
        md.sign(&key as &dyn Signer)?;
    }
    let root_value: Value = serde_json::from_slice(&md.to_bytes()?)?;
    let payload = json!({"metadata": {"root": root_value}});
    if let Some(out) = &u.out {
        std::fs::write(out, serde_json::to_string_pretty(&payload)? + "\n")?;
    }
    let resp = api.post("/api/v1/metadata/", &payload)?;
    let task = resp
        .pointer("/data/task_id")
        .and_then(Value::as_str)
        .context("no task id")?
        .to_string();
    if api.waits_for_signatures(&task)? {
        eprintln!(
            "root version {} accepted (task {task}); it waits for more signatures: other key holders run `tufa admin sign`",
            md.signed.version
        );
        return Ok(());
    }
    eprintln!(
        "root version {} accepted (task {task}); waiting for it to be published",
        md.signed.version
    );
    api.wait(&task)?;
    eprintln!("root version {} published", md.signed.version);
    Ok(())
}
