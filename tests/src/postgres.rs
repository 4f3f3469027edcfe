//! A throwaway PostgreSQL server for tests: `initdb` into a temporary
//! directory and `postgres` on a free port of 127.0.0.1, no system service.
//! Killed (and its directory removed) on drop.
//!
//! The server binaries come from `TUFA_TEST_PG_BIN`, `PATH`, or Debian's
//! `/usr/lib/postgresql/*/bin` (`.ci/run` installs the `postgresql` package
//! when they are missing). PostgreSQL refuses to run as root, so as root the
//! server runs as the `postgres` user the Debian package creates.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running PostgreSQL server.
#[derive(Debug)]
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    child: Option<Child>,
    run_as: Option<String>,
}

fn find_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("TUFA_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev());
    }
    candidates
        .into_iter()
        .find(|d| d.join("initdb").exists() && d.join("postgres").exists())
        .expect(
            "no PostgreSQL server binaries (initdb, postgres): install Debian's postgresql \
             package (`bash .ci/run` does) or set TUFA_TEST_PG_BIN",
        )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Postgres {
    /// Creates a cluster (superuser `tufa`, trust authentication on
    /// 127.0.0.1 only) and starts it.
    pub fn start() -> Postgres {
        let bin = find_bin();
        let dir = tempfile::Builder::new()
            .prefix("tufa-pg-")
            .tempdir()
            .expect("tempdir");
        let run_as = is_root().then(|| "postgres".to_string());
        if let Some(user) = &run_as {
            let status = Command::new("chown")
                .arg(format!("{user}:"))
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown of the PostgreSQL directory failed");
        }
        let data = dir.path().join("data");
        let out = Self::command(&run_as, &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "tufa", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Postgres {
            dir,
            bin,
            port: free_port(),
            child: None,
            run_as,
        };
        pg.start_server();
        pg
    }

    fn command(run_as: &Option<String>, program: &Path) -> Command {
        match run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    fn start_server(&mut self) {
        let data = self.dir.path().join("data");
        let log = std::fs::File::create(self.dir.path().join("postgres.log")).expect("log file");
        let child = Self::command(&self.run_as, &self.bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .args(["-c", "max_connections=300"])
            // Test data is thrown away: durability would only cost time.
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(60));
    }

    /// Waits until the server accepts a SQL connection.
    fn wait_ready(&self, timeout: Duration) {
        let start = Instant::now();
        loop {
            // A startup packet answered with an authentication reply (`R`) means
            // the server accepts connections (trust: AuthenticationOk).
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let mut packet = Vec::new();
                let body: Vec<u8> = [
                    &0x0003_0000u32.to_be_bytes()[..],
                    b"user\0tufa\0database\0postgres\0\0",
                ]
                .concat();
                packet.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
                packet.extend_from_slice(&body);
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut reply = [0u8; 1];
                if s.write_all(&packet).is_ok()
                    && s.read_exact(&mut reply).is_ok()
                    && reply[0] == b'R'
                {
                    return;
                }
            }
            assert!(
                start.elapsed() < timeout,
                "PostgreSQL did not start within {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// `postgres://tufa@127.0.0.1:PORT/postgres`
    pub fn url(&self) -> String {
        format!("postgres://tufa@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server as a crash would: an immediate shutdown (SIGQUIT to
    /// the postmaster) ends every session at once without a checkpoint.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // As root the child is runuser; the postmaster's pid is in postmaster.pid.
            let pid = self.postmaster_pid();
            if let Some(pid) = pid {
                let _ = Command::new("kill")
                    .args(["-QUIT", &pid.to_string()])
                    .status();
            }
            let start = Instant::now();
            while !matches!(child.try_wait(), Ok(Some(_))) {
                if start.elapsed() > Duration::from_secs(15) {
                    if let Some(pid) = pid {
                        let _ = Command::new("kill")
                            .args(["-KILL", &pid.to_string()])
                            .status();
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Kills the server and starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        self.start_server();
    }

    fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join("data/postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.kill();
    }
}
