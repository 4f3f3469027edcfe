//! Which roles are trusted for a target path, and the pre-order delegation
//! walk that finds a target, as pure logic both the client and the
//! repository use. Loading and verifying a role is the caller's job, through
//! [`RoleLoader`].

use std::collections::BTreeSet;

use crate::error::Error;
use crate::hash::HashAlgorithm;
use crate::metadata::{DelegatedRole, Delegations, TargetFile, Targets};

/// The most roles one lookup visits, as python-tuf's `max_delegations`.
pub const MAX_DELEGATIONS: usize = 32;

/// A child role a delegator trusts for a path, with what verifying it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildRole {
    pub name: String,
    pub terminating: bool,
}

/// `fnmatch.fnmatchcase` on one path segment: `*`, `?`, `[seq]`, `[!seq]`;
/// an unclosed `[` is a literal. No character is special across segments,
/// because [`matches_path_pattern`] splits on `/` first.
pub fn fnmatch(name: &str, pattern: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    glob(&name, &pattern)
}

fn glob(name: &[char], pattern: &[char]) -> bool {
    // Iterative wildcard matching with backtracking to the last `*`.
    let (mut n, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() {
            match pattern[p] {
                '*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                '?' => {
                    n += 1;
                    p += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = char_class(&pattern[p..], name[n]) {
                        if matched {
                            n += 1;
                            p += next;
                            continue;
                        }
                    } else if name[n] == '[' {
                        n += 1;
                        p += 1;
                        continue;
                    }
                }
                c if c == name[n] => {
                    n += 1;
                    p += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                p = sp + 1;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class starting at `pattern[0] == '['`. Returns
/// whether it matched and the class's length, or `None` when the class is
/// unclosed (then `[` is literal), following Python's `fnmatch.translate`.
fn char_class(pattern: &[char], c: char) -> Option<(bool, usize)> {
    let mut j = 1;
    let negate = pattern.get(j) == Some(&'!');
    if negate {
        j += 1;
    }
    let body_start = j;
    if pattern.get(j) == Some(&']') {
        j += 1;
    }
    while j < pattern.len() && pattern[j] != ']' {
        j += 1;
    }
    if j >= pattern.len() {
        return None;
    }
    let body = &pattern[body_start..j];
    let mut matched = false;
    let mut i = 0;
    while i < body.len() {
        if i + 2 < body.len() && body[i + 1] == '-' {
            if body[i] <= c && c <= body[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if body[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    Some((matched != negate, j + 1))
}

/// python-tuf's `_is_target_in_pathpattern`: the same number of `/`
/// segments, each matching with [`fnmatch`].
pub fn matches_path_pattern(target_path: &str, pattern: &str) -> bool {
    let targets = target_path.split('/');
    let patterns = pattern.split('/');
    if targets.clone().count() != patterns.clone().count() {
        return false;
    }
    targets.zip(patterns).all(|(t, p)| fnmatch(t, p))
}

impl DelegatedRole {
    /// Whether this role is trusted for `target_path` (`paths` or `path_hash_prefixes`).
    pub fn is_delegated_path(&self, target_path: &str) -> bool {
        if let Some(prefixes) = &self.path_hash_prefixes {
            let digest = hex::encode(HashAlgorithm::Sha256.digest(target_path.as_bytes()));
            prefixes.iter().any(|p| digest.starts_with(p.as_str()))
        } else if let Some(paths) = &self.paths {
            paths.iter().any(|p| matches_path_pattern(target_path, p))
        } else {
            false
        }
    }
}

impl Delegations {
    /// The child roles trusted for `target_path`, in delegation order, stopping
    /// after the first terminating one. A succinct delegation yields exactly
    /// one bin, which is terminating.
    pub fn roles_for_target(&self, target_path: &str) -> Vec<ChildRole> {
        if let Some(succinct) = &self.succinct_roles {
            return vec![ChildRole {
                name: succinct.role_for_target(target_path),
                terminating: true,
            }];
        }
        let mut out = Vec::new();
        for role in self.roles.iter().flatten() {
            if role.is_delegated_path(target_path) {
                out.push(ChildRole {
                    name: role.name.clone(),
                    terminating: role.terminating,
                });
                if role.terminating {
                    break;
                }
            }
        }
        out
    }
}

/// Loads and verifies a delegated role for the walk.
pub trait RoleLoader {
    /// Returns the verified `signed` part of `role`, delegated by `delegator`
    /// (whose verified metadata is `parent`).
    fn load(&mut self, role: &str, delegator: &str, parent: &Targets) -> Result<Targets, Error>;
}

/// The result of a successful lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundTarget {
    /// The role that signs the target.
    pub role: String,
    pub file: TargetFile,
}

/// Finds `target_path` with the specification's pre-order depth-first walk
/// from `top` (the verified top-level targets): visited roles are skipped, at
/// most `max_roles` are visited, and a matching terminating role ends the
/// search beneath it and among its siblings.
pub fn find_target(
    top: &Targets,
    target_path: &str,
    max_roles: usize,
    loader: &mut dyn RoleLoader,
) -> Result<Option<FoundTarget>, Error> {
    // Stack of (role name, delegator name); the top-level targets is loaded.
    let mut stack: Vec<(String, Option<String>)> = vec![("targets".to_string(), None)];
    let mut visited = BTreeSet::new();
    let mut loaded: std::collections::BTreeMap<String, Targets> = std::collections::BTreeMap::new();
    loaded.insert("targets".into(), top.clone());
    while let Some((role, delegator)) = stack.pop() {
        if visited.len() >= max_roles {
            break;
        }
        if !visited.insert(role.clone()) {
            continue;
        }
        let signed = match &delegator {
            None => top.clone(),
            Some(parent_name) => {
                let parent = loaded
                    .get(parent_name)
                    .ok_or_else(|| Error::malformed(parent_name.as_str(), "delegator not loaded"))?
                    .clone();
                loader.load(&role, parent_name, &parent)?
            }
        };
        if let Some(file) = signed.targets.get(target_path) {
            return Ok(Some(FoundTarget {
                role,
                file: file.clone(),
            }));
        }
        if let Some(delegations) = &signed.delegations {
            let children = delegations.roles_for_target(target_path);
            if children.last().is_some_and(|c| c.terminating) {
                // A terminating match: nothing outside this subtree is searched.
                stack.clear();
            }
            for child in children.into_iter().rev() {
                stack.push((child.name, Some(role.clone())));
            }
        }
        loaded.insert(role, signed);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_like_python() {
        let cases = [
            ("file.txt", "*.txt", true),
            ("file.txt", "*.tx", false),
            ("a", "?", true),
            ("ab", "?", false),
            ("b", "[abc]", true),
            ("d", "[abc]", false),
            ("d", "[!abc]", true),
            ("]", "[]]", true),
            ("[", "[", true),
            ("[x", "[x", true),
            ("c", "[a-c]", true),
            ("-", "[a-]", true),
            ("", "*", true),
            ("abc", "a*b*c", true),
            ("abcbd", "a*b*d", true),
            ("ABC", "abc", false),
            ("x", "[z-a]", false),
        ];
        for (name, pattern, want) in cases {
            assert_eq!(fnmatch(name, pattern), want, "{name} ~ {pattern}");
        }
    }

    #[test]
    fn path_patterns_match_per_segment() {
        assert!(matches_path_pattern(
            "packages/foo/foo-1.0.tar.gz",
            "packages/*/*"
        ));
        assert!(!matches_path_pattern("packages/foo/bar/x", "packages/*/*"));
        assert!(!matches_path_pattern("packages/foo", "packages/*/*"));
        assert!(matches_path_pattern("a/b", "*/b"));
        assert!(!matches_path_pattern("a/b", "*"));
    }
}
