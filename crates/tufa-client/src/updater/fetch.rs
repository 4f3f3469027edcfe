//! Getting bytes from a URL, bounded in length and in time.
//!
//! [`Fetcher`] is the one network seam of the updater, so tests can count
//! requests and inject faults. [`HttpFetcher`] is the real one: reqwest with
//! rustls, a connect timeout, a read timeout, and a minimum transfer rate
//! measured over a sliding window (against slow-retrieval attacks, where a
//! server trickles bytes just fast enough to dodge a read timeout).

use std::fmt;
use std::io::{Read, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::error::Error;

/// Downloads a URL into a sink.
pub trait Fetcher: fmt::Debug + Send + Sync {
    /// Writes the body of `url` into `sink` and returns its length. Must fail
    /// with [`Error::LengthExceeded`] rather than write more than
    /// `max_length` bytes, with [`Error::Http`] for an HTTP error status
    /// (403 and 404 end the root chain), and with [`Error::SlowRetrieval`]
    /// when the server is too slow.
    fn fetch(&self, url: &str, max_length: u64, sink: &mut dyn Write) -> Result<u64, Error>;
}

/// Fetches `url` into memory, at most `max_length` bytes.
pub fn fetch_bytes(fetcher: &dyn Fetcher, url: &str, max_length: u64) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    fetcher.fetch(url, max_length, &mut buf)?;
    Ok(buf)
}

/// Timeouts and the minimum transfer rate of [`HttpFetcher`].
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Longest wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest wait for the response headers, and for each read of the body.
    pub read_timeout: Duration,
    /// The fewest bytes per second accepted, averaged over `rate_window`.
    pub min_bytes_per_second: u64,
    /// The window the transfer rate is measured over; a transfer shorter
    /// than one window is bounded by the read timeout alone.
    pub rate_window: Duration,
    /// Sent as `User-Agent`.
    pub user_agent: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(30),
            min_bytes_per_second: 1024,
            rate_window: Duration::from_secs(10),
            user_agent: format!("tufa/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// HTTP(S) through reqwest's blocking client with rustls.
///
/// Two clients, each built on first use: one for `http://` URLs that loads
/// no TLS trust roots (loading the system's certificates costs several
/// milliseconds, more than a whole refresh against a local mirror), and one
/// for `https://` with the platform's verifier. The plain one follows
/// redirects only to `http://`; a redirect to `https://` is fetched again,
/// from the start, with the TLS client. Each keeps its connections alive
/// for the requests after the first.
///
/// Blocking: call it from a thread that is not running an async runtime
/// (in async code, through `spawn_blocking`).
pub struct HttpFetcher {
    plain: OnceLock<reqwest::blocking::Client>,
    tls: OnceLock<reqwest::blocking::Client>,
    config: HttpConfig,
}

impl fmt::Debug for HttpFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpFetcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HttpFetcher {
    /// Builds nothing yet: the clients are made on first use.
    pub fn new(config: HttpConfig) -> Result<HttpFetcher, Error> {
        Ok(HttpFetcher {
            plain: OnceLock::new(),
            tls: OnceLock::new(),
            config,
        })
    }

    fn builder(&self) -> reqwest::blocking::ClientBuilder {
        reqwest::blocking::Client::builder()
            .connect_timeout(self.config.connect_timeout)
            // The blocking client applies this to the wait for the headers
            // and to every single read of the body.
            .timeout(self.config.read_timeout)
            .user_agent(self.config.user_agent.clone())
    }

    fn client(&self, https: bool) -> Result<&reqwest::blocking::Client, Error> {
        let (slot, builder) = if https {
            (&self.tls, None)
        } else {
            let plain =
                self.builder()
                    .tls_certs_only([])
                    .redirect(reqwest::redirect::Policy::custom(|attempt| {
                        if attempt.url().scheme() == "https" {
                            attempt.stop()
                        } else if attempt.previous().len() >= 10 {
                            attempt.error("too many redirects")
                        } else {
                            attempt.follow()
                        }
                    }));
            (&self.plain, Some(plain))
        };
        if let Some(c) = slot.get() {
            return Ok(c);
        }
        let client = builder
            .unwrap_or_else(|| self.builder())
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(slot.get_or_init(|| client))
    }

    fn send(&self, url: &str) -> Result<reqwest::blocking::Response, Error> {
        let https = !url
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("http://"));
        let send = |client: &reqwest::blocking::Client| {
            client.get(url).send().map_err(|e| {
                if e.is_timeout() {
                    Error::SlowRetrieval {
                        url: url.to_string(),
                    }
                } else {
                    Error::Network {
                        url: url.to_string(),
                        reason: error_chain(&e),
                    }
                }
            })
        };
        let response = send(self.client(https)?)?;
        let redirected_to_tls = !https
            && response.status().is_redirection()
            && response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| response.url().join(l).ok())
                .is_some_and(|u| u.scheme() == "https");
        if redirected_to_tls {
            return send(self.client(true)?);
        }
        Ok(response)
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::TimedOut
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
            .is_some_and(reqwest::Error::is_timeout)
}

