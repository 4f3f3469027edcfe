//! The PyPI mapping: which TUF target signs which piece of a Python package
//! index (PEP 458 section "pip mapping", with the path scheme of tufa's
//! bundled index, DESIGN.md section 3).
//!
//! - A project's page: the name normalised as PEP 503 says, then
//!   `simple/{name}/index.html` (PEP 503 HTML) or `simple/{name}/index.json`
//!   (PEP 691 JSON).
//! - A distribution file linked from a verified page:
//!   `packages/{name}/{filename}`, whatever host or path the link names.
//!
//! - A file's PEP 658 / 714 core metadata: the file's target with
//!   `.metadata` appended ([`metadata_target`]).
//!
//! [`rewrite_html`] and [`rewrite_json`] turn the file links of a verified
//! page into links through a proxy (`{prefix}/{name}/{filename}`), keeping
//! their `#sha256=` fragments, and report the files they link to.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// A project name as PEP 503 normalises it: lower case, each run of `-`,
/// `_` and `.` replaced by one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

/// Whether `name` is a plausible project name (PEP 508: letters, digits,
/// `-`, `_`, `.`), so it can stand in a target path with no escaping.
pub fn is_valid_project(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with(['-', '_', '.'])
        && !name.ends_with(['-', '_', '.'])
}

/// The format of a project page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFormat {
    /// PEP 503 HTML (`index.html`).
    Html,
    /// PEP 691 JSON (`index.json`).
    Json,
}

impl PageFormat {
    /// The media type the page is served with (PEP 691).
    pub fn content_type(self) -> &'static str {
        match self {
            PageFormat::Html => "application/vnd.pypi.simple.v1+html",
            PageFormat::Json => "application/vnd.pypi.simple.v1+json",
        }
    }
}

/// The target that signs a project's page: `simple/{normalised}/index.html`
/// or `.../index.json`.
pub fn index_target(project: &str, format: PageFormat) -> String {
    let file = match format {
        PageFormat::Html => "index.html",
        PageFormat::Json => "index.json",
    };
    format!("simple/{}/{file}", normalize(project))
}

/// The target that signs a distribution file of a project:
/// `packages/{normalised}/{filename}`.
pub fn file_target(project: &str, filename: &str) -> String {
    format!("packages/{}/{filename}", normalize(project))
}

/// The target that signs a file's PEP 658 core metadata:
/// `packages/{normalised}/{filename}.metadata`.
pub fn metadata_target(project: &str, filename: &str) -> String {
    format!("{}.metadata", file_target(project, filename))
}

/// Whether `filename` can be a distribution file name: one path segment,
/// no control characters, not `.` or `..`.
pub fn is_valid_filename(filename: &str) -> bool {
    !filename.is_empty()
        && filename != "."
        && filename != ".."
        && !filename.contains(['/', '\\'])
        && !filename.chars().any(char::is_control)
}

/// The file name a link points to: the last segment of its path,
/// percent-decoded, without query or fragment. `None` if there is none.
pub fn link_filename(href: &str) -> Option<String> {
    let end = href.find(['#', '?']).unwrap_or(href.len());
    let path = &href[..end];
    let last = path.rsplit('/').next()?;
    let name = percent_decode_str(last).decode_utf8().ok()?.into_owned();
    is_valid_filename(&name).then_some(name)
}

/// The fragment of a link (`sha256=...`), without the `#`.
fn link_fragment(href: &str) -> Option<&str> {
    href.split_once('#').map(|(_, f)| f)
}

/// Characters escaped in a file name put into a proxy URL path.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'&')
    .add(b'\'');

