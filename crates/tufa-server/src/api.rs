//! The RSTUF v1 API.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tufa_repository::delegations::DelegationAction;
use tufa_repository::task::{Task, TaskState};
use tufa_repository::{Accepted, Repository};

use crate::error::ApiError;

pub fn routes() -> Router<Repository> {
    let mut router = Router::new();
    // RSTUF's paths, with and without the trailing slash FastAPI redirects.
    for (path, method) in [
        ("/api/v1/bootstrap", "bootstrap"),
        ("/api/v1/config", "config"),
        ("/api/v1/artifacts", "artifacts"),
        ("/api/v1/artifacts/delete", "delete"),
        ("/api/v1/artifacts/publish", "publish"),
        ("/api/v1/task", "task"),
        ("/api/v1/metadata", "metadata"),
        ("/api/v1/metadata/online", "online"),
        ("/api/v1/metadata/sign", "sign"),
        ("/api/v1/delegations", "delegations"),
        ("/api/v1/delegations/delete", "delegations_delete"),
        ("/api/v1/delegations/metadata", "delegations_metadata"),
        ("/api/v1/metadata/sign/delete", "sign_delete"),
        ("/api/v1/tasks", "tasks"),
    ] {
        for p in [path.to_string(), format!("{path}/")] {
            router = match method {
                "bootstrap" => router.route(&p, get(get_bootstrap).post(post_bootstrap)),
                "config" => router.route(&p, get(get_config).put(put_config)),
                "artifacts" => router.route(&p, post(post_artifacts)),
                "delete" => router.route(&p, post(post_artifacts_delete)),
                "publish" => router.route(&p, post(post_artifacts_publish)),
                "task" => router.route(&p, get(get_task)),
                "metadata" => router.route(&p, post(post_metadata)),
                "online" => router.route(&p, post(post_metadata_online)),
                "sign" => router.route(&p, get(get_metadata_sign).post(post_metadata_sign)),
                "sign_delete" => router.route(&p, post(post_metadata_sign_delete)),
                "delegations" => router.route(&p, post(post_delegations).put(put_delegations)),
                "delegations_delete" => router.route(&p, post(post_delegations_delete)),
                "delegations_metadata" => router.route(&p, post(post_delegations_metadata)),
                _ => router.route(&p, get(get_tasks)),
            };
        }
    }
    router
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_json(&e))
}

fn accepted(message: &str, a: Accepted) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "data": {"artifacts": a.artifacts, "task_id": a.task_id, "last_update": a.last_update.to_string()},
            "message": message,
        })),
    )
        .into_response()
}

async fn get_bootstrap(State(repo): State<Repository>) -> Result<Response, ApiError> {
    let state = repo.bootstrap_state().await?;
    let (done, message) = match &state {
        Some(s) if s.is_done() => (true, "System LOCKED for bootstrap."),
        Some(_) => (false, "System LOCKED for bootstrap."),
        None => (false, "System available for bootstrap."),
    };
    let id = state.as_ref().map(|s| s.task_id().to_string());
    let value = state.as_ref().map(|s| s.rstuf_value());
    Ok(
        Json(json!({"data": {"bootstrap": done, "state": value, "id": id}, "message": message}))
            .into_response(),
    )
}

async fn post_bootstrap(State(repo): State<Repository>, body: Bytes) -> Result<Response, ApiError> {
    let payload = parse_body(&body)?;
    let task_id = repo.bootstrap(&payload).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"data": {"task_id": task_id}, "message": "Bootstrap accepted."})),
    )
        .into_response())
}

async fn get_config(State(repo): State<Repository>) -> Result<Response, ApiError> {
    Ok(Json(json!({"data": repo.config().await?, "message": "Current Settings"})).into_response())
}

async fn post_artifacts(State(repo): State<Repository>, body: Bytes) -> Result<Response, ApiError> {
    let payload = parse_body(&body)?;
    let skip = payload.get("publish_artifacts") == Some(&Value::Bool(false));
    let a = repo.add_artifacts(&payload).await?;
    let message = if skip {
        "New Artifact(s) successfully submitted. Publishing will be skipped."
    } else {
        "New Artifact(s) successfully submitted."
    };
    Ok(accepted(message, a))
}

