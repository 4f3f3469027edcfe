//! `/metadata/{file}`: the published metadata, straight from storage.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tufa_repository::Repository;
use tufa_repository::storage::DirectoryStorage;

use crate::error::ApiError;

pub fn routes() -> Router<Repository> {
    Router::new().route("/metadata/{file}", get(get_metadata))
}

async fn get_metadata(
    State(repo): State<Repository>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "Not found.",
            format!("no metadata file {file:?}"),
        )
    };
    if !DirectoryStorage::is_metadata_name(&file) {
        return Err(not_found());
    }
    let bytes = repo
        .storage()
        .read(&file)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(not_found)?;
    // timestamp.json changes in place; every other file is written once.
    let cache = if file == "timestamp.json" {
        "no-cache"
    } else {
        "public, max-age=31536000, immutable"
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(response)
}