/// The link through the proxy for a file: `{prefix}/{project}/{filename}`,
/// with the original fragment.
fn proxied_link(prefix: &str, project: &str, filename: &str, fragment: Option<&str>) -> String {
    let mut out = format!(
        "{}/{}/{}",
        prefix.trim_end_matches('/'),
        normalize(project),
        utf8_percent_encode(filename, SEGMENT)
    );
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// PEP 658 / 714 attributes: the file's core metadata is at its URL with
/// `.metadata` appended, with this hash.
const METADATA_ATTRIBUTES: &[&str] = &["data-dist-info-metadata", "data-core-metadata"];

/// Rewrites every `<a href>` of a PEP 503 page to
/// `{prefix}/{project}/{filename}#{fragment}`, and returns the new page and
/// the linked file names. PEP 658 / 714 metadata attributes are kept on a
/// link only when `keep_metadata(filename)` says so (the proxy asks whether
/// the `.metadata` target is signed; installers fetch it when offered and
/// fail when it is missing, and read the metadata from the file otherwise).
pub fn rewrite_html(
    page: &str,
    project: &str,
    prefix: &str,
    keep_metadata: &mut dyn FnMut(&str) -> bool,
) -> (String, Vec<String>) {
    let mut out = String::with_capacity(page.len());
    let mut files = Vec::new();
    let mut rest = page;
    while let Some(start) = find_anchor(rest) {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.find('>') else {
            out.push_str(after);
            rest = "";
            break;
        };
        let tag = &after[..=end];
        out.push_str(&rewrite_anchor(
            tag,
            project,
            prefix,
            &mut files,
            keep_metadata,
        ));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    (out, files)
}

/// The byte offset of the next `<a` tag (case-insensitive, followed by
/// white space).
fn find_anchor(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(pos) = s[i..].find('<') {
        let at = i + pos;
        if bytes
            .get(at + 1)
            .is_some_and(|b| b.eq_ignore_ascii_case(&b'a'))
            && bytes.get(at + 2).is_some_and(u8::is_ascii_whitespace)
        {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// One `<a ...>` tag with its attributes rewritten.
fn rewrite_anchor(
    tag: &str,
    project: &str,
    prefix: &str,
    files: &mut Vec<String>,
    keep_metadata: &mut dyn FnMut(&str) -> bool,
) -> String {
    // Parse attributes: name, optional =value (quoted or not).
    let inner = tag[2..tag.len() - 1].trim_end_matches('/');
    let mut attrs: Vec<(String, Option<String>)> = Vec::new();
    let mut s = inner.trim_start();
    while !s.is_empty() {
        let name_end = s
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(s.len());
        let name = s[..name_end].to_string();
        s = s[name_end..].trim_start();
        let mut value = None;
        if let Some(v) = s.strip_prefix('=') {
            let v = v.trim_start();
            let (val, rest) = if let Some(q) = v.strip_prefix('"') {
                let e = q.find('"').unwrap_or(q.len());
                (&q[..e], q.get(e + 1..).unwrap_or(""))
            } else if let Some(q) = v.strip_prefix('\'') {
                let e = q.find('\'').unwrap_or(q.len());
                (&q[..e], q.get(e + 1..).unwrap_or(""))
            } else {
                let e = v.find(char::is_whitespace).unwrap_or(v.len());
                (&v[..e], &v[e..])
            };
            value = Some(html_unescape(val));
            s = rest.trim_start();
        }
        if name.is_empty() {
            break;
        }
        attrs.push((name, value));
    }
    let linked = attrs
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("href"))
        .and_then(|(_, v)| v.as_deref())
        .and_then(link_filename);
    let has_metadata = attrs
        .iter()
        .any(|(n, _)| METADATA_ATTRIBUTES.contains(&n.to_ascii_lowercase().as_str()));
    let keep = has_metadata && linked.as_deref().is_some_and(&mut *keep_metadata);
    let mut out = String::from("<a");
    for (name, value) in attrs {
        let lower = name.to_ascii_lowercase();
        if !keep && METADATA_ATTRIBUTES.contains(&lower.as_str()) {
            continue;
        }
        let value = match (lower.as_str(), value) {
            ("href", Some(href)) => Some(match link_filename(&href) {
                Some(file) => {
                    let link = proxied_link(prefix, project, &file, link_fragment(&href));
                    files.push(file);
                    link
                }
                // Not a file link: point it nowhere rather than around the proxy.
                None => "#".to_string(),
            }),
            (_, v) => v,
        };
        out.push(' ');
        out.push_str(&name);
        if let Some(v) = value {
            out.push_str("=\"");
            out.push_str(&html_escape(&v));
            out.push('"');
        }
    }
    out.push('>');
    out
}

/// Rewrites the `files[].url` of a PEP 691 JSON page to
/// `{prefix}/{project}/{filename}#{fragment}` (keeping PEP 658 / 714
/// metadata keys only where `keep_metadata(filename)`, as
/// [`rewrite_html`]) and returns the new page and the linked file names.
pub fn rewrite_json(
    page: &[u8],
    project: &str,
    prefix: &str,
    keep_metadata: &mut dyn FnMut(&str) -> bool,
) -> Result<(Vec<u8>, Vec<String>), String> {
    let mut doc: serde_json::Value =
        serde_json::from_slice(page).map_err(|e| format!("not a PEP 691 JSON page: {e}"))?;
    let mut names = Vec::new();
    if let Some(files) = doc.get_mut("files").and_then(|f| f.as_array_mut()) {
        for file in files {
            let Some(obj) = file.as_object_mut() else {
                continue;
            };
            obj.remove("data-dist-info-metadata");
            let url = obj
                .get("url")
                .and_then(|u| u.as_str())
                .unwrap_or("")
                .to_string();
            let url = url.as_str();
            let filename = obj
                .get("filename")
                .and_then(|f| f.as_str())
                .map(str::to_string)
                .filter(|f| is_valid_filename(f))
                .or_else(|| link_filename(url));
            let offered = ["core-metadata", "dist-info-metadata"]
                .iter()
                .any(|k| obj.get(*k).is_some_and(|v| v.is_object() || v == true));
            if !(offered && filename.as_deref().is_some_and(&mut *keep_metadata)) {
                obj.remove("dist-info-metadata");
                obj.remove("core-metadata");
            }
            let new = match filename {
                Some(f) => {
                    let link = proxied_link(prefix, project, &f, link_fragment(url));
                    names.push(f);
                    link
                }
                None => "#".to_string(),
            };
            obj.insert("url".into(), serde_json::Value::String(new));
        }
    }
    let bytes = serde_json::to_vec(&doc).map_err(|e| e.to_string())?;
    Ok((bytes, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_as_pep_503() {
        assert_eq!(normalize("Friendly-Bard"), "friendly-bard");
        assert_eq!(normalize("FRIENDLY-BARD"), "friendly-bard");
        assert_eq!(normalize("friendly.bard"), "friendly-bard");
        assert_eq!(normalize("friendly_bard"), "friendly-bard");
        assert_eq!(normalize("friendly--bard"), "friendly-bard");
        assert_eq!(normalize("FrIeNdLy-._.-bArD"), "friendly-bard");
        assert!(is_valid_project("Friendly.Bard_2"));
        assert!(!is_valid_project("../etc"));
        assert!(!is_valid_project("a/b"));
        assert!(!is_valid_project(""));
    }

    #[test]
    fn target_names() {
        assert_eq!(
            index_target("Django_REST", PageFormat::Html),
            "simple/django-rest/index.html"
        );
        assert_eq!(
            index_target("Django_REST", PageFormat::Json),
            "simple/django-rest/index.json"
        );
        assert_eq!(
            file_target("Django_REST", "Django_REST-1.0-py3-none-any.whl"),
            "packages/django-rest/Django_REST-1.0-py3-none-any.whl"
        );
    }

    #[test]
    fn link_filenames() {
        assert_eq!(
            link_filename("../../packages/demo/demo-1.0.tar.gz#sha256=ab").as_deref(),
            Some("demo-1.0.tar.gz")
        );
        assert_eq!(
            link_filename("https://files.example/xx/yy/demo%2B1-1.0.whl?x=1").as_deref(),
            Some("demo+1-1.0.whl")
        );
        assert_eq!(link_filename("https://files.example/"), None);
        assert_eq!(link_filename("../x/.."), None);
    }

    #[test]
    fn rewrites_html_links_through_the_proxy() {
        let page = "<!DOCTYPE html><html><body>\n\
            <a href=\"../../packages/demo/demo-1.0-py3-none-any.whl#sha256=abc\" data-requires-python=\"&gt;=3.8\" data-dist-info-metadata=\"sha256=def\">demo-1.0-py3-none-any.whl</a><br/>\n\
            <A HREF='https://files.example/a/b/demo-1.0.tar.gz'>demo-1.0.tar.gz</A>\n\
            <abbr>x</abbr></body></html>";
        let (out, files) = rewrite_html(page, "Demo", "/packages", &mut |_| false);
        assert_eq!(files, ["demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz"]);
        assert!(
            out.contains("<a href=\"/packages/demo/demo-1.0-py3-none-any.whl#sha256=abc\" data-requires-python=\"&gt;=3.8\">demo-1.0-py3-none-any.whl</a>"),
            "{out}"
        );
        assert!(
            out.contains("<a HREF=\"/packages/demo/demo-1.0.tar.gz\">demo-1.0.tar.gz</A>"),
            "{out}"
        );
        assert!(out.contains("<abbr>x</abbr>"));
        assert!(!out.contains("files.example"));
        assert!(!out.contains("dist-info-metadata"));
    }

    #[test]
    fn rewrites_json_links_through_the_proxy() {
        let page = br#"{"meta":{"api-version":"1.0"},"name":"demo","files":[
            {"filename":"demo-1.0.tar.gz","url":"https://files.example/x/demo-1.0.tar.gz#sha256=aa","hashes":{"sha256":"aa"},"core-metadata":{"sha256":"bb"}}]}"#;
        let (out, files) = rewrite_json(page, "demo", "/packages", &mut |_| false).expect("json");
        assert_eq!(files, ["demo-1.0.tar.gz"]);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(
            v["files"][0]["url"],
            "/packages/demo/demo-1.0.tar.gz#sha256=aa"
        );
        assert!(v["files"][0].get("core-metadata").is_none());
        assert_eq!(v["files"][0]["hashes"]["sha256"], "aa");
    }

    #[test]
    fn keeps_core_metadata_only_where_signed() {
        let page = "<a data-core-metadata=\"sha256=aa\" href=\"../../packages/demo/demo-1.0-py3-none-any.whl#sha256=ab\" data-dist-info-metadata=\"sha256=aa\">w</a>\n\
            <a href=\"../../packages/demo/demo-2.0-py3-none-any.whl\" data-core-metadata=\"sha256=cc\">v</a>";
        let mut asked = Vec::new();
        let (out, _) = rewrite_html(page, "demo", "/packages", &mut |f| {
            asked.push(f.to_string());
            f.starts_with("demo-1.0")
        });
        assert_eq!(
            asked,
            ["demo-1.0-py3-none-any.whl", "demo-2.0-py3-none-any.whl"]
        );
        assert!(
            out.contains("<a data-core-metadata=\"sha256=aa\" href=\"/packages/demo/demo-1.0-py3-none-any.whl#sha256=ab\" data-dist-info-metadata=\"sha256=aa\">"),
            "{out}"
        );
        assert!(
            out.contains("<a href=\"/packages/demo/demo-2.0-py3-none-any.whl\">v</a>"),
            "{out}"
        );
        let page = br#"{"files":[
            {"filename":"a-1.0-py3-none-any.whl","url":"x/a-1.0-py3-none-any.whl","core-metadata":{"sha256":"bb"},"dist-info-metadata":{"sha256":"bb"}},
            {"filename":"a-2.0-py3-none-any.whl","url":"x/a-2.0-py3-none-any.whl","core-metadata":{"sha256":"cc"}},
            {"filename":"a-3.0.tar.gz","url":"x/a-3.0.tar.gz","core-metadata":false}]}"#;
        let (out, _) = rewrite_json(page, "a", "/packages", &mut |f| {
            f != "a-2.0-py3-none-any.whl"
        })
        .expect("json");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["files"][0]["core-metadata"]["sha256"], "bb");
        assert_eq!(v["files"][0]["dist-info-metadata"]["sha256"], "bb");
        assert!(v["files"][1].get("core-metadata").is_none());
        assert!(v["files"][2].get("core-metadata").is_none());
    }
}
