//! `/legacy/`: the upload API `twine upload` speaks (multipart/form-data,
//! `:action=file_upload`), authenticated by HTTP Basic with `__token__` and
//! a user's API token. The file is streamed to a temporary file while it is
//! hashed, never held in memory; refusals are 4xx with the reason as the
//! HTTP reason phrase, which twine shows.

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use md5::Digest;
use tokio::io::AsyncWriteExt;
use tufa_metadata::HashAlgorithm;
use tufa_metadata::hash::MultiHasher;
use tufa_repository::Repository;
use tufa_repository::index::{
    CoreMetadata, Index, NewFile, check_filename, normalize_name, valid_project_name,
    wheel_metadata,
};

use super::{IndexState, index_error, internal, refuse};

/// The most text (all form fields but the file) an upload may carry.
const MAX_FIELDS_BYTES: usize = 16 * 1024 * 1024;
/// How long an upload waits for its publication before answering anyway.
const PUBLISH_WAIT: Duration = Duration::from_secs(30);

/// A temporary file removed unless kept.
struct Incoming {
    path: PathBuf,
    keep: bool,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

struct Received {
    incoming: Incoming,
    filename: String,
    size: u64,
    sha256: String,
    blake2b_256: String,
    md5: String,
}

enum ContentError {
    TooLarge,
    Response(Response),
}

fn token_from(headers: &HeaderMap) -> Result<String, Response> {
    let unauthorized = |msg: &str| {
        let mut r = refuse(StatusCode::UNAUTHORIZED, msg);
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"tufa\""),
        );
        r
    };
    let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Err(unauthorized(
            "Authentication required: upload with the username __token__ and your API token as the password.",
        ));
    };
    let decoded = value
        .strip_prefix("Basic ")
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok());
    let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return Err(unauthorized(
            "Invalid authentication: use HTTP Basic with the username __token__ and your API token as the password.",
        ));
    };
    if user != "__token__" {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "Invalid or non-existent authentication information: the username must be __token__ and the password an API token.",
        ));
    }
    Ok(password.to_string())
}

async fn read_text(field: &mut Field<'_>, budget: &mut usize) -> Result<String, Response> {
    let mut buf = Vec::new();
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                if chunk.len() > *budget {
                    return Err(refuse(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "Upload metadata too large.",
                    ));
                }
                *budget -= chunk.len();
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    &format!("Invalid form data: {e}"),
                ));
            }
        }
    }
    String::from_utf8(buf)
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, "Form fields must be UTF-8."))
}

async fn receive_content(
    field: &mut Field<'_>,
    dir: &FsPath,
    max: u64,
) -> Result<Received, ContentError> {
    let filename = field.file_name().unwrap_or("").to_string();
    let mut name = [0u8; 16];
    aws_lc_rs::rand::fill(&mut name)
        .map_err(|_| ContentError::Response(internal(&"no randomness")))?;
    let path = dir.join(format!("{}.part", hex::encode(name)));
    let incoming = Incoming { path, keep: false };
    let mut file = tokio::fs::File::create(&incoming.path)
        .await
        .map_err(|e| ContentError::Response(internal(&e)))?;
    let mut hasher = MultiHasher::new(&[HashAlgorithm::Sha256, HashAlgorithm::Blake2b256]);
    let mut md5 = md5::Md5::new();
    let mut size = 0u64;
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                size += chunk.len() as u64;
                if size > max {
                    return Err(ContentError::TooLarge);
                }
                hasher.update(&chunk);
                md5.update(&chunk);
                file.write_all(&chunk)
                    .await
                    .map_err(|e| ContentError::Response(internal(&e)))?;
            }
            Ok(None) => break,
            Err(e) => {
                return Err(ContentError::Response(refuse(
                    StatusCode::BAD_REQUEST,
                    &format!("Invalid form data: {e}"),
                )));
            }
        }
    }
    file.sync_all()
        .await
        .map_err(|e| ContentError::Response(internal(&e)))?;
    let (_, hashes) = hasher.finish();
    Ok(Received {
        incoming,
        filename,
        size,
        sha256: hashes.get("sha256").cloned().unwrap_or_default(),
        blake2b_256: hashes.get("blake2b-256").cloned().unwrap_or_default(),
        md5: hex::encode(md5.finalize()),
    })
}

