//! `/simple/` and `/simple/{project}/`: PEP 503 HTML and PEP 691 JSON, by
//! content negotiation (`Accept` with q-values, or `?format=`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE, ETAG, LOCATION, VARY};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tufa_repository::Repository;
use tufa_repository::index::{normalize_name, valid_project_name};

use super::{IndexState, internal, refuse};

pub(crate) const JSON_V1: &str = "application/vnd.pypi.simple.v1+json";
pub(crate) const HTML_V1: &str = "application/vnd.pypi.simple.v1+html";
pub(crate) const TEXT_HTML: &str = "text/html";

/// The representation chosen for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    HtmlV1,
    TextHtml,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Json => JSON_V1,
            Format::HtmlV1 => HTML_V1,
            Format::TextHtml => "text/html; charset=utf-8",
        }
    }
}

/// PEP 691 content negotiation: the acceptable type with the highest
/// q-value, the first listed on a tie; HTML when nothing is asked for;
/// `None` when nothing offered is acceptable (406).
pub(crate) fn negotiate(accept: Option<&str>) -> Option<Format> {
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Some(Format::TextHtml);
    };
    let mut best: Option<(f32, Format)> = None;
    for entry in accept.split(',') {
        let mut parts = entry.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for param in parts {
            if let Some((k, v)) = param.split_once('=')
                && k.trim().eq_ignore_ascii_case("q")
            {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        let format = match media.as_str() {
            JSON_V1 | "application/vnd.pypi.simple.latest+json" => Format::Json,
            HTML_V1 | "application/vnd.pypi.simple.latest+html" => Format::HtmlV1,
            TEXT_HTML | "text/*" | "*/*" => Format::TextHtml,
            _ => continue,
        };
        if q <= 0.0 {
            continue;
        }
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, format));
        }
    }
    best.map(|(_, f)| f)
}

fn chosen(headers: &HeaderMap, query: &HashMap<String, String>) -> Result<Format, Response> {
    let accept = match query.get("format") {
        Some(f) => Some(f.as_str()),
        None => headers.get(ACCEPT).and_then(|v| v.to_str().ok()),
    };
    negotiate(accept).ok_or_else(|| {
        refuse(
            StatusCode::NOT_ACCEPTABLE,
            &format!("Not Acceptable: this index serves {JSON_V1}, {HTML_V1} and {TEXT_HTML}."),
        )
    })
}

fn page(format: Format, body: Vec<u8>, etag: Option<String>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert(VARY, HeaderValue::from_static("Accept"));
    if let Some(etag) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        h.insert(ETAG, etag);
    }
    response
}

fn redirect(to: &str, query: &HashMap<String, String>) -> Response {
    let mut location = to.to_string();
    if let Some(f) = query.get("format") {
        let enc: String = f
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~/+".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        location.push_str(&format!("?format={enc}"));
    }
    let mut response = StatusCode::MOVED_PERMANENTLY.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, v);
    }
    response
}

pub(crate) async fn redirect_root(Query(query): Query<HashMap<String, String>>) -> Response {
    redirect("/simple/", &query)
}

pub(crate) async fn redirect_project(
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    redirect(&format!("/simple/{}/", normalize_name(&project)), &query)
}

/// `/simple/`: every project with a published page.
pub(crate) async fn root(
    State(repo): State<Repository>,
    Extension(state): Extension<Arc<IndexState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let format = match chosen(&headers, &query) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let index = match state.get(&repo).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let projects = match index.published_projects().await {
        Ok(p) => p,
        Err(e) => return internal(&e),
    };
    let body = match format {
        Format::Json => {
            let list: Vec<_> = projects.iter().map(|p| json!({"name": p})).collect();
            let mut b =
                serde_json::to_vec(&json!({"meta": {"api-version": "1.1"}, "projects": list}))
                    .unwrap_or_default();
            b.push(b'\n');
            b
        }
        _ => {
            let mut s = String::from(
                "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.1\">\n    <title>Simple index</title>\n  </head>\n  <body>\n",
            );
            for p in &projects {
                s.push_str(&format!("    <a href=\"{p}/\">{p}</a><br/>\n"));
            }
            s.push_str("  </body>\n</html>\n");
            s.into_bytes()
        }
    };
    page(format, body, None)
}

