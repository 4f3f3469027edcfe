//! Size limits for metadata, against endless-data attacks.
//!
//! Defaults are python-tuf's ngclient's, so a repository that python-tuf
//! clients accept is accepted here and nothing larger is read.

use std::io::Read;

/// Largest `root.json` read.
pub const ROOT_MAX_LENGTH: u64 = 512_000;
/// Largest `timestamp.json` read.
pub const TIMESTAMP_MAX_LENGTH: u64 = 16_384;
/// Largest `snapshot.json` read when timestamp lists no length.
pub const SNAPSHOT_MAX_LENGTH: u64 = 2_000_000;
/// Largest targets role read when snapshot lists no length.
pub const TARGETS_MAX_LENGTH: u64 = 5_000_000;

/// Reads at most `limit` bytes; more is an error, not a truncation.
pub fn read_bounded<R: Read>(reader: R, limit: u64) -> std::io::Result<Result<Vec<u8>, u64>> {
    let mut buf = Vec::new();
    reader.take(limit.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        Ok(Err(limit))
    } else {
        Ok(Ok(buf))
    }
}
