//! The offline audit of a published repository directory (`tufa verify`).
//!
//! It checks what a client would, but for every role at once: the root chain
//! from a trusted root, then timestamp, snapshot, targets and every delegated
//! role reachable from targets (all succinct bins included) for signatures
//! and thresholds, versions against snapshot, lengths and hashes where listed,
//! and expiry at a given time. A mirror operator runs it before serving a
//! copy; tufa's own tests run it after every publication.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use tufa_metadata::metadata::TOP_LEVEL_ROLES;
use tufa_metadata::metadata::Verification;
use tufa_metadata::{MetaFile, RawMetadata, Role, Root, Snapshot, Targets, Timestamp, UtcTime};

use crate::limits::{
    ROOT_MAX_LENGTH, SNAPSHOT_MAX_LENGTH, TARGETS_MAX_LENGTH, TIMESTAMP_MAX_LENGTH, read_bounded,
};
use crate::role_name;

/// Most root versions followed (python-tuf's `max_root_rotations` is 256;
/// an audit walks the whole history of a long-lived repository).
const MAX_ROOT_CHAIN: u64 = 100_000;

/// What to audit.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The repository directory (`{version}.{role}.json` files and `timestamp.json`).
    pub dir: PathBuf,
    /// The trusted root to start the chain from; `DIR/1.root.json` when `None`.
    pub trusted_root: Option<PathBuf>,
    /// The time expiry is checked at.
    pub at: UtcTime,
}

/// One role's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleResult {
    pub role: String,
    pub version: Option<u64>,
    pub outcome: Result<RoleSummary, String>,
}

/// What a verified role looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSummary {
    pub expires: UtcTime,
    pub signatures: usize,
    pub threshold: u64,
    /// Targets listed, for targets roles.
    pub targets: Option<usize>,
}

/// The audit's findings, in the order roles were reached.
#[derive(Debug, Clone, Default)]
pub struct AuditReport {
    pub roles: Vec<RoleResult>,
}

impl AuditReport {
    pub fn is_ok(&self) -> bool {
        self.roles.iter().all(|r| r.outcome.is_ok())
    }

    pub fn failures(&self) -> impl Iterator<Item = &RoleResult> {
        self.roles.iter().filter(|r| r.outcome.is_err())
    }

    fn ok(&mut self, role: &str, version: u64, summary: RoleSummary) {
        self.roles.push(RoleResult {
            role: role.to_string(),
            version: Some(version),
            outcome: Ok(summary),
        });
    }

    fn fail(&mut self, role: &str, version: Option<u64>, reason: impl Into<String>) {
        self.roles.push(RoleResult {
            role: role.to_string(),
            version,
            outcome: Err(reason.into()),
        });
    }
}

/// Audits a repository directory. Never fails as a whole: every problem is
/// a failed [`RoleResult`] naming the role and the reason. Roles below a
/// failed top-level role are not reached and so not listed.
pub fn audit(options: &AuditOptions) -> AuditReport {
    let mut report = AuditReport::default();
    let _ = audit_into(options, &mut report);
    report
}

