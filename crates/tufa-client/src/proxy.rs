//! `tufa proxy`: a local package index for pip and uv that answers only
//! with bytes it has verified through TUF.
//!
//! - `GET /simple/{project}/`: the target `simple/{name}/index.json` (if the
//!   client accepts PEP 691 JSON and the repository signs it) or
//!   `simple/{name}/index.html`, downloaded, checked against its signed
//!   length and every signed hash, its file links rewritten to
//!   `/packages/{name}/{filename}` on the proxy (fragments kept).
//! - `GET /packages/{project}/{filename}`: the target
//!   `packages/{name}/{filename}`, verified the same way; so also a file's
//!   PEP 658 core metadata, `{filename}.metadata`, whose attributes
//!   (`data-core-metadata`, `core-metadata`, ...) pages keep only where
//!   that target is signed.
//! - `GET /simple/`: the target `simple/index.html` if the repository signs
//!   one; otherwise 404 (pip and uv do not need it).
//!
//! Verified files are kept in `{cache_dir}/{algorithm}/{hash}` (content
//! addressed; downloaded to a temporary file there, verified, then renamed,
//! so nothing unverified stays). The trusted metadata lives in
//! `{cache_dir}/metadata/`. Top-level metadata is refreshed when the proxy
//! starts and then whenever the last refresh is older than the refresh
//! interval, each time with a new [`Updater`] (an updater is one update).
//!
//! A target no trusted role lists is answered with 404; anything that fails
//! verification (or a refresh that fails) with 502. The body and the HTTP
//! reason phrase say exactly what failed, and the refusal is logged.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use tokio_util::io::ReaderStream;

use crate::pypi::{self, PageFormat};
use crate::updater::{self, HttpConfig, HttpFetcher, TargetInfo, Updater, UpdaterConfig};

/// The default refresh interval of the top-level metadata.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// Where the proxy reads from and keeps its files.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Base URL of the index's files: target `simple/demo/index.html` is
    /// fetched from `{index_url}/simple/demo/...`. A trailing `simple/` is
    /// dropped, so pip's `--index-url` can be given as it is.
    pub index_url: String,
    /// Base URL of the TUF metadata.
    pub metadata_url: String,
    /// The trusted root (the trust anchor for every refresh).
    pub root: Vec<u8>,
    /// Trusted metadata (`metadata/`) and verified files (`{algorithm}/`).
    pub cache_dir: PathBuf,
    /// How old the last refresh may get before the next request refreshes.
    pub refresh_interval: Duration,
    /// Timeouts and the minimum transfer rate of upstream requests.
    pub http: HttpConfig,
    /// Fetch targets as `dir/{hash}.{name}` when the root says consistent
    /// snapshots (the TUF default); false for hosts with plain names only.
    pub prefix_targets_with_hash: bool,
}

impl ProxyConfig {
    pub fn new(
        index_url: impl Into<String>,
        metadata_url: impl Into<String>,
        root: Vec<u8>,
        cache_dir: impl Into<PathBuf>,
    ) -> ProxyConfig {
        ProxyConfig {
            index_url: index_url.into(),
            metadata_url: metadata_url.into(),
            root,
            cache_dir: cache_dir.into(),
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            http: HttpConfig::default(),
            prefix_targets_with_hash: true,
        }
    }

    /// The base URL targets are fetched from (with a trailing `/`).
    pub fn target_base_url(&self) -> String {
        let trimmed = self.index_url.trim_end_matches('/');
        let base = trimmed.strip_suffix("/simple").unwrap_or(trimmed);
        format!("{base}/")
    }
}

/// Why the proxy refused a request: the HTTP status and a reason a person
/// can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: String,
}

impl Refusal {
    fn not_found(reason: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::NOT_FOUND,
            reason: reason.into(),
        }
    }

    fn failed(reason: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::BAD_GATEWAY,
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.reason)
    }
}

impl std::error::Error for Refusal {}

/// An error with its whole `source()` chain, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// One refresh: an updater and when it was made.
#[derive(Debug)]
struct Generation {
    made: Instant,
    updater: RwLock<Updater>,
}

#[derive(Debug)]
struct Inner {
    config: ProxyConfig,
    current: Mutex<Option<Arc<Generation>>>,
}

/// The proxy: cheap to clone, shared by all requests.
#[derive(Debug, Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