/// Reads and discards the rest of a refused request, so the client reads
/// the answer instead of a reset connection.
async fn drain(multipart: &mut Multipart) {
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(_)) = field.chunk().await {}
    }
}

fn too_large(max: u64) -> Response {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("File too large. Limit for this index is {max} bytes."),
    )
}

pub(crate) async fn upload(
    State(repo): State<Repository>,
    Extension(state): Extension<Arc<IndexState>>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let token = match token_from(&headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let index = match state.get(&repo).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let user = match index.authenticate(&token).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            return refuse(
                StatusCode::FORBIDDEN,
                "Invalid or non-existent authentication information: unknown API token.",
            );
        }
        Err(e) => return internal(&e),
    };
    let mut multipart = match multipart {
        Ok(m) => m,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("Expected a multipart/form-data upload: {e}"),
            );
        }
    };
    let max = match index.max_upload_size().await {
        Ok(m) => m,
        Err(e) => return internal(&e),
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max.saturating_add(MAX_FIELDS_BYTES as u64)) {
        return too_large(max);
    }
    let incoming_dir = index.incoming_dir();
    if let Err(e) = tokio::fs::create_dir_all(&incoming_dir).await {
        return internal(&e);
    }
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut received: Option<Received> = None;
    let mut budget = MAX_FIELDS_BYTES;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return refuse(StatusCode::BAD_REQUEST, &format!("Invalid form data: {e}"));
            }
        };
        let name = field.name().unwrap_or("").to_string();
        if name == "content" {
            if received.is_some() {
                return refuse(StatusCode::BAD_REQUEST, "Upload one file per request.");
            }
            match receive_content(&mut field, &incoming_dir, max).await {
                Ok(r) => received = Some(r),
                Err(ContentError::TooLarge) => {
                    while let Ok(Some(_)) = field.chunk().await {}
                    drop(field);
                    drain(&mut multipart).await;
                    return too_large(max);
                }
                Err(ContentError::Response(r)) => return r,
            }
        } else {
            let text = match read_text(&mut field, &mut budget).await {
                Ok(t) => t,
                Err(r) => return r,
            };
            fields.entry(name).or_insert(text);
        }
    }
    let field = |k: &str| fields.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    match field(":action") {
        Some("file_upload") => {}
        Some(other) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("Unsupported :action {other:?}; only file_upload is."),
            );
        }
        None => return refuse(StatusCode::BAD_REQUEST, "Missing :action (file_upload)."),
    }
    let Some(name) = field("name") else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Missing the project name ('name').",
        );
    };
    if !valid_project_name(name) {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!("Invalid project name {name:?}: use ASCII letters, digits, '.', '_' and '-'."),
        );
    }
    let Some(version) = field("version") else {
        return refuse(StatusCode::BAD_REQUEST, "Missing the version ('version').");
    };
    if version.len() > 100
        || !version
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".+!-_".contains(&c))
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!("Invalid version {version:?}."),
        );
    }
    let Some(received) = received else {
        return refuse(StatusCode::BAD_REQUEST, "Missing the file ('content').");
    };
    if received.size == 0 {
        return refuse(StatusCode::BAD_REQUEST, "The uploaded file is empty.");
    }
    let kind = match check_filename(&received.filename, name, version) {
        Ok(k) => k,
        Err(m) => return refuse(StatusCode::BAD_REQUEST, &m),
    };
    if let Some(ft) = field("filetype")
        && ft != kind
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!(
                "filetype {ft:?} does not match the file {:?} ({kind}).",
                received.filename
            ),
        );
    }
    let digests = [
        ("sha256_digest", &received.sha256),
        ("blake2_256_digest", &received.blake2b_256),
        ("md5_digest", &received.md5),
    ];
    if digests.iter().all(|(k, _)| field(k).is_none()) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Include at least one message digest (sha256_digest, blake2_256_digest or md5_digest).",
        );
    }
    for (k, actual) in digests {
        if let Some(sent) = field(k)
            && !sent.eq_ignore_ascii_case(actual)
        {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!(
                    "The digest supplied does not match a digest calculated from the uploaded file ({k})."
                ),
            );
        }
    }
    // PEP 658: a wheel's METADATA, served and signed beside it.
    let metadata = if kind == "bdist_wheel" {
        let path = received.incoming.path.clone();
        let filename = received.filename.clone();
        match tokio::task::spawn_blocking(move || wheel_metadata(&path, &filename)).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => return index_error(e),
            Err(e) => return internal(&e),
        }
    } else {
        None
    };
    let new = NewFile {
        project: name.to_string(),
        version: version.to_string(),
        filename: received.filename.clone(),
        size: received.size,
        sha256: received.sha256.clone(),
        blake2b_256: received.blake2b_256.clone(),
        requires_python: field("requires_python").map(str::to_string),
        metadata: metadata.as_deref().map(CoreMetadata::of),
    };
    if let (Some(bytes), Some(m)) = (&metadata, &new.metadata)
        && let Err(r) = store_blob(index, &m.sha256, bytes).await
    {
        return r;
    }
    commit(&repo, index, &user, received, &new).await
}

