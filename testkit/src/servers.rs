//! Loopback servers for the egress scenarios to reach: a TCP server that counts the connections
//! it accepts and the bytes it receives, and a UDP server that counts datagrams (and can answer
//! DNS queries with NXDOMAIN).
//!
//! They run in threads of the test process, which is not in the test cgroup, so the detector
//! neither watches nor blocks them: what they count is exactly what the JVM under test got
//! through. A connection the kernel denied at `connect()` is never accepted; a socket whose
//! packets are dropped after the handshake is accepted but delivers no bytes.
//!
//! Each server binds one address and port on loopback, fails the test with a clear message if
//! that port is taken, and stops (joining its threads) on drop.

use std::{
    fmt,
    io::{self, Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Condvar, Mutex, MutexGuard,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

/// `127.0.0.1`.
pub const LOOPBACK_V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// `::1`.
pub const LOOPBACK_V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// How long a test waits for a server to see what the JVM sent. The JVM has usually exited by
/// then; this only covers the server threads catching up.
pub const SERVER_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the server threads look at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// At most this many received bytes are kept (per server) for [`TcpServer::received`].
const KEEP_BYTES: usize = 4096;

/// What a server has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// TCP connections accepted (always 0 for UDP).
    pub accepted: u64,
    /// UDP datagrams received (always 0 for TCP).
    pub datagrams: u64,
    /// Payload bytes received, over all connections or datagrams.
    pub bytes: u64,
}

/// What the TCP server sends back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpReply {
    /// Nothing: read and count until the client closes. An LDAP or RMI client then waits for
    /// a response until its read timeout, as it would against a black-holed server.
    Nothing,
    /// Once the request head (`\r\n\r\n`) has arrived, `HTTP/1.0 200 OK` with an empty body,
    /// then close.
    Http,
}

/// What the UDP server sends back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpReply {
    /// Nothing: a DNS client retries until its timeouts run out.
    Nothing,
    /// An NXDOMAIN answer to every well-formed DNS query, so a JNDI `dns://` lookup ends at
    /// once with `NameNotFoundException` after exactly one datagram.
    DnsNxDomain,
}

// === impl TcpServer ===

/// A TCP server on one loopback address and port; see the module docs.
pub struct TcpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

impl TcpServer {
    /// Binds `ip:port` and starts accepting; panics with a clear message if the port is busy.
    pub fn start(ip: IpAddr, port: u16, reply: TcpReply) -> Self {
        let wanted = SocketAddr::new(ip, port);
        // std sets SO_REUSEADDR on Unix, so a port left in TIME_WAIT by an earlier test is
        // reusable; a real listener on it is not.
        let listener = TcpListener::bind(wanted).unwrap_or_else(|e| bind_failed("TCP", wanted, &e));
        // Port 0 (the unit tests) means "any free port": report the one the kernel picked.
        let addr = listener.local_addr().unwrap_or(wanted);
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("making the listener on {addr} non-blocking: {e}"));
        let shared = Arc::new(Shared::default());
        let accept_thread = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("tcp-server-{}", addr.port()))
                .spawn(move || accept_loop(&listener, reply, &shared))
                .unwrap_or_else(|e| panic!("starting the TCP server thread for {addr}: {e}"))
        };
        TcpServer {
            addr,
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    /// [`start`](Self::start) with [`TcpReply::Nothing`].
    pub fn silent(ip: IpAddr, port: u16) -> Self {
        Self::start(ip, port, TcpReply::Nothing)
    }

    /// [`start`](Self::start) with [`TcpReply::Http`].
    pub fn http(ip: IpAddr, port: u16) -> Self {
        Self::start(ip, port, TcpReply::Http)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.tally().accepted
    }

    /// Bytes received so far, over all connections.
    pub fn bytes(&self) -> u64 {
        self.shared.tally().bytes
    }

    /// The first bytes received (up to 4 KiB, connections concatenated in arrival order).
    pub fn received(&self) -> Vec<u8> {
        self.shared.lock().received.clone()
    }

    /// Waits up to `timeout` until `done` holds for the tally; returns the last tally and
    /// whether it held.
    pub fn wait_for(&self, done: impl Fn(&Tally) -> bool, timeout: Duration) -> (Tally, bool) {
        self.shared.wait_for(done, timeout)
    }
}

