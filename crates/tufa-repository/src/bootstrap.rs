//! The bootstrap payload (RSTUF's format) and the first metadata it produces.

use serde_json::{Map, Value, json};
use tufa_metadata::metadata::{TOP_LEVEL_ROLES, Verification, check_signatures};
use tufa_metadata::{Metadata, RawMetadata, Role, Root, UtcTime};

use crate::error::{Error, Result};
use crate::settings::{Expiration, Layout, OfflineRoles, RepositorySettings};

/// A checked bootstrap request.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub settings: RepositorySettings,
    pub root: Metadata<Root>,
    /// False when root still needs signatures from other key holders.
    pub fully_signed: bool,
    /// pep480: the offline targets and claimed, checked (always fully signed).
    pub offline: Option<OfflineRoles>,
}

/// `settings.layout`: absent means pep458 (RSTUF's payloads have none).
fn layout(payload: &Value) -> Result<Layout> {
    match payload.get("settings").and_then(|s| s.get("layout")) {
        None | Some(Value::Null) => Ok(Layout::Pep458),
        Some(Value::String(s)) if s == "pep458" => Ok(Layout::Pep458),
        Some(Value::String(s)) if s == "pep480" => Ok(Layout::Pep480),
        Some(other) => Err(Error::invalid(
            "settings.layout",
            format!("must be \"pep458\" or \"pep480\", got {other}"),
        )),
    }
}

fn expiration(roles: &Map<String, Value>, role: &str) -> Result<u32> {
    let field = format!("settings.roles.{role}.expiration");
    let value = roles
        .get(role)
        .and_then(|r| r.get("expiration"))
        .ok_or_else(|| Error::invalid(&field, "is required"))?;
    value
        .as_u64()
        .filter(|&d| (1..=3650).contains(&d))
        .map(|d| d as u32)
        .ok_or_else(|| {
            Error::invalid(
                &field,
                format!("must be a number of days from 1 to 3650, got {value}"),
            )
        })
}

/// Parses and checks a bootstrap payload:
/// `{settings: {roles: {root|targets|snapshot|timestamp: {expiration}, bins:
/// {expiration, number_of_delegated_bins}}}, metadata: {root: {...}}}`.
///
/// The root must verify with its own root keys and threshold, list one online
/// key for targets, snapshot and timestamp, and not be expired.
///
/// With `settings.layout = "pep480"`, `metadata.targets` and
/// `metadata.claimed` are required too (see [`crate::pep480`]), and root's
/// targets keys must not include the online key.
pub fn parse_payload(payload: &Value) -> Result<Bootstrap> {
    let layout = layout(payload)?;
    let roles = payload
        .get("settings")
        .and_then(|s| s.get("roles"))
        .and_then(Value::as_object)
        .ok_or_else(|| Error::invalid("settings.roles", "is required and must be an object"))?;
    if roles.contains_key("delegations") {
        return Err(Error::invalid(
            "settings.roles.delegations",
            "custom delegations are not supported yet; use bins",
        ));
    }
    let bins = roles
        .get("bins")
        .ok_or_else(|| Error::invalid("settings.roles.bins", "is required"))?;
    let number = bins
        .get("number_of_delegated_bins")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if !(2..=16384).contains(&number) || !number.is_power_of_two() {
        return Err(Error::invalid(
            "settings.roles.bins.number_of_delegated_bins",
            format!(
                "must be a power of two from 2 to 16384, got {}",
                bins.get("number_of_delegated_bins").unwrap_or(&Value::Null)
            ),
        ));
    }
    let expiration = Expiration {
        root: expiration(roles, "root")?,
        targets: expiration(roles, "targets")?,
        snapshot: expiration(roles, "snapshot")?,
        timestamp: expiration(roles, "timestamp")?,
        bins: expiration(roles, "bins")?,
    };

    let root_value = payload
        .get("metadata")
        .and_then(|m| m.get("root"))
        .ok_or_else(|| Error::invalid("metadata.root", "is required"))?;
    let raw = RawMetadata::from_value("root", root_value.clone())
        .map_err(|e| Error::invalid("metadata.root", e.to_string()))?;
    let root: Metadata<Root> = raw
        .clone()
        .into_metadata("root")
        .map_err(|e| Error::invalid("metadata.root", e.to_string()))?;
    if root.signed.version != 1 {
        return Err(Error::invalid(
            "metadata.root.signed.version",
            format!("must be 1, got {}", root.signed.version),
        ));
    }
    if !root.signed.consistent_snapshot {
        return Err(Error::invalid(
            "metadata.root.signed.consistent_snapshot",
            "must be true",
        ));
    }
    if root.signed.is_expired(UtcTime::now()) {
        return Err(Error::invalid(
            "metadata.root.signed.expires",
            format!("{} is in the past", root.signed.expires),
        ));
    }
    let keys = root
        .signed
        .role("root")
        .map_err(|e| Error::invalid("metadata.root.signed.roles", e.to_string()))?;
    let verification = check_signatures(
        "root",
        &keys.keyids,
        keys.threshold,
        &root.signed.keys,
        raw.signed_bytes(),
        raw.signatures(),
    );
    if verification.signed.is_empty() {
        return Err(Error::invalid(
            "metadata.root.signatures",
            "no valid signature by a root key (at least one is needed; others may sign later)",
        ));
    }
    let fully_signed = verification.is_satisfied();

    let online_keyid = online_keyid(&root.signed, layout)?;
    let offline = match layout {
        Layout::Pep458 => None,
        Layout::Pep480 => Some(crate::pep480::check_offline_roles(
            &root.signed,
            &online_keyid,
            payload.get("metadata"),
        )?),
    };
    let root_keys = root
        .signed
        .role("root")
        .map_err(|e| Error::invalid("metadata.root.signed.roles", e.to_string()))?;
    let settings = RepositorySettings {
        expiration,
        number_of_delegated_bins: number as u32,
        online_keyid,
        root_threshold: verification.threshold,
        root_num_keys: root_keys.keyids.len(),
        layout,
    };
    Ok(Bootstrap {
        settings,
        root,
        fully_signed,
        offline,
    })
}

