//! A fault proxy on loopback between accel and the local cloud.
//!
//! [`FaultProxy::start`] listens on a free port of 127.0.0.1 and forwards to
//! the shared local cloud. It speaks just enough HTTP/1.1 to forward one
//! request per connection: it reads the request (head, then a
//! `Content-Length` or chunked body), sends it upstream with
//! `Connection: close`, reads the answer to its end and passes it back with
//! `Connection: close`. So the SDK's pooled keep-alive connections never
//! outlive one call, and every call meets the mode of its own time.
//!
//! The mode switches at run time ([`FaultProxy::set`]): [`Mode::Pass`],
//! [`Mode::Refuse`] (the port is closed: connections are refused),
//! [`Mode::Blackhole`] (connections are accepted and never answered) and the
//! one-shot [`Mode::DropNextAnswer`] (the next matching request reaches the
//! cloud, which acts, but its answer is lost). A switch to `Refuse` or
//! `Blackhole`, or away from `Blackhole`, closes the connections open at the
//! time, as a real outage (or its end) would.
//!
//! Threads only (one per connection, at most [`MAX_CONNECTIONS`]); dropping
//! the proxy closes the port and every connection.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::support::LocalCloud;

/// Connections served at once; more are closed as soon as accepted.
const MAX_CONNECTIONS: usize = 256;

/// The longest a request or an answer may take to arrive (a safety net: a
/// test's proxy never keeps a thread for longer).
const IO_LIMIT: Duration = Duration::from_secs(300);

/// What the proxy does with connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Forwards requests and answers.
    Pass,
    /// Nothing listens on the port: connections are refused.
    Refuse,
    /// Connections are accepted and requests read, but nothing is ever answered.
    Blackhole,
    /// Passes, except that the first request whose bytes (head and body)
    /// contain this text reaches the cloud while its answer is dropped: the
    /// client's connection closes without a byte. Then back to `Pass`.
    DropNextAnswer(String),
}

/// A running proxy: see the module documentation.
pub(crate) struct FaultProxy {
    shared: Arc<Shared>,
    address: SocketAddr,
    listener: Option<JoinHandle<()>>,
}

struct Shared {
    upstream: SocketAddr,
    mode: Mutex<Mode>,
    stop: AtomicBool,
    /// Every open socket (client and upstream sides), by connection.
    open: Mutex<HashMap<u64, Vec<TcpStream>>>,
    next_id: AtomicU64,
    connections: AtomicUsize,
    forwarded: AtomicUsize,
    dropped: AtomicUsize,
}

impl Shared {
    fn mode(&self) -> Mode {
        self.mode.lock().unwrap().clone()
    }

    fn track(&self, id: u64, stream: &TcpStream) {
        if let Ok(clone) = stream.try_clone() {
            self.open.lock().unwrap().entry(id).or_default().push(clone);
        }
    }

