//! The pep480 layout (DESIGN.md section 2): an offline `targets` delegates,
//! in this order, to `claimed` (offline keys), `recently-claimed` (online
//! key) and `unclaimed` (online key, which delegates to the succinct bins).
//!
//! The structure is fixed so that a client's pre-order walk always reaches
//! a project's developer-signed role before the bins the online key signs;
//! bootstrap checks it field by field, because a wrong order or key here
//! would silently void PEP 480's protection.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use tufa_metadata::{
    DelegatedRole, Delegations, Key, Metadata, RawMetadata, Role, Root, Targets, UtcTime,
};

use crate::error::{Error, Result};
use crate::settings::{CLAIMED, OfflineRoles, PROJECT_FILES_PATTERN, RECENTLY_CLAIMED, UNCLAIMED};

/// The `path_hash_prefixes` of `unclaimed`: every target path matches one.
pub const ALL_HASH_PREFIXES: [&str; 16] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f",
];

/// The prefix of project role names: `project-{normalised name}`.
pub const PROJECT_PREFIX: &str = "project-";

/// PEP 503 normalisation, as the bundled index does it: project role names
/// and index paths must agree on a project's name.
pub use crate::index::normalize_name as normalise_project;

/// The one `paths` pattern of a project role.
pub fn project_pattern(project: &str) -> String {
    format!("packages/{project}/*")
}

/// `targets`' delegations in the pep480 layout.
pub fn targets_delegations(
    claimed_keys: &[Key],
    claimed_threshold: u64,
    online_key: &Key,
) -> Delegations {
    let mut keys = BTreeMap::new();
    for key in claimed_keys {
        keys.insert(key.keyid(), key.clone());
    }
    let online_keyid = online_key.keyid();
    keys.insert(online_keyid.clone(), online_key.clone());
    let role = |name: &str, keyids: Vec<String>, threshold: u64| DelegatedRole {
        name: name.into(),
        keyids,
        threshold,
        terminating: false,
        paths: Some(vec![PROJECT_FILES_PATTERN.into()]),
        path_hash_prefixes: None,
        unrecognized: Map::new(),
    };
    let mut claimed_keyids: Vec<String> = claimed_keys.iter().map(Key::keyid).collect();
    claimed_keyids.dedup();
    let mut unclaimed = role(UNCLAIMED, vec![online_keyid.clone()], 1);
    unclaimed.paths = None;
    unclaimed.path_hash_prefixes = Some(ALL_HASH_PREFIXES.iter().map(|p| p.to_string()).collect());
    Delegations {
        keys,
        roles: Some(vec![
            role(CLAIMED, claimed_keyids, claimed_threshold),
            role(RECENTLY_CLAIMED, vec![online_keyid], 1),
            unclaimed,
        ]),
        succinct_roles: None,
        unrecognized: Map::new(),
    }
}

/// An empty role that only delegates (claimed, recently-claimed at first).
pub fn empty_delegations() -> Delegations {
    Delegations {
        keys: BTreeMap::new(),
        roles: Some(Vec::new()),
        succinct_roles: None,
        unrecognized: Map::new(),
    }
}

/// Checks one project role as claimed or recently-claimed delegates it:
/// `project-{normalised}`, one terminating pattern `packages/{project}/*`,
/// keys listed. Returns the project name.
pub fn check_project_role(
    role: &DelegatedRole,
    keys: &BTreeMap<String, Key>,
    field: &str,
) -> Result<String> {
    let project = role
        .name
        .strip_prefix(PROJECT_PREFIX)
        .filter(|p| !p.is_empty() && normalise_project(p) == *p)
        .ok_or_else(|| {
            Error::invalid(
                format!("{field}.name"),
                format!(
                    "{:?} must be project-{{name}} with the PEP 503 normalised project name",
                    role.name
                ),
            )
        })?;
    let pattern = project_pattern(project);
    if role.path_hash_prefixes.is_some() || role.paths.as_deref() != Some(&[pattern.clone()][..]) {
        return Err(Error::invalid(
            format!("{field}.paths"),
            format!("must be exactly [{pattern:?}]"),
        ));
    }
    if !role.terminating {
        return Err(Error::invalid(
            format!("{field}.terminating"),
            "must be true (a project's files are trusted from its role only)",
        ));
    }
    check_keys(role, keys, field)?;
    Ok(project.to_string())
}