impl fmt::Debug for TcpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("TcpServer")
            .field("addr", &self.addr)
            .field("tally", &state.tally)
            .field("received", &hex_prefix(&state.received))
            .finish()
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, reply: TcpReply, shared: &Arc<Shared>) {
    let mut connections = Vec::new();
    while !shared.stopped() {
        match listener.accept() {
            Ok((stream, _peer)) => {
                shared.update(|s| s.tally.accepted += 1);
                let shared = Arc::clone(shared);
                let connection = thread::Builder::new()
                    .name("tcp-server-conn".to_owned())
                    .spawn(move || serve_connection(stream, reply, &shared));
                match connection {
                    Ok(handle) => connections.push(handle),
                    Err(e) => eprintln!("tcp server: cannot start a connection thread: {e}"),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("tcp server: accept failed: {e}");
                thread::sleep(POLL);
            }
        }
    }
    for connection in connections {
        let _ = connection.join();
    }
}

/// Reads until the client closes or the server stops. A client whose packets the kernel drops
/// never closes as far as this end knows, so the read times out regularly to see the stop flag.
fn serve_connection(mut stream: TcpStream, reply: TcpReply, shared: &Shared) {
    // An accepted socket does not inherit the listener's O_NONBLOCK on Linux, but be explicit.
    if stream.set_nonblocking(false).is_err() || stream.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !shared.stopped() {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                shared.receive(&buf[..n]);
                if reply == TcpReply::Http {
                    head.extend_from_slice(&buf[..n]);
                    if head.windows(4).any(|w| w == b"\r\n\r\n") {
                        let _ = stream.write_all(
                            b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                        return;
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return,
        }
    }
}

// === impl UdpServer ===

/// A UDP server on one loopback address and port; see the module docs.
pub struct UdpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl UdpServer {
    /// Binds `ip:port` and starts receiving; panics with a clear message if the port is busy.
    pub fn start(ip: IpAddr, port: u16, reply: UdpReply) -> Self {
        let wanted = SocketAddr::new(ip, port);
        let socket = UdpSocket::bind(wanted).unwrap_or_else(|e| bind_failed("UDP", wanted, &e));
        let addr = socket.local_addr().unwrap_or(wanted);
        socket
            .set_read_timeout(Some(POLL))
            .unwrap_or_else(|e| panic!("setting a read timeout on {addr}: {e}"));
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("udp-server-{}", addr.port()))
                .spawn(move || receive_loop(&socket, reply, &shared))
                .unwrap_or_else(|e| panic!("starting the UDP server thread for {addr}: {e}"))
        };
        UdpServer {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Datagrams received so far.
    pub fn datagrams(&self) -> u64 {
        self.shared.tally().datagrams
    }

    /// Bytes received so far, over all datagrams.
    pub fn bytes(&self) -> u64 {
        self.shared.tally().bytes
    }

    /// The query names of the DNS queries received so far (without the trailing dot), in
    /// arrival order; datagrams that are not DNS queries are left out.
    pub fn dns_names(&self) -> Vec<String> {
        self.shared.lock().dns_names.clone()
    }

    /// Waits up to `timeout` until `done` holds for the tally; returns the last tally and
    /// whether it held.
    pub fn wait_for(&self, done: impl Fn(&Tally) -> bool, timeout: Duration) -> (Tally, bool) {
        self.shared.wait_for(done, timeout)
    }
}

impl fmt::Debug for UdpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("UdpServer")
            .field("addr", &self.addr)
            .field("tally", &state.tally)
            .field("dns_names", &state.dns_names)
            .finish()
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn receive_loop(socket: &UdpSocket, reply: UdpReply, shared: &Shared) {
    let mut buf = [0u8; 65536];
    while !shared.stopped() {
        match socket.recv_from(&mut buf) {
            Ok((n, peer)) => {
                let datagram = &buf[..n];
                let query = dns_query(datagram);
                shared.update(|s| {
                    s.tally.datagrams += 1;
                    s.tally.bytes += n as u64;
                    if let Some(query) = &query {
                        s.dns_names.push(query.name.clone());
                    }
                });
                if let (UdpReply::DnsNxDomain, Some(query)) = (reply, query) {
                    let _ = socket.send_to(&nxdomain(datagram, &query), peer);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                eprintln!("udp server: recv failed: {e}");
                thread::sleep(POLL);
            }
        }
    }
}

// === DNS ===

/// The parts of a DNS query the server needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DnsQuery {
    /// The first question's name, labels joined with `.`, no trailing dot.
    name: String,
    /// Where the first question (name, type, class) ends in the datagram.
    question_end: usize,
}

/// Parses a standard query (QR = 0, opcode 0) with at least one question (RFC 1035 4.1).
fn dns_query(datagram: &[u8]) -> Option<DnsQuery> {
    let header = datagram.get(..12)?;
    let qdcount = u16::from_be_bytes([header[4], header[5]]);
    if header[2] & 0x80 != 0 || (header[2] >> 3) & 0x0f != 0 || qdcount == 0 {
        return None;
    }
    let mut labels = Vec::new();
    let mut at = 12;
    loop {
        let len = usize::from(*datagram.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        // Compression pointers (0xc0) never appear in the question of a query.
        if len > 63 {
            return None;
        }
        let label = datagram.get(at..at + len)?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        at += len;
    }
    // QTYPE and QCLASS.
    datagram.get(at..at + 4)?;
    Some(DnsQuery {
        name: labels.join("."),
        question_end: at + 4,
    })
}

/// The NXDOMAIN answer to `query`: same id, the first question echoed (JNDI's `DnsClient`
/// checks both), QR and RA set, RD copied, RCODE 3.
fn nxdomain(datagram: &[u8], query: &DnsQuery) -> Vec<u8> {
    let mut answer = Vec::with_capacity(query.question_end);
    answer.extend_from_slice(&datagram[..2]);
    answer.push(0x80 | (datagram[2] & 0x01));
    answer.push(0x80 | 0x03);
    answer.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    answer.extend_from_slice(&datagram[12..query.question_end]);
    answer
}

// === impl Shared ===

/// State shared between a server's threads and the test.
#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    tally: Tally,
    received: Vec<u8>,
    dns_names: Vec<String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The threads only add whole values; a poisoned lock still holds consistent data.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    fn receive(&self, bytes: &[u8]) {
        self.update(|s| {
            s.tally.bytes += bytes.len() as u64;
            let room = KEEP_BYTES.saturating_sub(s.received.len());
            s.received
                .extend_from_slice(&bytes[..bytes.len().min(room)]);
        });
    }

    fn tally(&self) -> Tally {
        self.lock().tally
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn wait_for(&self, done: impl Fn(&Tally) -> bool, timeout: Duration) -> (Tally, bool) {
        let deadline = Instant::now() + crate::scaled(timeout);
        let mut state = self.lock();
        loop {
            if done(&state.tally) {
                return (state.tally, true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (state.tally, false);
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

fn bind_failed(transport: &str, addr: SocketAddr, e: &io::Error) -> ! {
    if e.kind() == io::ErrorKind::AddrInUse {
        panic!(
            "cannot start the {transport} test server: {addr} is busy ({e}). Another process \
             listens there (see `ss -lnp 'sport = :{port}'`), or scenarios are running in \
             parallel: run them with --test-threads=1",
            port = addr.port()
        );
    }
    panic!("cannot start the {transport} test server on {addr}: {e}");
}

/// `30 0c 02 01 ...`: the first bytes as hex, for Debug output.
fn hex_prefix(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(32).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 32 { " ..." } else { "" };
    format!("{}{more}", shown.join(" "))
}

#[cfg(test)]
mod tests {
    use std::{
        io::{Read, Write},
        net::{TcpStream, UdpSocket},
        time::Duration,
    };

    use super::{dns_query, TcpServer, UdpReply, UdpServer, LOOPBACK_V4};

    /// A query for `a.example`, type A, class IN, RD set.
    const QUERY: [u8; 27] = [
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 7, b'e', b'x', b'a', b'm', b'p',
        b'l', b'e', 0, 0, 1, 0, 1,
    ];

    #[test]
    fn parses_the_question_of_a_query() {
        let query = dns_query(&QUERY).expect("a query");
        assert_eq!(query.name, "a.example");
        assert_eq!(query.question_end, QUERY.len());
        let mut response = QUERY;
        response[2] |= 0x80;
        assert_eq!(dns_query(&response), None);
        assert_eq!(dns_query(&QUERY[..20]), None);
    }

    #[test]
    fn tcp_server_counts_connections_and_bytes() {
        // Port 0: the kernel picks a free one, so this unit test never collides.
        let server = TcpServer::http(LOOPBACK_V4, 0);
        let mut client = TcpStream::connect(server.addr()).expect("connect");
        client.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("send");
        let mut answer = String::new();
        client.read_to_string(&mut answer).expect("read");
        assert!(answer.starts_with("HTTP/1.0 200 OK\r\n"), "{answer:?}");
        let (tally, done) = server.wait_for(|t| t.bytes == 18, Duration::from_secs(5));
        assert!(done, "{tally:?}");
        assert_eq!(server.accepted(), 1);
        assert_eq!(server.received(), b"GET / HTTP/1.0\r\n\r\n");
    }

    #[test]
    fn udp_server_answers_nxdomain() {
        let server = UdpServer::start(LOOPBACK_V4, 0, UdpReply::DnsNxDomain);
        let client = UdpSocket::bind((LOOPBACK_V4, 0)).expect("bind");
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        client.send_to(&QUERY, server.addr()).expect("send");
        let mut buf = [0u8; 512];
        let n = client.recv(&mut buf).expect("an answer");
        assert_eq!(&buf[..2], &QUERY[..2], "same id");
        assert_eq!(buf[3] & 0x0f, 3, "NXDOMAIN");
        assert_eq!(&buf[12..n], &QUERY[12..], "question echoed");
        assert_eq!(server.datagrams(), 1);
        assert_eq!(server.bytes(), QUERY.len() as u64);
        assert_eq!(server.dns_names(), ["a.example"]);
    }
}
