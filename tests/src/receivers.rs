//! Receivers for the alert sinks (`sinks_*.rs`): a loopback HTTP server that records every
//! request and answers from a script (fail the first N requests, then succeed), the HMAC check
//! of the webhook signature, and a real Prometheus Alertmanager started for one test.
//!
//! Everything listens on 127.0.0.1 only. The HTTP server is std only: one thread accepts,
//! one thread per connection reads one request (`Content-Length` body) and answers with
//! `Connection: close`; it stops, joining the accept thread, on drop.

use std::{
    fmt,
    io::{self, BufRead, BufReader, Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Condvar, Mutex, MutexGuard,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::ScratchDir;

/// How long a test waits for the daemon's sinks to deliver (retries included).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the accept thread looks at the stop flag.
const POLL: Duration = Duration::from_millis(20);

/// Longest request the receiver reads (alerts are a few KiB).
const MAX_REQUEST: usize = 1 << 20;

/// A port on 127.0.0.1 that was free a moment ago: for a receiver that is "down" now and
/// will listen there later.
pub fn free_port() -> u16 {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding an ephemeral loopback port");
    listener.local_addr().expect("local address").port()
}

/// What the receiver answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// This status, with this `Content-Type` and body.
    Body {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    /// This status and a `Retry-After: <seconds>` header, empty body.
    RetryAfter { status: u16, seconds: u64 },
}

impl Reply {
    /// A status with an empty body.
    pub fn status(status: u16) -> Reply {
        Reply::Body {
            status,
            content_type: "text/plain",
            body: String::new(),
        }
    }

    /// What PagerDuty's Events API v2 answers an accepted event with.
    pub fn pagerduty_accepted() -> Reply {
        Reply::Body {
            status: 202,
            content_type: "application/json",
            body: r#"{"status":"success","message":"Event processed","dedup_key":"x"}"#.to_owned(),
        }
    }

    /// What a Slack incoming webhook answers a posted message with.
    pub fn slack_ok() -> Reply {
        Reply::Body {
            status: 200,
            content_type: "text/html",
            body: "ok".to_owned(),
        }
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// What the receiver answered.
    pub reply: Reply,
}

impl Received {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; fails the test if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "request body is not JSON ({e}):\n{}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Whether the receiver accepted it (2xx).
    pub fn accepted(&self) -> bool {
        let status = match &self.reply {
            Reply::Body { status, .. } | Reply::RetryAfter { status, .. } => *status,
        };
        (200..300).contains(&status)
    }
}

impl fmt::Display for Received {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} {} -> {:?}", self.method, self.path, self.reply)?;
        for (name, value) in &self.headers {
            writeln!(f, "  {name}: {value}")?;
        }
        writeln!(f, "  {}", String::from_utf8_lossy(&self.body))
    }
}

/// The webhook signature header's value for `body` under `key`: `sha256=<hex HMAC-SHA256>`.
pub fn hmac_signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

// === impl HttpReceiver ===

/// A scripted HTTP receiver on 127.0.0.1; see the module docs.
#[derive(Debug)]
pub struct HttpReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug)]
struct State {
    /// Answers for the first requests, in order.
    script: Vec<Reply>,
    /// The answer once the script is used up.
    then: Reply,
    requests: Vec<Received>,
}

impl HttpReceiver {
    /// Listens on a free port; answers the first requests with `script`, then with `then`.
    pub fn start(script: Vec<Reply>, then: Reply) -> Self {
        Self::start_on(0, script, then)
    }

