//! API errors: always a status code and a JSON body that says what was wrong,
//! in RSTUF's `{"detail": {"message", "error"}}` shape. Internal errors are
//! logged in full and answered without internals.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tufa_repository::Error;

/// An error answered to an API client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub error: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: &str, error: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.to_string(),
            error: error.into(),
            field: None,
        }
    }

    pub fn bad_json(e: &serde_json::Error) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "Invalid request.",
            format!("body is not valid JSON: {e}"),
        )
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidRequest { field, reason } => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: "Invalid request.".into(),
                error: format!("{field}: {reason}"),
                field: Some(field),
            },
            Error::NotBootstrapped { state } => ApiError::new(
                StatusCode::NOT_FOUND,
                "Task not accepted.",
                format!("It requires bootstrap finished. State: {state}"),
            ),
            Error::AlreadyBootstrapped { task_id } => ApiError::new(
                StatusCode::CONFLICT,
                "Task not accepted.",
                format!("System already has a Metadata. (bootstrap task {task_id})"),
            ),
            Error::OnlineKey(reason) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Task not accepted.",
                reason,
            ),
            other if other.is_unavailable() => {
                tracing::warn!(error = %other, "state store or storage unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service unavailable.",
                    "the state store or metadata storage is unreachable for now; retry shortly",
                )
            }
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error.",
                    "the service failed; see its log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut detail = json!({"message": self.message, "error": self.error});
        if let Some(field) = self.field {
            detail["field"] = field.into();
        }
        let mut response = (self.status, Json(json!({ "detail": detail }))).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // An outage of the state store or storage: clients may retry soon.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("2"),
            );
        }
        response
    }
}