    fn close_all(&self) {
        for (_, streams) in self.open.lock().unwrap().drain() {
            for stream in streams {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}

impl FaultProxy {
    /// A proxy in [`Mode::Pass`] in front of the shared local cloud.
    pub(crate) fn start() -> FaultProxy {
        let upstream = LocalCloud::shared().endpoint().trim_start_matches("http://").parse().expect("host:port");
        FaultProxy::to(upstream)
    }

    /// A proxy in [`Mode::Pass`] in front of `upstream`.
    fn to(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port on loopback");
        let address = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream,
            mode: Mutex::new(Mode::Pass),
            stop: AtomicBool::new(false),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            connections: AtomicUsize::new(0),
            forwarded: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
        });
        let accept = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("fault-proxy".into())
                .spawn(move || accept_loop(&shared, listener, address))
                .unwrap()
        };
        FaultProxy { shared, address, listener: Some(accept) }
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Switches the mode. A switch to `Refuse` or `Blackhole`, or away from
    /// `Blackhole`, closes the connections open now.
    pub(crate) fn set(&self, mode: Mode) {
        let previous = std::mem::replace(&mut *self.shared.mode.lock().unwrap(), mode.clone());
        let cuts = |m: &Mode| matches!(m, Mode::Refuse | Mode::Blackhole);
        if previous != mode && (cuts(&mode) || previous == Mode::Blackhole) {
            self.shared.close_all();
        }
    }

    /// The mode now (a `DropNextAnswer` that fired reads `Pass`).
    pub(crate) fn mode(&self) -> Mode {
        self.shared.mode()
    }

    /// Requests forwarded to the cloud so far (dropped answers included).
    pub(crate) fn forwarded(&self) -> usize {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Answers dropped so far by [`Mode::DropNextAnswer`].
    pub(crate) fn dropped(&self) -> usize {
        self.shared.dropped.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.listener.take() {
            let _ = accept.join();
        }
        self.shared.close_all();
    }
}

/// Accepts connections while the mode is not `Refuse`; in `Refuse` the
/// port is closed, and opened again (same address) when the mode changes.
fn accept_loop(shared: &Arc<Shared>, listener: TcpListener, address: SocketAddr) {
    listener.set_nonblocking(true).unwrap();
    let mut listener = Some(listener);
    while !shared.stop.load(Ordering::SeqCst) {
        let refusing = shared.mode() == Mode::Refuse;
        if refusing {
            listener = None;
        } else if listener.is_none() {
            // std sets SO_REUSEADDR: the port binds again at once (else
            // this is tried again, and clients meet a refusal meanwhile).
            if let Ok(bound) = TcpListener::bind(address) {
                bound.set_nonblocking(true).unwrap();
                listener = Some(bound);
            }
        }
        let Some(open) = &listener else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        match open.accept() {
            Ok((client, _)) => {
                client.set_nonblocking(false).unwrap();
                if shared.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                    shared.connections.fetch_sub(1, Ordering::SeqCst);
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let shared = shared.clone();
                let spawned = std::thread::Builder::new().name("fault-proxy-conn".into()).spawn(move || {
                    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
                    shared.track(id, &client);
                    let _ = serve(&shared, id, &client);
                    let _ = client.shutdown(Shutdown::Both);
                    shared.open.lock().unwrap().remove(&id);
                    shared.connections.fetch_sub(1, Ordering::SeqCst);
                });
                spawned.expect("a thread for a connection");
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// One connection: at most one request, answered (or not) as the mode says.
fn serve(shared: &Shared, id: u64, client: &TcpStream) -> io::Result<()> {
    client.set_read_timeout(Some(IO_LIMIT))?;
    client.set_write_timeout(Some(IO_LIMIT))?;
    match shared.mode() {
        Mode::Refuse => return Ok(()),
        Mode::Blackhole => return hold(shared, client),
        Mode::Pass | Mode::DropNextAnswer(_) => {}
    }
    let mut reader = BufReader::new(client.try_clone()?);
    let Some(request) = read_request(&mut reader)? else { return Ok(()) };
    // The one-shot drop fires once, for the first match.
    let drop_answer = {
        let mut mode = shared.mode.lock().unwrap();
        match &*mode {
            Mode::Refuse => return Ok(()),
            Mode::Blackhole => {
                drop(mode);
                return hold(shared, client);
            }
            Mode::DropNextAnswer(needle) if contains(&request, needle.as_bytes()) => {
                *mode = Mode::Pass;
                true
            }
            Mode::Pass | Mode::DropNextAnswer(_) => false,
        }
    };
    let mut upstream = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(5))?;
    shared.track(id, &upstream);
    upstream.set_read_timeout(Some(IO_LIMIT))?;
    upstream.write_all(&request)?;
    shared.forwarded.fetch_add(1, Ordering::SeqCst);
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer)?;
    if drop_answer {
        shared.dropped.fetch_add(1, Ordering::SeqCst);
        return Ok(());
    }
    let mut client = client;
    client.write_all(&closing(&answer))?;
    client.flush()
}

/// Keeps a connection open without answering until the mode changes (the
/// switch closes it) or the client gives up.
fn hold(shared: &Shared, client: &TcpStream) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut sink = [0u8; 8192];
    let mut client = client;
    while !shared.stop.load(Ordering::SeqCst) && shared.mode() == Mode::Blackhole {
        match client.read(&mut sink) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Headers the proxy owns: the connection's fate and `Expect` (no interim answers).
fn hop_by_hop(line: &[u8]) -> bool {
    let name = line.split(|b| *b == b':').next().unwrap_or_default();
    let name = String::from_utf8_lossy(name).trim().to_ascii_lowercase();
    matches!(name.as_str(), "connection" | "keep-alive" | "proxy-connection" | "expect")
}

/// Reads one request: its head (rewritten to `Connection: close`) and its
/// body, by `Content-Length` or chunked. `None` when the client closed first.
fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    let mut length = 0usize;
    let mut chunked = false;
    let mut first = true;
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return if first { Ok(None) } else { Err(io::ErrorKind::UnexpectedEof.into()) };
        }
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !first {
            let text = String::from_utf8_lossy(&line).to_ascii_lowercase();
            if let Some(value) = text.strip_prefix("content-length:") {
                length = value.trim().parse().map_err(|_| io::Error::other("bad Content-Length"))?;
            }
            if text.starts_with("transfer-encoding:") && text.contains("chunked") {
                chunked = true;
            }
            if hop_by_hop(&line) {
                continue;
            }
        }
        first = false;
        head.extend_from_slice(&line);
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    if chunked {
        read_chunks(reader, &mut head)?;
    } else {
        let start = head.len();
        head.resize(start + length, 0);
        reader.read_exact(&mut head[start..])?;
    }
    Ok(Some(head))
}

/// Copies a chunked body as it is, to its last chunk and trailers.
fn read_chunks(reader: &mut impl BufRead, out: &mut Vec<u8>) -> io::Result<()> {
    loop {
        let mut line = Vec::new();
        reader.read_until(b'\n', &mut line)?;
        out.extend_from_slice(&line);
        let size = String::from_utf8_lossy(&line);
        let size = size.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| io::Error::other("bad chunk size"))?;
        if size == 0 {
            loop {
                let mut trailer = Vec::new();
                if reader.read_until(b'\n', &mut trailer)? == 0 {
                    return Ok(());
                }
                out.extend_from_slice(&trailer);
                if trailer == b"\r\n" || trailer == b"\n" {
                    return Ok(());
                }
            }
        }
        let start = out.len();
        out.resize(start + size + 2, 0);
        reader.read_exact(&mut out[start..])?;
    }
}

/// The answer with `Connection: close` in its head, so the client does not
/// keep the connection for another call.
fn closing(answer: &[u8]) -> Vec<u8> {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else { return answer.to_vec() };
    let mut out = Vec::with_capacity(answer.len() + 20);
    for (i, line) in answer[..end].split(|b| *b == b'\n').enumerate() {
        if i > 0 && hop_by_hop(line) {
            continue;
        }
        out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&answer[end + 4..]);
    out
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};

    use super::*;
    use crate::support::{REGION, TestContext};

    /// An S3 client through `proxy`: one attempt, calls limited to `limit`.
    fn s3_through(proxy: &FaultProxy, limit: Duration) -> aws_sdk_s3::Client {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(proxy.endpoint())
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new("t", "t", None, None, "t")))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(aws_config::timeout::TimeoutConfig::builder().operation_timeout(limit).build())
            .build();
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build())
    }

    /// A raw `GET` of the cloud's call log through the proxy.
    fn get(address: &str) -> io::Result<String> {
        let mut stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        write!(stream, "GET /_accel/calls/nobody HTTP/1.1\r\nHost: {address}\r\n\r\n")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    }

    #[test]
    fn chunked_bodies_and_answers_are_rewritten() {
        let raw = b"POST / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n3\r\nabc\r\n0\r\n\r\nNEXT";
        let mut reader = BufReader::new(&raw[..]);
        let request = read_request(&mut reader).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(request).unwrap(),
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        );
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "NEXT", "one request read, no more");
        let answer = closing(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok");
        assert_eq!(
            String::from_utf8(answer).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn passes_refuses_blackholes_and_drops_one_answer() {
        let ctx = TestContext::new().with_cloud();
        let proxy = FaultProxy::start();
        let address = proxy.endpoint().trim_start_matches("http://").to_string();
        let s3 = s3_through(&proxy, Duration::from_secs(5));

        // Pass: raw HTTP and SDK calls (several, over what would be pooled connections).
        let answer = get(&address).unwrap();
        assert!(answer.starts_with("HTTP/1.") && answer.contains(" 200 "), "{answer}");
        assert!(answer.contains("Connection: close") && answer.ends_with("[]"), "{answer}");
        let bucket = format!("proxy-{}", std::process::id());
        s3.create_bucket().bucket(&bucket).send().await.expect("create_bucket through the proxy");
        for _ in 0..3 {
            s3.head_bucket().bucket(&bucket).send().await.expect("head_bucket through the proxy");
        }

        // Refuse: the port is closed.
        proxy.set(Mode::Refuse);
        std::thread::sleep(Duration::from_millis(100));
        let refused = TcpStream::connect(&address).map(|_| ()).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused, "{refused}");
        assert!(s3.head_bucket().bucket(&bucket).send().await.is_err());
        proxy.set(Mode::Pass);
        std::thread::sleep(Duration::from_millis(100));
        s3.head_bucket().bucket(&bucket).send().await.expect("back after Refuse");

        // Blackhole: connected, never answered; the client times out.
        proxy.set(Mode::Blackhole);
        let mut held = TcpStream::connect(&address).unwrap();
        write!(held, "GET /_accel/calls/nobody HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
        held.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let silent = held.read(&mut [0u8; 16]).unwrap_err();
        assert!(matches!(silent.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut), "{silent}");
        let started = Instant::now();
        let timed_out = s3_through(&proxy, Duration::from_secs(1)).head_bucket().bucket(&bucket).send().await;
        let error = timed_out.unwrap_err();
        assert!(matches!(error, aws_sdk_s3::error::SdkError::TimeoutError(_)), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
        // Leaving Blackhole closes the held connection.
        proxy.set(Mode::Pass);
        held.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        assert!(matches!(held.read(&mut [0u8; 16]), Ok(0) | Err(_)), "closed when the mode changed");
        s3.head_bucket().bucket(&bucket).send().await.expect("back after Blackhole");

        // DropNextAnswer: the cloud acts, the client hears nothing; once.
        let other = format!("{bucket}-dropped");
        proxy.set(Mode::DropNextAnswer(format!("PUT /{other}")));
        let lost = s3.create_bucket().bucket(&other).send().await;
        assert!(lost.is_err(), "the answer was dropped: {lost:?}");
        assert_eq!(proxy.dropped(), 1);
        assert_eq!(proxy.mode(), Mode::Pass);
        ctx.s3().head_bucket().bucket(&other).send().await.expect("the cloud created the bucket");
        s3.head_bucket().bucket(&other).send().await.expect("only one answer dropped");
        assert!(proxy.forwarded() >= 8, "{}", proxy.forwarded());
    }

    #[test]
    fn dropping_the_proxy_closes_its_port() {
        let proxy = FaultProxy::start();
        let address = proxy.endpoint().trim_start_matches("http://").to_string();
        assert!(get(&address).unwrap().contains(" 200 "));
        drop(proxy);
        assert!(TcpStream::connect(&address).is_err());
    }
}