impl Fetcher for HttpFetcher {
    fn fetch(&self, url: &str, max_length: u64, sink: &mut dyn Write) -> Result<u64, Error> {
        let slow = || Error::SlowRetrieval {
            url: url.to_string(),
        };
        let mut response = self.send(url)?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::Http {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        let too_long = || Error::LengthExceeded {
            url: url.to_string(),
            limit: max_length,
        };
        if response.content_length().is_some_and(|n| n > max_length) {
            return Err(too_long());
        }
        let mut rate = RateGuard::new(&self.config);
        let mut total: u64 = 0;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match response.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => return Err(slow()),
                Err(e) => {
                    return Err(Error::Network {
                        url: url.to_string(),
                        reason: e.to_string(),
                    });
                }
            };
            total += n as u64;
            if total > max_length {
                return Err(too_long());
            }
            sink.write_all(&buf[..n]).map_err(|source| Error::Write {
                url: url.to_string(),
                source,
            })?;
            if !rate.record(n as u64) {
                return Err(slow());
            }
        }
        Ok(total)
    }
}

/// A reqwest error with its causes, which say what actually went wrong.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The minimum-rate check: every `window`, at least `min * window` bytes
/// must have arrived since the window began.
#[derive(Debug)]
pub(crate) struct RateGuard {
    window: Duration,
    min_bytes_per_second: u64,
    window_start: Instant,
    window_bytes: u64,
}

impl RateGuard {
    pub(crate) fn new(config: &HttpConfig) -> Self {
        RateGuard {
            window: config.rate_window,
            min_bytes_per_second: config.min_bytes_per_second,
            window_start: Instant::now(),
            window_bytes: 0,
        }
    }

    /// Records `n` bytes; false when the window that just closed was too slow.
    pub(crate) fn record(&mut self, n: u64) -> bool {
        self.window_bytes += n;
        let elapsed = self.window_start.elapsed();
        if elapsed < self.window {
            return true;
        }
        let needed = (self.min_bytes_per_second as f64 * elapsed.as_secs_f64()) as u64;
        let ok = self.window_bytes >= needed;
        self.window_start = Instant::now();
        self.window_bytes = 0;
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    /// A one-thread HTTP server on 127.0.0.1 that answers every request with
    /// `respond(path)` and closes the connection (responses say so, or a
    /// client reusing the connection races the close); returns its base URL.
    fn serve(respond: fn(&str) -> String) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // Skip the headers.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
                let _ = reader.get_mut().write_all(respond(&path).as_bytes());
            }
        });
        base
    }

    fn fetcher() -> HttpFetcher {
        HttpFetcher::new(HttpConfig::default()).expect("fetcher")
    }

    #[test]
    fn plain_client_follows_plain_redirects() {
        let base = serve(|path| {
            match path {
            "/moved" => "HTTP/1.1 302 Found\r\nLocation: /here\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".into(),
            _ => "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello".into(),
        }
        });
        let body = fetch_bytes(&fetcher(), &format!("{base}/moved"), 100).expect("fetch");
        assert_eq!(body, b"hello");
    }

    #[test]
    fn redirect_to_https_is_fetched_with_the_tls_client() {
        // A port nothing listens on: the TLS client's attempt fails to
        // connect, which shows the redirect was followed, not handed back
        // as a 301 (the plain client stops at https redirects).
        let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = closed.local_addr().expect("addr").port();
        drop(closed);
        // The port must reach the responder, which is a plain fn: pass it
        // through the path of the first request.
        let base = serve(|path| {
            let port = path.trim_start_matches("/to-tls/");
            format!(
                "HTTP/1.1 301 Moved Permanently\r\nLocation: https://127.0.0.1:{port}/x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            )
        });
        let url = format!("{base}/to-tls/{port}");
        match fetch_bytes(&fetcher(), &url, 100) {
            Err(Error::Network {
                url: failed,
                reason,
            }) => {
                assert_eq!(failed, url);
                assert!(
                    reason.contains(&format!("127.0.0.1:{port}")) || reason.contains("connect"),
                    "{reason}"
                );
            }
            other => panic!("expected the TLS client's connection error, got {other:?}"),
        }
    }
}