/// The one online key root names for targets, snapshot and timestamp (the
/// amended PEP 458 design), which must also be listed in root's keys. In
/// pep480 only snapshot and timestamp are online, and targets must not use
/// the online key: an online targets could re-point the delegations.
pub fn online_keyid(root: &Root, layout: Layout) -> Result<String> {
    let mut online: Option<&String> = None;
    let online_roles = TOP_LEVEL_ROLES
        .iter()
        .filter(|r| **r != "root" && (layout.is_pep458() || **r != "targets"));
    for role in online_roles {
        let keys = root
            .role(role)
            .map_err(|e| Error::invalid("metadata.root.signed.roles", e.to_string()))?;
        let field = format!("metadata.root.signed.roles.{role}");
        match (keys.keyids.as_slice(), keys.threshold) {
            ([keyid], 1) => match online {
                None => online = Some(keyid),
                Some(k) if k == keyid => {}
                Some(k) => {
                    return Err(Error::invalid(
                        field,
                        format!("uses key {keyid}, but the online key is {k}"),
                    ));
                }
            },
            _ => {
                return Err(Error::invalid(
                    field,
                    "must list exactly one online key with threshold 1",
                ));
            }
        }
    }
    let online_keyid = online
        .cloned()
        .ok_or_else(|| Error::invalid("metadata.root.signed.roles", "no online key"))?;
    if !root.keys.contains_key(&online_keyid) {
        return Err(Error::invalid(
            "metadata.root.signed.keys",
            format!("online key {online_keyid} is not listed"),
        ));
    }
    if root
        .role("root")
        .is_ok_and(|r| r.keyids.contains(&online_keyid))
    {
        return Err(Error::invalid(
            "metadata.root.signed.roles.root",
            "the online key must not be a root key",
        ));
    }
    if layout == Layout::Pep480 {
        let targets = root
            .role("targets")
            .map_err(|e| Error::invalid("metadata.root.signed.roles", e.to_string()))?;
        if targets.keyids.contains(&online_keyid) {
            return Err(Error::invalid(
                "metadata.root.signed.roles.targets",
                "must not use the online key: targets is offline in the pep480 layout",
            ));
        }
    }
    Ok(online_keyid)
}

