//! `/packages/{project}/{filename}` and `/packages/{project}/{hash}.{filename}`:
//! the distribution files, streamed from the content-addressed store, only
//! when (and as) the published metadata signs them. A wheel's PEP 658 core
//! metadata is served the same way as `{filename}.metadata` (its own target).

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio_util::io::ReaderStream;
use tufa_repository::Repository;
use tufa_repository::index::PublishedFile;

use super::{IndexState, internal, refuse};

fn not_found() -> Response {
    refuse(StatusCode::NOT_FOUND, "Not Found: no such file.")
}

pub(crate) async fn file(
    State(repo): State<Repository>,
    Extension(state): Extension<Arc<IndexState>>,
    Path((project, filename)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let index = match state.get(&repo).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let found: Option<PublishedFile> = match index.published_file(&project, &filename).await {
        Ok(Some(f)) => Some(f),
        Ok(None) => {
            // The consistent-snapshot name: `{hash}.{filename}` for a listed hash.
            match filename.split_once('.') {
                Some((hash, rest))
                    if hash.len() >= 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    match index.published_file(&project, rest).await {
                        Ok(Some(f)) if f.info.hashes.values().any(|h| h == hash) => Some(f),
                        Ok(_) => None,
                        Err(e) => return internal(&e),
                    }
                }
                _ => None,
            }
        }
        Err(e) => return internal(&e),
    };
    let Some(found) = found else {
        return not_found();
    };
    let sha256 = found.info.hashes.get("sha256").cloned().unwrap_or_default();
    let etag = format!("\"{sha256}\"");
    if headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let file = match tokio::fs::File::open(&found.path).await {
        Ok(f) => f,
        // Signed but not here: an artifact registered through the API for
        // files another index serves. Nothing to serve, and no fault of ours.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(path = %found.path.display(), "a signed file whose bytes this index does not hold was asked for");
            return refuse(
                StatusCode::NOT_FOUND,
                "Not Found: the file is signed, but this index does not hold its bytes \
                 (registered through the API, not uploaded).",
            );
        }
        Err(e) => {
            tracing::error!(path = %found.path.display(), error = %e, "a published file cannot be read");
            return internal(&e);
        }
    };
    let mut response = Body::from_stream(ReaderStream::new(file)).into_response();
    let h = response.headers_mut();
    h.insert(CONTENT_LENGTH, HeaderValue::from(found.info.length));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(ETAG, v);
    }
    response
}