/// Stops (with `Err(())`) when a failure leaves nothing below it to trust.
fn audit_into(options: &AuditOptions, report: &mut AuditReport) -> Result<(), ()> {
    let dir = &options.dir;
    let root = root_chain(options, report)?;
    let root_meta = &root.signed;
    if root_meta.is_expired(options.at) {
        report.fail(
            "root",
            Some(root_meta.version),
            format!(
                "expired at {} (checked at {})",
                root_meta.expires, options.at
            ),
        );
        return Err(());
    }

    // Timestamp: always the unversioned file.
    let timestamp: Timestamp = top_level(
        report,
        &root,
        "timestamp",
        &dir.join("timestamp.json"),
        TIMESTAMP_MAX_LENGTH,
        None,
        options.at,
    )?;
    let Ok(snapshot_meta) = timestamp.snapshot_meta().cloned() else {
        report.fail(
            "timestamp",
            Some(timestamp.version),
            "meta has no snapshot.json",
        );
        return Err(());
    };

    let consistent = root_meta.consistent_snapshot;
    let path_of = |version: u64, role: &str| {
        if consistent {
            dir.join(role_name::versioned_file_name(version, role))
        } else {
            dir.join(role_name::file_name(role))
        }
    };

    let snapshot: Snapshot = top_level(
        report,
        &root,
        "snapshot",
        &path_of(snapshot_meta.version, "snapshot"),
        snapshot_meta.length.unwrap_or(SNAPSHOT_MAX_LENGTH),
        Some(&snapshot_meta),
        options.at,
    )?;
    let Some(targets_meta) = snapshot.role_meta("targets").cloned() else {
        report.fail(
            "snapshot",
            Some(snapshot.version),
            "meta has no targets.json",
        );
        return Err(());
    };
    let targets: Targets = top_level(
        report,
        &root,
        "targets",
        &path_of(targets_meta.version, "targets"),
        targets_meta.length.unwrap_or(TARGETS_MAX_LENGTH),
        Some(&targets_meta),
        options.at,
    )?;

    // Delegated roles, breadth first by level; each level verified in parallel.
    let mut level: Vec<(String, String, Targets)> = Vec::new();
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    let mut frontier = vec![("targets".to_string(), targets)];
    while !frontier.is_empty() {
        level.clear();
        for (parent_name, parent) in &frontier {
            for child in child_roles(parent) {
                if seen.insert(child.clone(), ()).is_none() {
                    level.push((child, parent_name.clone(), parent.clone()));
                }
            }
        }
        let results: Vec<DelegatedResult> = level
            .par_iter()
            .map(|(role, parent_name, parent)| {
                let meta = snapshot.role_meta(role);
                let version = meta.map(|m| m.version);
                let result = match meta {
                    None => Err(format!(
                        "not listed in snapshot version {}",
                        snapshot.version
                    )),
                    Some(meta) => delegated(
                        &path_of(meta.version, role),
                        role,
                        parent_name,
                        parent,
                        meta,
                        options.at,
                    ),
                };
                (role.clone(), version, result)
            })
            .collect();
        frontier.clear();
        for (role, version, result) in results {
            match result {
                Ok((summary, signed)) => {
                    report.ok(&role, signed.version, summary);
                    frontier.push((role, signed));
                }
                Err(reason) => report.fail(&role, version, reason),
            }
        }
    }
    Ok(())
}

/// A delegated role's name, the version snapshot lists, and its outcome.
type DelegatedResult = (String, Option<u64>, Result<(RoleSummary, Targets), String>);

/// The names of the roles `parent` delegates to, in order.
fn child_roles(parent: &Targets) -> Vec<String> {
    match &parent.delegations {
        None => Vec::new(),
        Some(d) => match (&d.roles, &d.succinct_roles) {
            (Some(roles), _) => roles.iter().map(|r| r.name.clone()).collect(),
            (None, Some(succinct)) => succinct.role_names().collect(),
            (None, None) => Vec::new(),
        },
    }
}

fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match read_bounded(file, limit) {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(limit)) => Err(format!("{} is longer than {limit} bytes", path.display())),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Follows `N.root.json` from the trusted root as far as the directory goes,
/// each new root signed by a threshold of the old root's keys and its own.
fn root_chain(
    options: &AuditOptions,
    report: &mut AuditReport,
) -> Result<tufa_metadata::Metadata<Root>, ()> {
    let trusted_path = options
        .trusted_root
        .clone()
        .unwrap_or_else(|| options.dir.join("1.root.json"));
    let load = |path: &Path| -> Result<(RawMetadata, tufa_metadata::Metadata<Root>), String> {
        let bytes = read_file(path, ROOT_MAX_LENGTH)?;
        let raw = RawMetadata::from_slice("root", &bytes).map_err(|e| e.to_string())?;
        let typed = raw
            .clone()
            .into_metadata::<Root>("root")
            .map_err(|e| e.to_string())?;
        Ok((raw, typed))
    };
    let (raw, mut trusted) = match load(&trusted_path) {
        Ok(r) => r,
        Err(e) => {
            report.fail("root", None, format!("trusted root: {e}"));
            return Err(());
        }
    };
    // python-tuf checks that the trusted root is signed by its own threshold.
    match trusted.signed.verify_role("root", &raw) {
        Ok(v) => report.ok("root", trusted.signed.version, summary(&trusted.signed, &v)),
        Err(e) => {
            report.fail(
                "root",
                Some(trusted.signed.version),
                format!("trusted root is not signed by its own keys: {e}"),
            );
            return Err(());
        }
    }
    for _ in 0..MAX_ROOT_CHAIN {
        let next = trusted.signed.version + 1;
        let path = options
            .dir
            .join(role_name::versioned_file_name(next, "root"));
        if !path.exists() {
            break;
        }
        let step = load(&path).and_then(|(raw, new)| {
            trusted.signed.verify_role("root", &raw).map_err(|e| {
                format!(
                    "not signed by a threshold of root version {}: {e}",
                    trusted.signed.version
                )
            })?;
            let own = new
                .signed
                .verify_role("root", &raw)
                .map_err(|e| format!("not signed by a threshold of its own keys: {e}"))?;
            if new.signed.version != next {
                return Err(format!(
                    "file {next}.root.json holds version {}",
                    new.signed.version
                ));
            }
            Ok((own, new))
        });
        match step {
            Ok((own, new)) => {
                report.ok("root", next, summary(&new.signed, &own));
                trusted = new;
            }
            Err(reason) => {
                report.fail("root", Some(next), reason);
                return Err(());
            }
        }
    }
    Ok(trusted)
}