/// A checked root update.
#[derive(Debug, Clone)]
pub struct RootUpdate {
    pub version: u64,
    pub online_keyid: String,
    /// False when root N+1 still needs signatures from other key holders.
    pub fully_signed: bool,
}

/// Checks root N+1 against the trusted root N: version, both thresholds,
/// consistent snapshots, not expired, one online key.
pub fn check_root_update(
    trusted: &Metadata<Root>,
    value: &Value,
    layout: Layout,
) -> Result<RootUpdate> {
    let raw = RawMetadata::from_value("root", value.clone())
        .map_err(|e| Error::invalid("metadata.root", e.to_string()))?;
    let new: Metadata<Root> = raw
        .clone()
        .into_metadata("root")
        .map_err(|e| Error::invalid("metadata.root", e.to_string()))?;
    let want = trusted.signed.version + 1;
    if new.signed.version != want {
        return Err(Error::invalid(
            "metadata.root.signed.version",
            format!(
                "must be {want} (the trusted root is version {}), got {}",
                trusted.signed.version, new.signed.version
            ),
        ));
    }
    if !new.signed.consistent_snapshot {
        return Err(Error::invalid(
            "metadata.root.signed.consistent_snapshot",
            "must be true",
        ));
    }
    if new.signed.is_expired(UtcTime::now()) {
        return Err(Error::invalid(
            "metadata.root.signed.expires",
            format!("{} is in the past", new.signed.expires),
        ));
    }
    let (by_trusted, by_new) = root_update_signatures(trusted, &new, &raw);
    if by_trusted.signed.is_empty() && by_new.signed.is_empty() {
        return Err(Error::invalid(
            "metadata.root.signatures",
            format!(
                "no valid signature by a key of the trusted root version {} or of the new root",
                trusted.signed.version
            ),
        ));
    }
    Ok(RootUpdate {
        version: new.signed.version,
        online_keyid: online_keyid(&new.signed, layout)?,
        fully_signed: by_trusted.is_satisfied() && by_new.is_satisfied(),
    })
}

/// How far root N+1 is signed by the trusted root's keys and by its own.
pub fn root_update_signatures(
    trusted: &Metadata<Root>,
    new: &Metadata<Root>,
    raw: &RawMetadata,
) -> (Verification, Verification) {
    let check = |root: &Root| {
        let (keyids, threshold) = root
            .role("root")
            .map(|r| (r.keyids.clone(), r.threshold))
            .unwrap_or_default();
        check_signatures(
            "root",
            &keyids,
            threshold,
            &root.keys,
            raw.signed_bytes(),
            raw.signatures(),
        )
    };
    (check(&trusted.signed), check(&new.signed))
}

/// As [`payload`], for the pep480 layout: `settings.layout` and the offline
/// `targets` and `claimed` beside root.
pub fn payload_pep480(
    expiration: &Expiration,
    number_of_bins: u32,
    root: &Metadata<Root>,
    targets: &Metadata<tufa_metadata::Targets>,
    claimed: &Metadata<tufa_metadata::Targets>,
) -> Result<Value> {
    let mut value = payload(expiration, number_of_bins, root)?;
    let as_value = |bytes: Vec<u8>| -> Result<Value> {
        serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(e.to_string()))
    };
    value["settings"]["layout"] = Value::String(Layout::Pep480.as_str().into());
    value["metadata"]["targets"] = as_value(targets.to_bytes()?)?;
    value["metadata"]["claimed"] = as_value(claimed.to_bytes()?)?;
    Ok(value)
}

/// Builds a bootstrap payload in RSTUF's format from a signed root.
pub fn payload(
    expiration: &Expiration,
    number_of_bins: u32,
    root: &Metadata<Root>,
) -> Result<Value> {
    let root_value: Value =
        serde_json::from_slice(&root.to_bytes()?).map_err(|e| Error::Corrupt(e.to_string()))?;
    Ok(json!({
        "settings": {
            "roles": {
                "root": {"expiration": expiration.root},
                "targets": {"expiration": expiration.targets},
                "snapshot": {"expiration": expiration.snapshot},
                "timestamp": {"expiration": expiration.timestamp},
                "bins": {"expiration": expiration.bins, "number_of_delegated_bins": number_of_bins},
            }
        },
        "metadata": {"root": root_value},
        "timeout": 300,
    }))
}
