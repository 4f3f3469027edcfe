//! Role names as file and URL names.
//!
//! Delegated role names are chosen by whoever controls a delegating role and
//! may hold `/`, `..`, `?` or `#`. Like python-tuf (`quote(name, "")`),
//! everything but unreserved characters is percent-encoded, so a name can
//! never escape a directory or change the meaning of a URL.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters left as they are: RFC 3986 unreserved.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The role name percent-encoded. Always used with `.json` appended (and a
/// version prepended), so even `..` cannot become a path segment of its own.
pub fn encode(role: &str) -> String {
    utf8_percent_encode(role, ENCODE).to_string()
}

/// `{role}.json`, safely encoded.
pub fn file_name(role: &str) -> String {
    format!("{}.json", encode(role))
}

/// `{version}.{role}.json`, safely encoded: the consistent-snapshot name.
pub fn versioned_file_name(version: u64, role: &str) -> String {
    format!("{version}.{}.json", encode(role))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_everything_but_unreserved() {
        assert_eq!(encode("bins-0a1f"), "bins-0a1f");
        assert_eq!(encode("../x"), "..%2Fx");
        assert_eq!(encode("/x"), "%2Fx");
        assert_eq!(encode("a?b#c"), "a%3Fb%23c");
        assert_eq!(file_name(".."), "...json");
        assert_eq!(encode("é"), "%C3%A9");
        assert_eq!(versioned_file_name(3, "a/b"), "3.a%2Fb.json");
    }
}