    /// Listens on `port` (0: any free one).
    pub fn start_on(port: u16, script: Vec<Reply>, then: Reply) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .unwrap_or_else(|e| panic!("binding 127.0.0.1:{port} for the receiver: {e}"));
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                script: script.into_iter().rev().collect(),
                then,
                requests: Vec::new(),
            }),
            changed: Condvar::new(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let accept_thread = {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            thread::spawn(move || accept_loop(&listener, &shared, &stop))
        };
        HttpReceiver {
            addr,
            shared,
            stop,
            accept_thread: Some(accept_thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Received> {
        self.shared.lock().requests.clone()
    }

    /// Waits until at least `count` requests satisfy `pred` and returns them (in arrival
    /// order); fails the test after `timeout`.
    pub fn wait_for(
        &self,
        pred: impl Fn(&Received) -> bool,
        count: usize,
        timeout: Duration,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            let matching: Vec<Received> =
                state.requests.iter().filter(|r| pred(r)).cloned().collect();
            if matching.len() >= count {
                return matching;
            }
            let now = Instant::now();
            if now >= deadline {
                let all: Vec<String> = state.requests.iter().map(ToString::to_string).collect();
                panic!(
                    "expected {count} matching request(s) at {}, got {} after {timeout:?}; all requests:\n{}",
                    self.addr,
                    matching.len(),
                    all.join("")
                );
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let shared = Arc::clone(shared);
                thread::spawn(move || {
                    let _ = serve(stream, &shared);
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL),
            Err(_) => thread::sleep(POLL),
        }
    }
}

/// Reads one request, records it, answers it, closes.
fn serve(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line)? == 0 {
        return Ok(());
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_REQUEST);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;

    let reply = {
        let mut state = shared.lock();
        let reply = state.script.pop().unwrap_or_else(|| state.then.clone());
        state.requests.push(Received {
            method,
            path,
            headers,
            body,
            reply: reply.clone(),
        });
        reply
    };
    shared.changed.notify_all();

    let (status, extra, content_type, body) = match &reply {
        Reply::Body {
            status,
            content_type,
            body,
        } => (*status, String::new(), *content_type, body.clone()),
        Reply::RetryAfter { status, seconds } => (
            *status,
            format!("Retry-After: {seconds}\r\n"),
            "text/plain",
            String::new(),
        ),
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    )?;
    out.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

// === impl Alertmanager ===

/// A real Prometheus Alertmanager (Debian's `prometheus-alertmanager`) on 127.0.0.1, with a
/// null receiver, its own storage in a scratch directory and clustering off. Killed on drop.
#[derive(Debug)]
pub struct Alertmanager {
    child: Child,
    port: u16,
    scratch: ScratchDir,
}

impl Alertmanager {
    /// Where Debian installs it.
    pub const BINARY: &'static str = "/usr/bin/prometheus-alertmanager";

    /// Starts it and waits until it is ready (`/-/ready`). Returns `None`, after saying why,
    /// when the binary is missing; under `CI=true` that fails the test instead.
    pub fn start() -> Option<Self> {
        if !Path::new(Self::BINARY).is_file() {
            let reason = format!(
                "{} is missing; run `cargo xtask setup` (it installs prometheus-alertmanager)",
                Self::BINARY
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but {reason}");
            }
            eprintln!("skipping: {reason}");
            return None;
        }
        let scratch = ScratchDir::new("alertmanager");
        let config = scratch.file("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n",
        )
        .expect("writing the Alertmanager config");
        let port = free_port();
        let log = std::fs::File::create(scratch.file("alertmanager.log")).expect("log file");
        let child = Command::new(Self::BINARY)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", scratch.file("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Empty: no gossip, no cluster port.
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", Self::BINARY));
        let mut am = Alertmanager {
            child,
            port,
            scratch,
        };
        am.wait_ready();
        Some(am)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = http_get(self.port, "/-/ready") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "Alertmanager exited ({status}) before it was ready:\n{}",
                    self.log()
                );
            }
            if Instant::now() >= deadline {
                panic!("Alertmanager not ready within 30 s:\n{}", self.log());
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:<port>`: what the detector's `url` key takes.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `GET /api/v2/alerts`: the alerts it holds, as JSON.
    pub fn alerts(&self) -> Value {
        let (status, body) = http_get(self.port, "/api/v2/alerts")
            .unwrap_or_else(|e| panic!("GET /api/v2/alerts: {e}\n{}", self.log()));
        assert_eq!(status, 200, "GET /api/v2/alerts: {body}");
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("/api/v2/alerts is not JSON ({e}): {body}"))
    }

    /// Its log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.scratch.path().join("alertmanager.log")).unwrap_or_default()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.scratch.path().join("data")
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.0 GET on 127.0.0.1 (the server then closes the connection to end the body,
/// so neither chunking nor keep-alive is involved): the status and the body.
pub fn http_get(port: u16, path: &str) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("no HTTP status in {head:?}")))?;
    Ok((status, body.to_owned()))
}

/// A TOML basic string (JSON string syntax is a subset of it), for sink keys in test policies.
pub fn toml_str(s: &str) -> String {
    Value::from(s).to_string()
}

/// The `"sinks": {name: {...}}` counters of one sink from the `detector stats` object.
pub fn sink_stats<'a>(stats: &'a Value, sink: &str) -> &'a Value {
    stats
        .pointer(&format!("/sinks/{sink}"))
        .unwrap_or_else(|| panic!("the stats have no counters for sink {sink:?}: {stats}"))
}

/// One counter of one sink.
pub fn sink_count(stats: &Value, sink: &str, counter: &str) -> u64 {
    sink_stats(stats, sink)
        .get(counter)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("sink {sink:?} has no {counter:?} count: {stats}"))
}

/// The alert journal's segment files (`<n>.seg`) in `spool_dir`: none once every sink has
/// delivered everything and the daemon stopped.
pub fn journal_segments(spool_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(spool_dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    files
}