fn summary(root: &Root, verification: &Verification) -> RoleSummary {
    RoleSummary {
        expires: root.expires,
        signatures: verification.signed.len(),
        threshold: verification.threshold,
        targets: None,
    }
}

/// Loads and checks a top-level role; on failure records it and stops the audit.
#[allow(clippy::too_many_arguments)]
fn top_level<T: Role + TargetCount>(
    report: &mut AuditReport,
    root: &tufa_metadata::Metadata<Root>,
    role: &str,
    path: &Path,
    limit: u64,
    meta: Option<&MetaFile>,
    at: UtcTime,
) -> Result<T, ()> {
    debug_assert!(TOP_LEVEL_ROLES.contains(&role));
    let result = (|| -> Result<(RoleSummary, T), String> {
        let bytes = read_file(path, limit)?;
        if let Some(meta) = meta {
            meta.verify_data(role, &bytes).map_err(|e| e.to_string())?;
        }
        let raw = RawMetadata::from_slice(role, &bytes).map_err(|e| e.to_string())?;
        let verification = root
            .signed
            .verify_role(role, &raw)
            .map_err(|e| e.to_string())?;
        let typed = raw
            .clone()
            .into_metadata::<T>(role)
            .map_err(|e| e.to_string())?
            .signed;
        check_version_and_expiry(&typed, meta, at)?;
        let summary = RoleSummary {
            expires: typed.expires(),
            signatures: verification.signed.len(),
            threshold: verification.threshold,
            targets: typed.target_count(),
        };
        Ok((summary, typed))
    })();
    match result {
        Ok((summary, typed)) => {
            report.ok(role, typed.version(), summary);
            Ok(typed)
        }
        Err(reason) => {
            report.fail(role, meta.map(|m| m.version), reason);
            Err(())
        }
    }
}

fn check_version_and_expiry<T: Role>(
    signed: &T,
    meta: Option<&MetaFile>,
    at: UtcTime,
) -> Result<(), String> {
    if let Some(meta) = meta
        && signed.version() != meta.version
    {
        return Err(format!(
            "version {} but the referring metadata lists version {}",
            signed.version(),
            meta.version
        ));
    }
    if signed.is_expired(at) {
        return Err(format!(
            "version {} expired at {} (checked at {at})",
            signed.version(),
            signed.expires()
        ));
    }
    Ok(())
}

/// Loads and checks one delegated targets role against its delegator.
fn delegated(
    path: &Path,
    role: &str,
    parent_name: &str,
    parent: &Targets,
    meta: &MetaFile,
    at: UtcTime,
) -> Result<(RoleSummary, Targets), String> {
    let bytes = read_file(path, meta.length.unwrap_or(TARGETS_MAX_LENGTH))?;
    meta.verify_data(role, &bytes).map_err(|e| e.to_string())?;
    let raw = RawMetadata::from_slice(role, &bytes).map_err(|e| e.to_string())?;
    let verification = parent
        .verify_delegate(parent_name, role, &raw)
        .map_err(|e| e.to_string())?;
    let signed = raw
        .into_metadata::<Targets>(role)
        .map_err(|e| e.to_string())?
        .signed;
    check_version_and_expiry(&signed, Some(meta), at)?;
    // Every target a role lists must be one its delegator trusts it for, or
    // no client would ever find it there.
    if let Some(delegations) = &parent.delegations {
        for path in signed.targets.keys() {
            let trusted = delegations
                .roles_for_target(path)
                .iter()
                .any(|c| c.name == role);
            if !trusted {
                return Err(format!(
                    "lists target {path:?}, which {parent_name} does not delegate to it"
                ));
            }
        }
    }
    let summary = RoleSummary {
        expires: signed.expires,
        signatures: verification.signed.len(),
        threshold: verification.threshold,
        targets: Some(signed.targets.len()),
    };
    Ok((summary, signed))
}

/// How many targets a role lists, for the report.
trait TargetCount {
    fn target_count(&self) -> Option<usize> {
        None
    }
}
impl TargetCount for Timestamp {}
impl TargetCount for Snapshot {}
impl TargetCount for Targets {
    fn target_count(&self) -> Option<usize> {
        Some(self.targets.len())
    }
}
