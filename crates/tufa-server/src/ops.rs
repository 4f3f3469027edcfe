//! `/healthz` and `/metrics`.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tufa_repository::Repository;

use crate::error::ApiError;

pub fn routes() -> Router<Repository> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

async fn healthz(State(repo): State<Repository>) -> Result<Response, ApiError> {
    let bootstrap = repo.bootstrap_state().await?;
    let (last, error) = repo.publisher_status().await;
    // Who publishes (any process: with `tufa worker`s it is not this one).
    let (epoch, holder, since) = repo.store().publisher_holder().await?;
    // Not `counts()`: that also scans every artifact, too much for a probe.
    let pending = repo.store().pending_count().await?;
    // pep480: targets and claimed are offline; only their key holders can
    // re-sign them, so say so well before they expire (still 200: serving works).
    let offline_expiring: Vec<_> = repo
        .offline_roles_expiring()
        .await?
        .into_iter()
        .map(|(role, version, expires)| {
            json!({"role": role, "version": version, "expires": expires.to_string()})
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut body = json!({
        "status": if error.is_some() { "degraded" } else if !offline_expiring.is_empty() { "warning" } else { "ok" },
        "bootstrap": bootstrap.map(|b| b.rstuf_value()),
        "publisher_error": error,
        "publisher": {
            "holder": holder,
            "epoch": epoch,
            "since": tufa_metadata::UtcTime::from_unix(since).to_string(),
        },
        "artifacts_pending": pending,
        "last_publication": last.map(|p| json!({
            "snapshot_version": p.snapshot_version,
            "bins_signed": p.bins_signed,
            "artifact_changes": p.artifact_changes,
            "millis": p.millis as u64,
        })),
    });
    if !offline_expiring.is_empty() {
        body["offline_roles_expiring"] = json!(offline_expiring);
    }
    Ok((status, Json(body)).into_response())
}

async fn metrics(State(repo): State<Repository>) -> Result<Response, ApiError> {
    let counts = repo.store().counts().await?;
    let (last, error) = repo.publisher_status().await;
    let mut out = String::new();
    for (name, value) in &counts {
        let _ = writeln!(out, "# TYPE tufa_{name} gauge\ntufa_{name} {value}");
    }
    if let Some(p) = last {
        let _ = writeln!(
            out,
            "# TYPE tufa_snapshot_version gauge\ntufa_snapshot_version {}",
            p.snapshot_version
        );
        let _ = writeln!(
            out,
            "# TYPE tufa_last_publication_seconds gauge\ntufa_last_publication_seconds {}",
            p.millis as f64 / 1000.0
        );
        let _ = writeln!(
            out,
            "# TYPE tufa_last_publication_bins gauge\ntufa_last_publication_bins {}",
            p.bins_signed
        );
    }
    let (epoch, _, _) = repo.store().publisher_holder().await?;
    let _ = writeln!(
        out,
        "# TYPE tufa_publisher_epoch counter\ntufa_publisher_epoch {epoch}"
    );
    let _ = writeln!(
        out,
        "# TYPE tufa_publisher_failing gauge\ntufa_publisher_failing {}",
        u8::from(error.is_some())
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