impl Proxy {
    pub fn new(config: ProxyConfig) -> Proxy {
        Proxy {
            inner: Arc::new(Inner {
                config,
                current: Mutex::new(None),
            }),
        }
    }

    pub fn config(&self) -> &ProxyConfig {
        &self.inner.config
    }

    /// Refreshes the top-level metadata now (blocking). The proxy does this
    /// when it starts, so a repository it cannot trust stops it at once.
    pub fn refresh(&self) -> Result<(), Refusal> {
        let mut slot = self.inner.current.lock().unwrap_or_else(|e| e.into_inner());
        *slot = Some(self.inner.refresh_now()?);
        Ok(())
    }

    /// The HTTP routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/simple/", get(simple_root))
            .route("/simple", get(|| async { Redirect::permanent("/simple/") }))
            .route("/simple/{project}/", get(simple_page))
            .route("/simple/{project}", get(simple_redirect))
            .route("/packages/{project}/{filename}", get(package_file))
            .fallback(|| async {
                refuse(&Refusal::not_found(
                    "not a path this proxy serves (only /simple/{project}/ and /packages/{project}/{filename})",
                ))
            })
            .with_state(self.clone())
    }

    /// Refreshes once, then serves on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.router();
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// A verified project page, its links rewritten through the proxy.
    pub fn page(&self, project: &str, accept_json: bool) -> Result<(Vec<u8>, PageFormat), Refusal> {
        if !pypi::is_valid_project(project) {
            return Err(Refusal::not_found(format!(
                "{project:?} is not a valid project name"
            )));
        }
        let generation = self.inner.generation()?;
        let formats: &[PageFormat] = if accept_json {
            &[PageFormat::Json, PageFormat::Html]
        } else {
            &[PageFormat::Html]
        };
        let mut tried = Vec::new();
        for &format in formats {
            let target = pypi::index_target(project, format);
            let Some(info) = self.inner.lookup(&generation, &target)? else {
                tried.push(target);
                continue;
            };
            let path = self.inner.download(&generation, &info)?;
            let bytes = std::fs::read(&path)
                .map_err(|e| Refusal::failed(format!("reading {}: {e}", path.display())))?;
            let prefix = "/packages";
            // PEP 658 / 714: offer a file's core metadata only when its
            // `.metadata` target is signed (pip fails on a missing one).
            let mut keep_metadata = |file: &str| {
                let target = pypi::metadata_target(project, file);
                match self.inner.lookup(&generation, &target) {
                    Ok(found) => found.is_some(),
                    Err(r) => {
                        tracing::warn!("not offering {target}: {}", r.reason);
                        false
                    }
                }
            };
            let (page, files) = match format {
                PageFormat::Html => {
                    let text = String::from_utf8(bytes).map_err(|_| {
                        Refusal::failed(format!("signed target {target} is not UTF-8 HTML"))
                    })?;
                    let (page, files) =
                        pypi::rewrite_html(&text, project, prefix, &mut keep_metadata);
                    (page.into_bytes(), files)
                }
                PageFormat::Json => pypi::rewrite_json(&bytes, project, prefix, &mut keep_metadata)
                    .map_err(|e| Refusal::failed(format!("signed target {target}: {e}")))?,
            };
            tracing::info!(target = %target, files = files.len(), "verified project page");
            return Ok((page, format));
        }
        Err(Refusal::not_found(format!(
            "not a signed target: {} (no trusted TUF targets role lists it)",
            tried.join(" or ")
        )))
    }

    /// The local path of a verified distribution file.
    pub fn file(&self, project: &str, filename: &str) -> Result<PathBuf, Refusal> {
        if !pypi::is_valid_project(project) || !pypi::is_valid_filename(filename) {
            return Err(Refusal::not_found(format!(
                "{project:?}/{filename:?} is not a valid project and file name"
            )));
        }
        let generation = self.inner.generation()?;
        let target = pypi::file_target(project, filename);
        let info = self.inner.lookup(&generation, &target)?.ok_or_else(|| {
            Refusal::not_found(format!(
                "not a signed target: {target} (no trusted TUF targets role lists it)"
            ))
        })?;
        let path = self.inner.download(&generation, &info)?;
        tracing::info!(target = %target, length = info.file.length, "verified file");
        Ok(path)
    }

    /// The verified root listing, if the repository signs `simple/index.html`.
    pub fn root_listing(&self) -> Result<Vec<u8>, Refusal> {
        let generation = self.inner.generation()?;
        let target = "simple/index.html";
        let info = self.inner.lookup(&generation, target)?.ok_or_else(|| {
            Refusal::not_found(format!(
                "not a signed target: {target} (the repository does not sign a root listing; pip and uv do not need one)"
            ))
        })?;
        let path = self.inner.download(&generation, &info)?;
        std::fs::read(&path)
            .map_err(|e| Refusal::failed(format!("reading {}: {e}", path.display())))
    }
}

