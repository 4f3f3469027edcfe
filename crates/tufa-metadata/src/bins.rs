//! TAP 15 succinct hash bins, named and assigned exactly as python-tuf's
//! `SuccinctRoles` does.

use crate::hash::HashAlgorithm;
use crate::metadata::SuccinctRoles;

impl SuccinctRoles {
    /// Number of bins, `2^bit_length`.
    pub fn number_of_bins(&self) -> u64 {
        1u64 << self.bit_length.min(32)
    }

    /// Hex digits in a bin suffix: the width of the largest bin number.
    pub fn suffix_len(&self) -> usize {
        format!("{:x}", self.number_of_bins() - 1).len()
    }

    /// The bin number a target path falls in: the first `bit_length` bits of
    /// sha256(path).
    pub fn bin_for_target(&self, target_path: &str) -> u64 {
        let digest = HashAlgorithm::Sha256.digest(target_path.as_bytes());
        let prefix = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        u64::from(prefix) >> (32 - self.bit_length.clamp(1, 32))
    }

    /// The name of bin `n`.
    pub fn bin_name(&self, n: u64) -> String {
        format!(
            "{}-{:0width$x}",
            self.name_prefix,
            n,
            width = self.suffix_len()
        )
    }

    /// The bin role responsible for a target path.
    pub fn role_for_target(&self, target_path: &str) -> String {
        self.bin_name(self.bin_for_target(target_path))
    }

    /// All bin names in order.
    pub fn role_names(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.number_of_bins()).map(|n| self.bin_name(n))
    }

    /// The bin number of a role name, if it is one of these bins.
    pub fn bin_number(&self, role_name: &str) -> Option<u64> {
        let suffix = role_name
            .strip_prefix(&self.name_prefix)?
            .strip_prefix('-')?;
        if suffix.len() != self.suffix_len() || !suffix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let n = u64::from_str_radix(suffix, 16).ok()?;
        (n < self.number_of_bins()).then_some(n)
    }

    /// True when `role_name` names one of these bins.
    pub fn is_delegated_role(&self, role_name: &str) -> bool {
        self.bin_number(role_name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn bins(bit_length: u32) -> SuccinctRoles {
        SuccinctRoles {
            keyids: vec![],
            threshold: 1,
            bit_length,
            name_prefix: "bins".into(),
            unrecognized: Map::new(),
        }
    }

    #[test]
    fn names_are_zero_padded_to_the_largest_bin() {
        let b = bins(14);
        assert_eq!(b.number_of_bins(), 16384);
        assert_eq!(b.bin_name(0), "bins-0000");
        assert_eq!(b.bin_name(16383), "bins-3fff");
        assert_eq!(bins(1).bin_name(1), "bins-1");
        assert_eq!(bins(5).bin_name(3), "bins-03");
        assert_eq!(bins(32).bin_name(1), "bins-00000001");
    }

    #[test]
    fn bin_for_target_uses_leading_bits_of_sha256() {
        // sha256("a") = ca978112...; the top 14 bits of 0xca978112 are 0x32a5.
        assert_eq!(bins(14).role_for_target("a"), "bins-32a5");
        assert_eq!(bins(32).role_for_target("a"), "bins-ca978112");
    }

    #[test]
    fn is_delegated_role_checks_prefix_width_and_range() {
        let b = bins(10);
        assert!(b.is_delegated_role("bins-3ff"));
        assert!(!b.is_delegated_role("bins-400"));
        assert!(!b.is_delegated_role("bins-03ff"));
        assert!(!b.is_delegated_role("bin-3ff"));
        assert!(!b.is_delegated_role("bins-xyz"));
    }
}