/// `/simple/{project}/`: the published page, redirected to the
/// normalised name first.
pub(crate) async fn project(
    State(repo): State<Repository>,
    Extension(state): Extension<Arc<IndexState>>,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !valid_project_name(&project) {
        return refuse(StatusCode::NOT_FOUND, "Not Found: no such project.");
    }
    let normal = normalize_name(&project);
    if normal != project {
        return redirect(&format!("/simple/{normal}/"), &query);
    }
    let format = match chosen(&headers, &query) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let index = match state.get(&repo).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let name = if format == Format::Json {
        "index.json"
    } else {
        "index.html"
    };
    match index.published_page(&normal, name).await {
        Ok(Some(body)) => {
            // Weak: the compression layer may send these bytes gzipped under
            // the same tag (If-None-Match compares weakly anyway).
            let tag = hex::encode(tufa_metadata::HashAlgorithm::Sha256.digest(&body));
            let etag = format!("W/\"{tag}\"");
            if headers
                .get(axum::http::header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| {
                    v.split(',').any(|t| {
                        let t = t.trim();
                        t == "*" || t.strip_prefix("W/").unwrap_or(t) == format!("\"{tag}\"")
                    })
                })
            {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            page(format, body, Some(etag))
        }
        Ok(None) => refuse(StatusCode::NOT_FOUND, "Not Found: no such project."),
        Err(e) => internal(&e),
    }
}

/// `/simple/{project}/index.html|index.json`, and `{hash}.index.html|json`
/// (the consistent-snapshot names a TUF client asks for): the target files
/// themselves, by name rather than by negotiation.
pub(crate) async fn page_file(
    State(repo): State<Repository>,
    Extension(state): Extension<Arc<IndexState>>,
    Path((project, file)): Path<(String, String)>,
) -> Response {
    let (hash, name) = match file
        .rsplit_once('.')
        .and_then(|(stem, _)| stem.rsplit_once('.'))
    {
        Some((hash, _)) => (Some(hash), &file[hash.len() + 1..]),
        None => (None, file.as_str()),
    };
    let format = match name {
        "index.html" => Format::TextHtml,
        "index.json" => Format::Json,
        _ => return refuse(StatusCode::NOT_FOUND, "Not Found."),
    };
    let index = match state.get(&repo).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    match index.published_page(&project, name).await {
        Ok(Some(body)) => {
            if let Some(hash) = hash {
                let matches = [
                    tufa_metadata::HashAlgorithm::Sha256,
                    tufa_metadata::HashAlgorithm::Blake2b256,
                ]
                .iter()
                .any(|a| hex::encode(a.digest(&body)) == hash);
                if !matches {
                    return refuse(StatusCode::NOT_FOUND, "Not Found: not the published page.");
                }
            }
            page(format, body, None)
        }
        Ok(None) => refuse(StatusCode::NOT_FOUND, "Not Found: no such project."),
        Err(e) => internal(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_pep_691() {
        assert_eq!(negotiate(None), Some(Format::TextHtml));
        assert_eq!(
            negotiate(Some(
                "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
            )),
            Some(Format::Json)
        );
        assert_eq!(
            negotiate(Some(
                "application/vnd.pypi.simple.v1+json; q=0.2, application/vnd.pypi.simple.v1+html"
            )),
            Some(Format::HtmlV1)
        );
        assert_eq!(negotiate(Some("text/html")), Some(Format::TextHtml));
        assert_eq!(negotiate(Some("*/*")), Some(Format::TextHtml));
        assert_eq!(negotiate(Some("application/json")), None);
        assert_eq!(
            negotiate(Some(
                "application/vnd.pypi.simple.v1+json;q=0, text/html;q=0.5"
            )),
            Some(Format::TextHtml)
        );
    }
}