impl Inner {
    fn metadata_dir(&self) -> PathBuf {
        self.config.cache_dir.join("metadata")
    }

    /// The current updater, refreshed first if the last refresh is older
    /// than the interval. A failed refresh refuses the request.
    fn generation(&self) -> Result<Arc<Generation>, Refusal> {
        let mut slot = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = slot.as_ref()
            && g.made.elapsed() < self.config.refresh_interval
        {
            return Ok(g.clone());
        }
        let g = self.refresh_now()?;
        *slot = Some(g.clone());
        Ok(g)
    }

    fn refresh_now(&self) -> Result<Arc<Generation>, Refusal> {
        let dir = self.metadata_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Refusal::failed(format!("creating {}: {e}", dir.display())))?;
        let refused = |e: updater::Error| {
            let r = Refusal::failed(format!("TUF refresh failed: {}", chain(&e)));
            tracing::error!("{}", r.reason);
            r
        };
        let fetcher = HttpFetcher::new(self.config.http.clone()).map_err(refused)?;
        let mut config = UpdaterConfig::new(&dir, self.config.metadata_url.clone());
        config.target_base_url = Some(self.config.target_base_url());
        config.prefix_targets_with_hash = self.config.prefix_targets_with_hash;
        let mut updater = Updater::with_trusted_root(config, Box::new(fetcher), &self.config.root)
            .map_err(refused)?;
        updater.refresh().map_err(refused)?;
        tracing::info!(
            root = updater.root().version,
            timestamp = updater.timestamp().map(|t| t.version),
            snapshot = updater.snapshot().map(|s| s.version),
            "TUF metadata refreshed"
        );
        Ok(Arc::new(Generation {
            made: Instant::now(),
            updater: RwLock::new(updater),
        }))
    }

    /// The signed info of `target`; `None` when no trusted role lists it.
    fn lookup(&self, g: &Generation, target: &str) -> Result<Option<TargetInfo>, Refusal> {
        let mut updater = g.updater.write().unwrap_or_else(|e| e.into_inner());
        updater.get_targetinfo(target).map_err(|e| {
            Refusal::failed(format!(
                "TUF verification failed looking up {target}: {}",
                chain(&e)
            ))
        })
    }

    /// Downloads (or finds in the cache) a target, verified against its
    /// signed length and every signed hash.
    fn download(&self, g: &Generation, info: &TargetInfo) -> Result<PathBuf, Refusal> {
        let path = self.cache_path(info)?;
        let updater = g.updater.read().unwrap_or_else(|e| e.into_inner());
        updater
            .download_target(info, Some(&path), None)
            .map_err(|e| {
                Refusal::failed(format!(
                    "TUF verification failed for {}: {}",
                    info.path,
                    chain(&e)
                ))
            })
    }

    /// `{cache_dir}/{algorithm}/{hash}`: sha256 if signed, else the first
    /// signed hash.
    fn cache_path(&self, info: &TargetInfo) -> Result<PathBuf, Refusal> {
        let hashes = &info.file.hashes;
        let (alg, hash) = hashes
            .get_key_value("sha256")
            .or_else(|| hashes.iter().next())
            .ok_or_else(|| {
                Refusal::failed(format!("signed target {} lists no hashes", info.path))
            })?;
        let plain = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if !plain(alg) || !plain(hash) {
            return Err(Refusal::failed(format!(
                "signed target {} has a malformed hash {alg}:{hash}",
                info.path
            )));
        }
        Ok(self
            .config
            .cache_dir
            .join(alg)
            .join(hash.to_ascii_lowercase()))
    }
}