fn check_keys(role: &DelegatedRole, keys: &BTreeMap<String, Key>, field: &str) -> Result<()> {
    let unique: BTreeSet<&String> = role.keyids.iter().collect();
    if role.threshold < 1 || role.threshold > unique.len() as u64 {
        return Err(Error::invalid(
            format!("{field}.threshold"),
            format!(
                "must be from 1 to the {} keys listed, got {}",
                unique.len(),
                role.threshold
            ),
        ));
    }
    for keyid in &role.keyids {
        if !keys.contains_key(keyid) {
            return Err(Error::invalid(
                format!("{field}.keyids"),
                format!("{keyid} is not in the delegating role's keys"),
            ));
        }
    }
    Ok(())
}

/// Checks `targets`' delegations: exactly claimed, recently-claimed and
/// unclaimed in this order, none terminating, the online key (and only it)
/// for the two online roles, claimed's keys offline.
pub fn check_targets_delegations(
    targets: &Targets,
    online_keyid: &str,
    online_key: &Key,
) -> Result<()> {
    const F: &str = "metadata.targets.signed.delegations";
    let d = targets.delegations.as_ref().ok_or_else(|| {
        Error::invalid(
            F,
            "is required: targets delegates to claimed, recently-claimed and unclaimed",
        )
    })?;
    if d.succinct_roles.is_some() {
        return Err(Error::invalid(
            format!("{F}.succinct_roles"),
            "must be absent in the pep480 layout (the bins hang under unclaimed)",
        ));
    }
    let roles = d.roles.as_deref().unwrap_or_default();
    let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
    if names != [CLAIMED, RECENTLY_CLAIMED, UNCLAIMED] {
        return Err(Error::invalid(
            format!("{F}.roles"),
            format!(
                "must be exactly [\"claimed\", \"recently-claimed\", \"unclaimed\"] in this order, got {names:?}"
            ),
        ));
    }
    match d.keys.get(online_keyid) {
        Some(k)
            if k.keytype == online_key.keytype
                && k.scheme == online_key.scheme
                && k.keyval == online_key.keyval => {}
        _ => {
            return Err(Error::invalid(
                format!("{F}.keys"),
                format!("must list the online key {online_keyid} (as root does)"),
            ));
        }
    }
    for (i, role) in roles.iter().enumerate() {
        let field = format!("{F}.roles[{i}]");
        if role.terminating {
            return Err(Error::invalid(
                format!("{field}.terminating"),
                format!("{} must not be terminating", role.name),
            ));
        }
        check_keys(role, &d.keys, &field)?;
        let online = role.keyids == [online_keyid] && role.threshold == 1;
        if role.name == CLAIMED {
            if role.keyids.iter().any(|k| k == online_keyid) {
                return Err(Error::invalid(
                    format!("{field}.keyids"),
                    "claimed must not use the online key (its keys are offline)",
                ));
            }
        } else if !online {
            return Err(Error::invalid(
                format!("{field}.keyids"),
                format!(
                    "{} must be signed by the online key {online_keyid} alone, threshold 1",
                    role.name
                ),
            ));
        }
        if role.name == UNCLAIMED {
            let want: BTreeSet<&str> = ALL_HASH_PREFIXES.into_iter().collect();
            let got: Option<BTreeSet<&str>> = role
                .path_hash_prefixes
                .as_ref()
                .map(|p| p.iter().map(String::as_str).collect());
            if role.paths.is_some()
                || got.as_ref() != Some(&want)
                || role.path_hash_prefixes.as_ref().map(Vec::len) != Some(16)
            {
                return Err(Error::invalid(
                    format!("{field}.path_hash_prefixes"),
                    "unclaimed must match every path: path_hash_prefixes \"0\" to \"f\", no paths",
                ));
            }
        } else if role.path_hash_prefixes.is_some()
            || role.paths.as_deref() != Some(&[PROJECT_FILES_PATTERN.to_string()][..])
        {
            return Err(Error::invalid(
                format!("{field}.paths"),
                format!("{} must have paths exactly [\"packages/*/*\"]", role.name),
            ));
        }
    }
    Ok(())
}

