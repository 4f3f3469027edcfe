//! tufa's HTTP service.
//!
//! - `/api/v1/...`: the RSTUF v1 API, same paths, payloads, status codes and
//!   task states, so the `rstuf` CLI and Warehouse's RSTUF integration work
//!   unchanged; additions (`GET /api/v1/tasks`) sit beside it.
//! - `/metadata/{file}`: the published TUF metadata, compressed on request.
//! - `/healthz` and `/metrics` (Prometheus text format).

mod api;
mod error;
mod index;
mod metadata;
mod ops;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tufa_repository::Repository;

pub use error::ApiError;

/// The largest request body accepted (a 10,000-artifact request is about 3 MB).
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The whole service as one router.
pub fn router(repository: Repository) -> Router {
    Router::new()
        .merge(api::routes())
        .merge(metadata::routes())
        .merge(ops::routes())
        .merge(index::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CompressionLayer::new().compress_when(compress_when()))
        .with_state(repository)
}

/// What the compression layer gzips (for clients that ask): metadata, API
/// answers and index pages, but not distribution files and other
/// `application/octet-stream` bodies. Those are compressed archives already,
/// and served as they are they keep their `Content-Length` and a strong
/// `ETag` that names exactly the bytes sent (a gzipped response has no
/// `Content-Length`, as HTTP requires when the length is not known ahead).
fn compress_when() -> impl Predicate {
    DefaultPredicate::new().and(NotForContentType::const_new("application/octet-stream"))
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    repository: Repository,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(repository))
        .with_graceful_shutdown(shutdown)
        .await
}