/// The response for a refusal: the status, the reason as the HTTP reason
/// phrase (pip prints it) and as the body. Logged.
fn refuse(r: &Refusal) -> Response {
    tracing::warn!(status = r.status.as_u16(), "refused: {}", r.reason);
    let mut resp = (
        r.status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("tufa proxy refused this request: {}\n", r.reason),
    )
        .into_response();
    let phrase: String = r
        .reason
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(600)
        .collect();
    if let Ok(p) = hyper::ext::ReasonPhrase::try_from(phrase.into_bytes()) {
        resp.extensions_mut().insert(p);
    }
    resp
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Refusal> + Send + 'static,
) -> Result<T, Refusal> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(Refusal::failed(format!("internal error: {e}"))))
}

/// Whether the client takes PEP 691 JSON (any q above 0).
fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case(PageFormat::Json.content_type()) && !zero
        })
}

async fn simple_root(State(proxy): State<Proxy>) -> Response {
    match blocking(move || proxy.root_listing()).await {
        Ok(bytes) => (
            [(header::CONTENT_TYPE, PageFormat::Html.content_type())],
            bytes,
        )
            .into_response(),
        Err(r) => refuse(&r),
    }
}

async fn simple_redirect(UrlPath(project): UrlPath<String>) -> Response {
    let project = pypi::normalize(&project);
    if pypi::is_valid_project(&project) {
        Redirect::permanent(&format!("/simple/{project}/")).into_response()
    } else {
        refuse(&Refusal::not_found(format!(
            "{project:?} is not a valid project name"
        )))
    }
}

async fn simple_page(
    State(proxy): State<Proxy>,
    UrlPath(project): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let json = accepts_json(&headers);
    match blocking(move || proxy.page(&project, json)).await {
        Ok((bytes, format)) => {
            let mut resp = bytes.into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            resp.headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Accept"));
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            resp
        }
        Err(r) => refuse(&r),
    }
}

async fn package_file(
    State(proxy): State<Proxy>,
    UrlPath((project, filename)): UrlPath<(String, String)>,
) -> Response {
    let path = match blocking(move || proxy.file(&project, &filename)).await {
        Ok(p) => p,
        Err(r) => return refuse(&r),
    };
    // Streamed from the verified file in the cache, never whole in memory.
    // The file is only ever replaced by a rename, so an open handle keeps
    // the verified bytes even if another request replaces it meanwhile.
    let opened = match tokio::fs::File::open(&path).await {
        Ok(file) => file.metadata().await.map(|m| (file, m.len())),
        Err(e) => Err(e),
    };
    match opened {
        Ok((file, length)) => {
            let body = Body::from_stream(ReaderStream::with_capacity(file, 64 * 1024));
            let mut resp = body.into_response();
            let headers = resp.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            resp
        }
        Err(e) => refuse(&Refusal::failed(format!("reading {}: {e}", path.display()))),
    }
}

/// Binds `listen`, refreshes once, and serves in the background on the
/// current tokio runtime. Returns the bound address and a handle that stops
/// the server when dropped or [`RunningProxy::stop`]ped.
pub async fn start(config: ProxyConfig, listen: SocketAddr) -> Result<RunningProxy, Refusal> {
    let proxy = Proxy::new(config);
    let p = proxy.clone();
    blocking(move || p.refresh()).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Refusal::failed(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Refusal::failed(format!("cannot listen on {listen}: {e}")))?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(proxy.serve(listener, async {
        let _ = rx.await;
    }));
    tracing::info!(%addr, "tufa proxy listening");
    Ok(RunningProxy {
        addr,
        stop: Some(tx),
        task,
    })
}

/// A proxy serving in the background.
#[derive(Debug)]
pub struct RunningProxy {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningProxy {
    /// `http://ADDR/simple/`, for pip's and uv's `--index-url`.
    pub fn index_url(&self) -> String {
        format!("http://{}/simple/", self.addr)
    }

    /// Stops accepting and waits for the server to finish.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    /// Waits until the server ends (it ends only on error or stop).
    pub async fn wait(mut self) -> std::io::Result<()> {
        (&mut self.task)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// The cached files under `cache_dir` (outside `metadata/`), for checks.
pub fn cached_files(cache_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return out;
    };
    for alg in entries.flatten() {
        if alg.file_name() == "metadata" || !alg.path().is_dir() {
            continue;
        }
        if let Ok(files) = std::fs::read_dir(alg.path()) {
            out.extend(files.flatten().map(|f| f.path()));
        }
    }
    out.sort();
    out
}