/// Parses one offline role of the bootstrap payload.
fn parse(name: &str, value: Option<&Value>) -> Result<(RawMetadata, Metadata<Targets>)> {
    let field = format!("metadata.{name}");
    let value = value.ok_or_else(|| {
        Error::invalid(
            &field,
            "is required in the pep480 layout (signed at the ceremony)",
        )
    })?;
    let raw = RawMetadata::from_value(name, value.clone())
        .map_err(|e| Error::invalid(&field, e.to_string()))?;
    let md: Metadata<Targets> = raw
        .clone()
        .into_metadata(name)
        .map_err(|e| Error::invalid(&field, e.to_string()))?;
    if md.signed.version != 1 {
        return Err(Error::invalid(
            format!("{field}.signed.version"),
            format!("must be 1, got {}", md.signed.version),
        ));
    }
    if md.signed.is_expired(UtcTime::now()) {
        return Err(Error::invalid(
            format!("{field}.signed.expires"),
            format!("{} is in the past", md.signed.expires),
        ));
    }
    if !md.signed.targets.is_empty() {
        return Err(Error::invalid(
            format!("{field}.signed.targets"),
            format!("must be empty: {name} only delegates"),
        ));
    }
    Ok((raw, md))
}

/// Checks the offline `targets` and `claimed` of a pep480 bootstrap payload
/// (`metadata.targets`, `metadata.claimed`) against `root`: both v1, fully
/// signed (targets by root's targets keys, claimed by targets' delegation),
/// the delegation structure exact.
pub fn check_offline_roles(
    root: &Root,
    online_keyid: &str,
    metadata: Option<&Value>,
) -> Result<OfflineRoles> {
    let get = |name: &str| metadata.and_then(|m| m.get(name));
    let (raw, targets) = parse("targets", get("targets"))?;
    root.verify_role("targets", &raw).map_err(|e| {
        Error::invalid(
            "metadata.targets.signatures",
            format!("must meet root's targets threshold with root's targets keys: {e}"),
        )
    })?;
    let online_key = root.keys.get(online_keyid).ok_or_else(|| {
        Error::invalid("metadata.root.signed.keys", "does not list the online key")
    })?;
    check_targets_delegations(&targets.signed, online_keyid, online_key)?;
    let (claimed_raw, claimed) = parse(CLAIMED, get(CLAIMED))?;
    targets
        .signed
        .verify_delegate("targets", CLAIMED, &claimed_raw)
        .map_err(|e| {
            Error::invalid(
                "metadata.claimed.signatures",
                format!("must meet targets' delegation to claimed: {e}"),
            )
        })?;
    if let Some(d) = &claimed.signed.delegations {
        if d.succinct_roles.is_some() {
            return Err(Error::invalid(
                "metadata.claimed.signed.delegations.succinct_roles",
                "must be absent: claimed delegates to project roles only",
            ));
        }
        // A project role under claimed would need its own metadata in the
        // repository from the start (else every lookup of that project
        // fails), and tufa takes project metadata only for recently-claimed.
        if !d.roles.as_deref().unwrap_or_default().is_empty() {
            return Err(Error::invalid(
                "metadata.claimed.signed.delegations.roles",
                "must be empty at bootstrap (project roles go under recently-claimed through /api/v1/delegations)",
            ));
        }
    }
    let value = |name: &str| get(name).cloned().unwrap_or(Value::Null);
    Ok(OfflineRoles {
        targets: value("targets"),
        claimed: value(CLAIMED),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_as_pep_503() {
        assert_eq!(normalise_project("Foo.Bar__baz-"), "foo-bar-baz-");
        assert_eq!(normalise_project("foo"), "foo");
    }

    fn role(name: &str, paths: &[&str], terminating: bool) -> DelegatedRole {
        DelegatedRole {
            name: name.into(),
            keyids: vec!["k".into()],
            threshold: 1,
            terminating,
            paths: Some(paths.iter().map(|p| p.to_string()).collect()),
            path_hash_prefixes: None,
            unrecognized: Map::new(),
        }
    }

    #[test]
    fn project_roles_are_checked() {
        let key = Key::new(tufa_metadata::Scheme::Ed25519, "00".repeat(32));
        let keys = BTreeMap::from([("k".to_string(), key)]);
        let ok = role("project-foo", &["packages/foo/*"], true);
        assert_eq!(check_project_role(&ok, &keys, "r").unwrap(), "foo");
        for (bad, field) in [
            (role("project-Foo", &["packages/Foo/*"], true), "r.name"),
            (role("foo", &["packages/foo/*"], true), "r.name"),
            (role("project-foo", &["packages/*/*"], true), "r.paths"),
            (
                role("project-foo", &["packages/foo/*"], false),
                "r.terminating",
            ),
        ] {
            match check_project_role(&bad, &keys, "r") {
                Err(Error::InvalidRequest { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let mut unknown = ok.clone();
        unknown.keyids = vec!["other".into()];
        assert!(check_project_role(&unknown, &keys, "r").is_err());
    }

    #[test]
    fn the_built_delegations_pass_the_check_and_a_swap_does_not() {
        let online = Key::new(tufa_metadata::Scheme::Ed25519, "11".repeat(32));
        let offline = Key::new(tufa_metadata::Scheme::Ed25519, "22".repeat(32));
        let mut targets = Targets::new(UtcTime::now().plus_seconds(3600));
        targets.delegations = Some(targets_delegations(
            std::slice::from_ref(&offline),
            1,
            &online,
        ));
        check_targets_delegations(&targets, &online.keyid(), &online).unwrap();

        let mut swapped = targets.clone();
        if let Some(roles) = swapped.delegations.as_mut().and_then(|d| d.roles.as_mut()) {
            roles.swap(0, 1);
        }
        let err = check_targets_delegations(&swapped, &online.keyid(), &online).unwrap_err();
        assert!(err.to_string().contains("delegations.roles"), "{err}");

        // claimed signed by the online key: refused.
        let mut online_claimed = targets.clone();
        online_claimed.delegations = Some(targets_delegations(
            std::slice::from_ref(&online),
            1,
            &online,
        ));
        let err = check_targets_delegations(&online_claimed, &online.keyid(), &online).unwrap_err();
        assert!(err.to_string().contains("roles[0].keyids"), "{err}");

        // A terminating recently-claimed would hide unclaimed.
        let mut terminating = targets.clone();
        if let Some(roles) = terminating
            .delegations
            .as_mut()
            .and_then(|d| d.roles.as_mut())
        {
            roles[1].terminating = true;
        }
        let err = check_targets_delegations(&terminating, &online.keyid(), &online).unwrap_err();
        assert!(err.to_string().contains("roles[1].terminating"), "{err}");

        // unclaimed must match every path.
        let mut narrow = targets;
        if let Some(roles) = narrow.delegations.as_mut().and_then(|d| d.roles.as_mut()) {
            roles[2].path_hash_prefixes = Some(vec!["0".into()]);
        }
        let err = check_targets_delegations(&narrow, &online.keyid(), &online).unwrap_err();
        assert!(err.to_string().contains("path_hash_prefixes"), "{err}");
    }
}