async fn post_artifacts_delete(
    State(repo): State<Repository>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let payload = parse_body(&body)?;
    let skip = payload.get("publish_artifacts") == Some(&Value::Bool(false));
    let a = repo.remove_artifacts(&payload).await?;
    let message = if skip {
        "Remove Artifact(s) successfully submitted. Publishing will be skipped."
    } else {
        "Remove Artifact(s) successfully submitted."
    };
    Ok(accepted(message, a))
}

async fn post_artifacts_publish(State(repo): State<Repository>) -> Result<Response, ApiError> {
    Ok(accepted(
        "Publish artifacts successfully submitted.",
        repo.publish_artifacts().await?,
    ))
}

async fn post_metadata(State(repo): State<Repository>, body: Bytes) -> Result<Response, ApiError> {
    let payload = parse_body(&body)?;
    let task_id = repo.update_root(&payload).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"data": {"task_id": task_id, "last_update": tufa_metadata::UtcTime::now().to_string()}, "message": "Metadata update accepted."})),
    )
        .into_response())
}

async fn post_metadata_online(
    State(repo): State<Repository>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let payload = if body.is_empty() {
        json!({})
    } else {
        parse_body(&body)?
    };
    let task_id = repo.force_online_update(&payload).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"data": {"task_id": task_id, "last_update": tufa_metadata::UtcTime::now().to_string()}, "message": "Force new online metadata update accepted."})),
    )
        .into_response())
}

async fn put_config(State(repo): State<Repository>, body: Bytes) -> Result<Response, ApiError> {
    let payload = parse_body(&body)?;
    let task_id = repo.update_config(&payload).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"data": {"task_id": task_id, "last_update": tufa_metadata::UtcTime::now().to_string()}, "message": "Settings successfully submitted."})),
    )
        .into_response())
}

async fn delegations(
    repo: &Repository,
    action: DelegationAction,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let payload = parse_body(body)?;
    match repo.delegations(action, &payload).await? {
        None => Err(delegations_unsupported().await),
        Some(task_id) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"data": {"task_id": task_id, "last_update": tufa_metadata::UtcTime::now().to_string()}, "message": "Metadata Delegation Accepted"})),
        )
            .into_response()),
    }
}

/// pep480: adds project roles under recently-claimed (RSTUF's payload).
async fn post_delegations(
    State(repo): State<Repository>,
    body: Bytes,
) -> Result<Response, ApiError> {
    delegations(&repo, DelegationAction::Add, &body).await
}

/// pep480: replaces project roles' keys (developer key rotation).
async fn put_delegations(
    State(repo): State<Repository>,
    body: Bytes,
) -> Result<Response, ApiError> {
    delegations(&repo, DelegationAction::Update, &body).await
}

async fn post_delegations_delete(
    State(repo): State<Repository>,
    body: Bytes,
) -> Result<Response, ApiError> {
    delegations(&repo, DelegationAction::Delete, &body).await
}

/// pep480 (a tufa extension): developer-signed project metadata.
async fn post_delegations_metadata(
    State(repo): State<Repository>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let payload = parse_body(&body)?;
    let task_id = repo.upload_project_metadata(&payload).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"data": {"task_id": task_id, "last_update": tufa_metadata::UtcTime::now().to_string()}, "message": "Project metadata accepted."})),
    )
        .into_response())
}

/// Custom delegations are RSTUF's alternative to hash bins; tufa's layouts
/// are bins (PEP 458) and, next, PEP 480's claimed/unclaimed roles.
async fn delegations_unsupported() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Task not accepted.",
        "delegations: custom delegations are not supported; this repository delegates to succinct hash bins",
    )
}

async fn get_metadata_sign(State(repo): State<Repository>) -> Result<Response, ApiError> {
    let metadata = repo.metadata_to_sign().await?;
    Ok(
        Json(
            json!({"data": {"metadata": metadata}, "message": "Metadata role(s) pending signing"}),
        )
        .into_response(),
    )
}

