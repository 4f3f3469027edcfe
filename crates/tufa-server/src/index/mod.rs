//! The bundled package index: `/simple/` (PEP 503 HTML and PEP 691 JSON),
//! `/packages/{project}/{filename}` (also under `{hash}.{filename}`, the
//! consistent-snapshot name) and `/legacy/` (the upload API `twine upload`
//! speaks). Pages and files are served only as the bytes the published TUF
//! metadata signs.

// Handlers pass ready refusals (`Response`) up as errors.
#![allow(clippy::result_large_err)]

mod legacy;
mod packages;
mod simple;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use tokio::sync::OnceCell;
use tufa_repository::Repository;
use tufa_repository::index::{Index, IndexError};

/// The index's handle, opened on first use beside the repository's state.
#[derive(Debug, Default)]
pub(crate) struct IndexState {
    index: OnceCell<Index>,
}

impl IndexState {
    pub(crate) async fn get(&self, repo: &Repository) -> Result<&Index, Response> {
        self.index
            .get_or_try_init(|| async {
                Ok::<_, tufa_repository::Error>(Index::with_store(repo.store(), repo.data_dir()))
            })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "opening the index");
                refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error; see the service log.",
                )
            })
    }
}

pub fn routes() -> Router<Repository> {
    let state = Arc::new(IndexState::default());
    Router::new()
        .route("/simple", get(simple::redirect_root))
        .route("/simple/", get(simple::root))
        .route("/simple/{project}", get(simple::redirect_project))
        .route("/simple/{project}/", get(simple::project))
        .route("/simple/{project}/{file}", get(simple::page_file))
        .route("/packages/{project}/{filename}", get(packages::file))
        // Uploads are streamed to disk with their own size limit.
        .route(
            "/legacy",
            post(legacy::upload).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/legacy/",
            post(legacy::upload).layer(DefaultBodyLimit::disable()),
        )
        .layer(Extension(state))
}

/// A refusal: the status, `message` as the HTTP reason phrase (what
/// `twine upload` shows) and as the plain-text body.
pub(crate) fn refuse(status: StatusCode, message: &str) -> Response {
    let mut phrase: String = message
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(400)
        .collect();
    if phrase.trim().is_empty() {
        phrase = status.canonical_reason().unwrap_or("Error").to_string();
    }
    let mut response = (status, format!("{message}\n")).into_response();
    if let Ok(reason) = hyper::ext::ReasonPhrase::try_from(phrase) {
        response.extensions_mut().insert(reason);
    }
    response
}

pub(crate) fn index_error(e: IndexError) -> Response {
    match e {
        IndexError::Invalid(m) => refuse(StatusCode::BAD_REQUEST, &m),
        IndexError::Forbidden(m) => refuse(StatusCode::FORBIDDEN, &m),
        IndexError::NotFound(m) => refuse(StatusCode::NOT_FOUND, &m),
        IndexError::Repository(tufa_repository::Error::NotBootstrapped { state }) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("The repository is not bootstrapped yet (state: {state})."),
        ),
        IndexError::Repository(e) => internal(&e),
    }
}

pub(crate) fn internal(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "index: internal error");
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal error; see the service log.",
    )
}