/// Writes `bytes` into the content-addressed store (a temporary file,
/// synced, renamed into place) unless it is there already.
async fn store_blob(index: &Index, sha256: &str, bytes: &[u8]) -> Result<(), Response> {
    let blob = index.blob_path(sha256);
    if tokio::fs::try_exists(&blob).await.unwrap_or(false) {
        return Ok(());
    }
    let parent = blob.parent().ok_or_else(|| internal(&"blob path"))?;
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|e| internal(&e))?;
    let mut name = [0u8; 16];
    aws_lc_rs::rand::fill(&mut name).map_err(|_| internal(&"no randomness"))?;
    let incoming = Incoming {
        path: index
            .incoming_dir()
            .join(format!("{}.part", hex::encode(name))),
        keep: false,
    };
    let mut file = tokio::fs::File::create(&incoming.path)
        .await
        .map_err(|e| internal(&e))?;
    file.write_all(bytes).await.map_err(|e| internal(&e))?;
    file.sync_all().await.map_err(|e| internal(&e))?;
    tokio::fs::rename(&incoming.path, &blob)
        .await
        .map_err(|e| internal(&e))?;
    if let Ok(dir) = tokio::fs::File::open(parent).await {
        let _ = dir.sync_all().await;
    }
    Ok(())
}

async fn commit(
    repo: &Repository,
    index: &Index,
    user: &str,
    mut received: Received,
    new: &NewFile,
) -> Response {
    // Into the content-addressed store before the database names it.
    let blob = index.blob_path(&new.sha256);
    if let Some(parent) = blob.parent()
        && let Err(e) = tokio::fs::create_dir_all(parent).await
    {
        return internal(&e);
    }
    if tokio::fs::try_exists(&blob).await.unwrap_or(false) {
        // Same bytes already stored; the temporary file goes.
    } else if let Err(e) = tokio::fs::rename(&received.incoming.path, &blob).await {
        return internal(&e);
    } else {
        received.incoming.keep = true;
        if let Some(parent) = blob.parent()
            && let Ok(dir) = tokio::fs::File::open(parent).await
        {
            let _ = dir.sync_all().await;
        }
    }
    let uploaded = match index.commit_upload(user, new).await {
        Ok(u) => u,
        Err(e) => return index_error(e),
    };
    repo.wake_publisher();
    let published = match index.wait_published(uploaded.seq, PUBLISH_WAIT).await {
        Ok(p) => p,
        Err(e) => return internal(&e),
    };
    tracing::info!(user, project = %uploaded.project, file = %new.filename, published, "uploaded");
    let message = if published {
        format!(
            "Uploaded {} to {}: signed and published.",
            new.filename,
            normalize_name(&new.project)
        )
    } else {
        format!(
            "Uploaded {} to {}: accepted, publication pending.",
            new.filename,
            normalize_name(&new.project)
        )
    };
    let mut response = refuse(StatusCode::OK, &message);
    if let Ok(v) = HeaderValue::from_str(&uploaded.seq.to_string()) {
        response.headers_mut().insert("x-tufa-change", v);
    }
    response
}