async fn post_metadata_sign(
    State(repo): State<Repository>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let payload = parse_body(&body)?;
    let task_id = repo.add_signature(&payload).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"data": {"task_id": task_id, "last_update": tufa_metadata::UtcTime::now().to_string()}, "message": "Metadata sign accepted."})),
    )
        .into_response())
}

async fn post_metadata_sign_delete(
    State(repo): State<Repository>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let payload = parse_body(&body)?;
    let task_id = repo.abort_signing(&payload).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"data": {"task_id": task_id, "last_update": tufa_metadata::UtcTime::now().to_string()}, "message": "Metadata sign delete accepted."})),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct TaskQuery {
    task_id: Option<String>,
}

/// A task as RSTUF reports it, serialized straight from the stored task
/// (its details are copied as stored, not parsed and rebuilt).
#[derive(Debug, Serialize)]
struct TaskView<'a> {
    task_id: &'a str,
    state: TaskState,
    result: TaskResult<'a>,
}

#[derive(Debug, Serialize)]
struct TaskResult<'a> {
    task: &'a str,
    status: Option<bool>,
    message: Option<&'a str>,
    error: Option<&'a str>,
    details: Option<&'a RawValue>,
    last_update: String,
}

fn task_view(task: &Task) -> TaskView<'_> {
    TaskView {
        task_id: &task.id,
        state: task.state,
        result: TaskResult {
            task: &task.kind,
            status: task.status,
            message: task.message.as_deref(),
            error: task.error.as_deref(),
            details: task.details.as_deref(),
            last_update: tufa_metadata::UtcTime::from_unix(task.updated).to_string(),
        },
    }
}

/// RSTUF's response envelope: `{"data": ..., "message": ...}`.
#[derive(Debug, Serialize)]
struct Envelope<T> {
    data: T,
    message: &'static str,
}

#[derive(Debug, Serialize)]
struct TaskList<'a> {
    tasks: Vec<TaskView<'a>>,
}

async fn get_task(
    State(repo): State<Repository>,
    Query(q): Query<TaskQuery>,
) -> Result<Response, ApiError> {
    let id = q.task_id.filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.",
            "task_id: is required",
        )
    })?;
    match repo.task(&id).await? {
        Some(task) => Ok(Json(Envelope {
            data: task_view(&task),
            message: "Task state.",
        })
        .into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "Task not found.",
            format!("no task with id {id:?}"),
        )),
    }
}

#[derive(Debug, Deserialize)]
struct TasksQuery {
    limit: Option<u32>,
    state: Option<String>,
}

async fn get_tasks(
    State(repo): State<Repository>,
    Query(q): Query<TasksQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(100).min(10_000);
    let tasks = repo.tasks(limit, q.state.as_deref()).await?;
    let tasks = TaskList {
        tasks: tasks.iter().map(task_view).collect(),
    };
    Ok(Json(Envelope {
        data: tasks,
        message: "Tasks.",
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The task shape RSTUF clients read, with the stored details as they were.
    #[test]
    fn a_task_serializes_as_rstuf_reports_it() {
        let task = Task {
            id: "abc".into(),
            kind: "add_artifacts".into(),
            state: TaskState::Success,
            status: Some(true),
            message: Some("Artifact(s) Added".into()),
            error: None,
            details: RawValue::from_string(
                r#"{"added_artifacts":["a/b"],"invalid_paths":[]}"#.into(),
            )
            .ok(),
            created: 0,
            updated: 0,
        };
        let text = serde_json::to_string(&Envelope {
            data: task_view(&task),
            message: "Task state.",
        })
        .expect("serializes");
        let value: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(
            value,
            json!({"data": {"task_id": "abc", "state": "SUCCESS", "result": {
                "task": "add_artifacts", "status": true, "message": "Artifact(s) Added",
                "error": null, "details": {"added_artifacts": ["a/b"], "invalid_paths": []},
                "last_update": "1970-01-01T00:00:00Z"}}, "message": "Task state."})
        );
    }
}
