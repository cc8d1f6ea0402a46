//! HTTP on h2mux streams: request/response types from the `http` crate, a streaming
//! [`Body`] with back-pressure and trailers, a [`Server`] and a [`Client`] over cleartext
//! HTTP/2 with prior knowledge (h2c). RFC 9113 §8 message mapping.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2mux_proto::{Config, HeaderField, Role};
use h2mux_wire::ErrorCode;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::conn::{self, ConnectionHandle, StreamEvent, StreamReceiver, StreamSender};
use crate::error::Error;

/// A message body: empty, one buffer, a stream of chunks fed by a [`BodySender`], or what
/// the peer is sending.
pub struct Body {
    inner: Inner,
    trailers: Option<HeaderMap>,
}

enum Inner {
    Empty,
    Full(Option<Bytes>),
    Channel(mpsc::Receiver<Chunk>),
    Incoming(StreamReceiver),
}

enum Chunk {
    Data(Bytes),
    Trailers(HeaderMap),
}

/// Feeds a streaming [`Body`]; `send` waits while the reader is behind (bounded queue).
pub struct BodySender {
    tx: mpsc::Sender<Chunk>,
}

impl BodySender {
    /// Sends a chunk; fails when the body's reader is gone.
    pub async fn send(&self, data: Bytes) -> Result<(), Error> {
        self.tx
            .send(Chunk::Data(data))
            .await
            .map_err(|_| Error::ConnectionClosed)
    }
    /// Ends the body with trailers.
    pub async fn send_trailers(self, trailers: HeaderMap) -> Result<(), Error> {
        self.tx
            .send(Chunk::Trailers(trailers))
            .await
            .map_err(|_| Error::ConnectionClosed)
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Body")
    }
}

impl Default for Body {
    fn default() -> Body {
        Body::empty()
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        Body {
            inner: Inner::Full(Some(b)),
            trailers: None,
        }
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body::from(Bytes::from_static(s.as_bytes()))
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        Body::from(Bytes::from(v))
    }
}

impl Body {
    /// No content.
    pub fn empty() -> Body {
        Body {
            inner: Inner::Empty,
            trailers: None,
        }
    }

    /// A streaming body and its feeder; at most `buffer` chunks wait between them.
    pub fn channel(buffer: usize) -> (BodySender, Body) {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        (
            BodySender { tx },
            Body {
                inner: Inner::Channel(rx),
                trailers: None,
            },
        )
    }

    fn incoming(stream: StreamReceiver) -> Body {
        Body {
            inner: Inner::Incoming(stream),
            trailers: None,
        }
    }

    /// The whole content, if the body is one buffer without trailers (sent without a pump).
    fn take_full(&mut self) -> Option<Bytes> {
        match (&mut self.inner, &self.trailers) {
            (Inner::Full(b), None) => Some(b.take().unwrap_or_default()),
            (Inner::Empty, None) => Some(Bytes::new()),
            _ => None,
        }
    }

    /// The whole content and the trailers, if the body is one buffer with trailers.
    fn take_full_with_trailers(&mut self) -> Option<(Bytes, HeaderMap)> {
        match &mut self.inner {
            Inner::Full(_) | Inner::Empty if self.trailers.is_some() => {
                let data = match &mut self.inner {
                    Inner::Full(b) => b.take().unwrap_or_default(),
                    _ => Bytes::new(),
                };
                self.trailers.take().map(|t| (data, t))
            }
            _ => None,
        }
    }

    /// Ends this body with `trailers`, sent after its data (e.g. a complete gRPC response:
    /// messages and status in one body, without a channel or a task).
    pub fn with_trailers(mut self, trailers: HeaderMap) -> Body {
        self.trailers = Some(trailers);
        self
    }

    fn is_empty_now(&self) -> bool {
        match &self.inner {
            Inner::Empty => true,
            Inner::Full(b) => b.as_ref().is_none_or(|b| b.is_empty()),
            _ => false,
        }
    }

    /// The next chunk; `None` at the end. Errors when the stream was reset or the connection
    /// lost.
    pub async fn data(&mut self) -> Option<Result<Bytes, Error>> {
        loop {
            match &mut self.inner {
                Inner::Empty => return None,
                Inner::Full(b) => return b.take().map(Ok),
                Inner::Channel(rx) => {
                    return match rx.recv().await {
                        Some(Chunk::Data(d)) => Some(Ok(d)),
                        Some(Chunk::Trailers(t)) => {
                            self.trailers = Some(t);
                            None
                        }
                        None => None,
                    }
                }
                Inner::Incoming(s) => match s.recv().await {
                    Some(StreamEvent::Data(d, _)) => {
                        if d.is_empty() {
                            continue;
                        }
                        return Some(Ok(d));
                    }
                    Some(StreamEvent::Trailers(t)) => {
                        self.trailers = Some(to_header_map(&t));
                        return None;
                    }
                    Some(StreamEvent::Headers(..)) => continue,
                    Some(StreamEvent::Reset(cause)) => {
                        return Some(Err(Error::StreamReset(format!("{cause:?}"))))
                    }
                    Some(StreamEvent::ConnectionLost(e)) => return Some(Err(e)),
                    None => return None,
                },
            }
        }
    }

    /// Trailers received (after `data` returned `None`).
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }

    /// Reads the whole body, failing beyond `limit` bytes.
    pub async fn collect(mut self, limit: usize) -> Result<Bytes, Error> {
        // A body that arrives as one chunk is returned as that chunk, without a copy.
        let mut first: Option<Bytes> = None;
        let mut out = BytesMut::new();
        while let Some(chunk) = self.data().await {
            let chunk = chunk?;
            let held = first.as_ref().map_or(0, Bytes::len) + out.len();
            if held + chunk.len() > limit {
                return Err(Error::BodyTooLarge { limit });
            }
            match first.take() {
                None if out.is_empty() => first = Some(chunk),
                Some(f) => {
                    out.reserve(f.len() + chunk.len());
                    out.extend_from_slice(&f);
                    out.extend_from_slice(&chunk);
                }
                None => out.extend_from_slice(&chunk),
            }
        }
        Ok(first.unwrap_or_else(|| out.freeze()))
    }
}

fn to_header_map(fields: &[HeaderField]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for f in fields {
        if f.name.starts_with(b":") {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(&f.name),
            HeaderValue::from_bytes(&f.value),
        ) {
            map.append(n, v);
        }
    }
    map
}

fn from_header_map(map: &HeaderMap, out: &mut Vec<HeaderField>) {
    for (n, v) in map {
        // RFC 9113 §8.2.2: connection-specific fields are not sent.
        if matches!(
            n.as_str(),
            "connection"
                | "keep-alive"
                | "proxy-connection"
                | "transfer-encoding"
                | "upgrade"
                | "host"
        ) {
            continue;
        }
        out.push(HeaderField::new(
            Bytes::copy_from_slice(n.as_str().as_bytes()),
            Bytes::copy_from_slice(v.as_bytes()),
        ));
    }
}

/// Sends `body` on `stream`, ending the stream (with trailers when the body has them).
///
/// A chunk is held back only while the next one (or the body's end) is already there, so
/// that END_STREAM rides on the last DATA frame; when the body has nothing more ready the
/// held chunk goes out at once. A streaming body whose writer waits for an answer to what
/// it sent (a gRPC bidi call) must never have that chunk wait for the next one.
async fn send_body(stream: &StreamSender, mut body: Body) -> Result<(), Error> {
    let mut prev: Option<Bytes> = None;
    loop {
        let next = if prev.is_some() {
            // Poll once: `data` is cancel-safe (channel receives).
            tokio::select! {
                biased;
                next = body.data() => Some(next),
                () = std::future::ready(()) => None,
            }
        } else {
            Some(body.data().await)
        };
        match next {
            None => {
                if let Some(p) = prev.take() {
                    stream.send_data(p, false).await?;
                }
            }
            Some(Some(chunk)) => {
                if let Some(p) = prev.replace(chunk?) {
                    stream.send_data(p, false).await?;
                }
            }
            Some(None) => break,
        }
    }
    match body.trailers.take() {
        Some(t) => {
            if let Some(p) = prev {
                stream.send_data(p, false).await?;
            }
            let mut fields = Vec::new();
            from_header_map(&t, &mut fields);
            stream.send_trailers(fields).await
        }
        None => stream.send_data(prev.unwrap_or_default(), true).await,
    }
}

// ---------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------

/// An HTTP/2 server (h2c, prior knowledge). An HTTP/1.1 request is answered with
/// `505 HTTP Version Not Supported` and the connection closed.
pub struct Server {
    listener: TcpListener,
    config: Config,
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// How long a TLS handshake may take before the connection is dropped (handshakes run
/// concurrently, one task each, so a silent client holds only its own).
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl Server {
    /// Binds `addr` (port 0: any free port).
    pub async fn bind(addr: &str, config: Config) -> Result<Server, Error> {
        let listener = TcpListener::bind(addr).await.map_err(|e| Error::Connect {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Server {
            listener,
            config,
            tls: None,
        })
    }

    /// Serves on an already bound listener.
    pub fn from_listener(listener: TcpListener, config: Config) -> Server {
        Server {
            listener,
            config,
            tls: None,
        }
    }

    /// Serves over TLS (ALPN h2 required) instead of h2c.
    pub fn with_tls(mut self, tls: Arc<rustls::ServerConfig>) -> Server {
        self.tls = Some(tls);
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.listener
            .local_addr()
            .map_err(|e| Error::Command(e.to_string()))
    }

    /// Serves connections until the returned future is dropped: each request goes to
    /// `handler` on its own task; a panicking handler resets only its stream.
    pub async fn serve<F, Fut>(self, handler: F) -> Result<(), Error>
    where
        F: Fn(Request<Body>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        loop {
            let (sock, _) = match self.listener.accept().await {
                Ok(s) => s,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = sock.set_nodelay(true);
            let handler = handler.clone();
            let config = self.config.clone();
            let tls = self.tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(tls) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                        let Ok(Ok(stream)) =
                            tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(sock))
                                .await
                        else {
                            return;
                        };
                        if crate::tls::check_alpn(stream.get_ref().1.alpn_protocol()).is_ok() {
                            serve_connection(stream, config, handler).await;
                        }
                    }
                    None => {
                        if let Some(sock) = reject_http1(sock).await {
                            serve_connection(sock, config, handler).await;
                        }
                    }
                }
            });
        }
    }
}

/// Peeks at the first octets: an HTTP/1.x request line gets a 505 and the connection is
/// closed (returns None); anything else goes on to HTTP/2.
async fn reject_http1(mut sock: TcpStream) -> Option<TcpStream> {
    let preface = h2mux_wire::frame::CLIENT_PREFACE;
    let mut buf = [0u8; 24];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.peek(&mut buf)).await {
            Ok(Ok(n)) => n,
            _ => return Some(sock), // the core's own timers deal with a silent peer
        };
        if n == 0 {
            return None;
        }
        if buf[..n] == preface[..n] {
            if n >= 4 {
                return Some(sock);
            }
        } else {
            let looks_http1 = buf[..n]
                .iter()
                .take_while(|b| b.is_ascii_uppercase())
                .count()
                > 0
                && buf[..n].contains(&b' ');
            if looks_http1 {
                let _ = sock
                    .write_all(b"HTTP/1.1 505 HTTP Version Not Supported\r\nconnection: close\r\ncontent-length: 37\r\n\r\nThis server speaks HTTP/2 only (h2c)\n")
                    .await;
                let _ = sock.shutdown().await;
                return None;
            }
            return Some(sock);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn serve_connection<IO, F, Fut>(sock: IO, config: Config, handler: Arc<F>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Body>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let (_conn, mut incoming) = conn::spawn(sock, Role::Server, config);
    while let Some(stream) = incoming.recv().await {
        let handler = handler.clone();
        // Boxed: the task then holds a pointer, and tokio's moves of the task's stage copy
        // 16 bytes instead of the whole request future (three copies of it per request).
        tokio::spawn(Box::pin(async move {
            let (tx, mut rx) = stream.split();
            let Some(StreamEvent::Headers(fields, end_stream)) = rx.recv().await else {
                return;
            };
            let req = match build_request(&fields) {
                Ok(r) => r,
                Err(_) => {
                    tx.reset(ErrorCode::PROTOCOL_ERROR);
                    return;
                }
            };
            let (parts, ()) = req.into_parts();
            let body = if end_stream {
                Body::empty()
            } else {
                Body::incoming(rx)
            };
            // A panicking handler resets only this stream. It runs on this stream's task
            // (not a task of its own: a spawn per request cost ~4 000 instructions of the
            // ~55 000 a small request took, measured with callgrind).
            match catch_unwind((handler)(Request::from_parts(parts, body))).await {
                Ok(resp) => {
                    if send_response(&tx, resp).await.is_err() {
                        tx.reset(ErrorCode::INTERNAL_ERROR);
                    }
                }
                Err(()) => tx.reset(ErrorCode::INTERNAL_ERROR),
            }
        }));
    }
}

/// Polls `fut`, turning a panic into `Err(())` (the panic hook has already reported it).
async fn catch_unwind<F: Future>(fut: F) -> Result<F::Output, ()> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(_) => std::task::Poll::Ready(Err(())),
        }
    })
    .await
}

async fn send_response(tx: &StreamSender, resp: Response<Body>) -> Result<(), Error> {
    let (parts, mut body) = resp.into_parts();
    let mut fields = vec![HeaderField::new(
        &b":status"[..],
        Bytes::copy_from_slice(parts.status.as_str().as_bytes()),
    )];
    from_header_map(&parts.headers, &mut fields);
    let empty = body.is_empty_now() && body.trailers.is_none();
    if empty {
        return tx.send_headers(fields, true).await;
    }
    if let Some(data) = body.take_full() {
        // One buffer: headers and data go to the connection together; the data's answer
        // covers both (commands of a stream are taken in order).
        let headers = tx.start_send_headers(fields, false);
        let data = tx.start_send_data(data, true);
        headers.await?;
        return data.await;
    }
    if let Some((data, trailers)) = body.take_full_with_trailers() {
        // One buffer and trailers: all three go to the connection together.
        let headers = tx.start_send_headers(fields, false);
        let data = (!data.is_empty()).then(|| tx.start_send_data(data, false));
        let mut fields = Vec::new();
        from_header_map(&trailers, &mut fields);
        let trailers = tx.start_send_trailers(fields);
        headers.await?;
        if let Some(d) = data {
            d.await?;
        }
        return trailers.await;
    }
    tx.send_headers(fields, false).await?;
    send_body(tx, body).await
}

/// The method's name, without an allocation for the common ones.
fn method_bytes(m: &Method) -> Bytes {
    let known: &'static [u8] = match *m {
        Method::GET => b"GET",
        Method::POST => b"POST",
        Method::PUT => b"PUT",
        Method::DELETE => b"DELETE",
        Method::HEAD => b"HEAD",
        Method::OPTIONS => b"OPTIONS",
        Method::PATCH => b"PATCH",
        _ => return Bytes::copy_from_slice(m.as_str().as_bytes()),
    };
    Bytes::from_static(known)
}

fn build_request(fields: &[HeaderField]) -> Result<Request<()>, Error> {
    let mut method = None;
    let mut scheme = None;
    let mut authority = None;
    let mut path = None;
    let mut headers = HeaderMap::new();
    for f in fields {
        match &f.name[..] {
            b":method" => {
                method = Some(
                    Method::from_bytes(&f.value)
                        .map_err(|e| Error::InvalidMessage(e.to_string()))?,
                )
            }
            b":scheme" => scheme = Some(f.value.clone()),
            b":authority" => authority = Some(f.value.clone()),
            b":path" => path = Some(f.value.clone()),
            n if n.starts_with(b":") => {}
            n => {
                if let (Ok(n), Ok(v)) =
                    (HeaderName::from_bytes(n), HeaderValue::from_bytes(&f.value))
                {
                    headers.append(n, v);
                }
            }
        }
    }
    let method = method.ok_or_else(|| Error::InvalidMessage("no :method".into()))?;
    // Zero-copy from the decoded fields (the URI parts validate what they are given).
    let invalid = |e: http::Error| Error::InvalidMessage(e.to_string());
    let mut uri = http::uri::Parts::default();
    if let Some(s) = scheme {
        uri.scheme = Some(http::uri::Scheme::try_from(&s[..]).map_err(|e| invalid(e.into()))?);
    }
    if let Some(a) = authority {
        uri.authority =
            Some(http::uri::Authority::from_maybe_shared(a).map_err(|e| invalid(e.into()))?);
    }
    let path = path.unwrap_or_else(|| Bytes::from_static(b"/"));
    uri.path_and_query =
        Some(http::uri::PathAndQuery::from_maybe_shared(path).map_err(|e| invalid(e.into()))?);
    let uri = Uri::from_parts(uri).map_err(|e| invalid(e.into()))?;
    let mut req = Request::new(());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    Ok(req)
}

// ---------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------

/// An HTTP/2 client on one connection (h2c, prior knowledge). Cloneable; clones share the
/// connection and multiplex their requests on it. Requests beyond the server's
/// SETTINGS_MAX_CONCURRENT_STREAMS wait in the connection's queue.
#[derive(Clone, Debug)]
pub struct Client {
    conn: ConnectionHandle,
    authority: String,
}

impl Client {
    /// Connects to `addr` (`host:port`) with the default [`Config`].
    pub async fn connect(addr: &str) -> Result<Client, Error> {
        Client::connect_with(addr, Config::default()).await
    }

    /// Connects to `addr` with `config`.
    pub async fn connect_with(addr: &str, config: Config) -> Result<Client, Error> {
        let sock = TcpStream::connect(addr).await.map_err(|e| Error::Connect {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
        let _ = sock.set_nodelay(true);
        let (conn, _) = conn::spawn(sock, Role::Client, config);
        Ok(Client {
            conn,
            authority: addr.to_string(),
        })
    }

    /// Connects over TLS to `addr`, verifying the certificate for `server_name` with `tls`
    /// (see [`crate::tls`]); the session must negotiate ALPN h2.
    pub async fn connect_tls(
        addr: &str,
        server_name: &str,
        tls: Arc<rustls::ClientConfig>,
        config: Config,
    ) -> Result<Client, Error> {
        let sock = TcpStream::connect(addr).await.map_err(|e| Error::Connect {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
        let _ = sock.set_nodelay(true);
        let name = rustls::pki_types::ServerName::try_from(server_name.to_string())
            .map_err(|e| Error::Tls(format!("{server_name:?} is not a valid server name: {e}")))?;
        let connector = tokio_rustls::TlsConnector::from(tls);
        let stream = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, connector.connect(name, sock))
            .await
            .map_err(|_| Error::Timeout(TLS_HANDSHAKE_TIMEOUT))?
            .map_err(|e| Error::Tls(format!("handshake with {addr} failed: {e}")))?;
        crate::tls::check_alpn(stream.get_ref().1.alpn_protocol())?;
        let (conn, _) = conn::spawn(stream, Role::Client, config);
        Ok(Client {
            conn,
            authority: server_name.to_string(),
        })
    }

    /// Sends a request and waits for the response head; the response body streams.
    pub async fn send(&self, req: Request<Body>) -> Result<Response<Body>, Error> {
        let (parts, body) = req.into_parts();
        let scheme = match parts.uri.scheme_str() {
            None | Some("http") => Bytes::from_static(b"http"),
            Some("https") => Bytes::from_static(b"https"),
            Some(other) => Bytes::copy_from_slice(other.as_bytes()),
        };
        let authority = parts
            .uri
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_else(|| self.authority.clone());
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let mut fields = vec![
            HeaderField::new(&b":method"[..], method_bytes(&parts.method)),
            HeaderField::new(&b":scheme"[..], scheme),
            HeaderField::new(&b":authority"[..], Bytes::from(authority)),
            HeaderField::new(&b":path"[..], Bytes::from(path)),
        ];
        from_header_map(&parts.headers, &mut fields);
        let mut body = body;
        let end_stream = body.is_empty_now() && body.trailers.is_none();
        // The stream is usable at once; if it cannot be opened its first event says why.
        let (stream, _opened) = self.conn.start_open(fields, end_stream);
        let (tx, mut rx) = stream.split();
        let pump = if end_stream {
            None
        } else if let Some(data) = body.take_full() {
            // One buffer: queued behind the HEADERS, no task needed. Back-pressure does not
            // matter for a buffer the caller already holds whole.
            drop(tx.start_send_data(data, true));
            None
        } else {
            Some(tokio::spawn(async move {
                if send_body(&tx, body).await.is_err() {
                    tx.reset(ErrorCode::CANCEL);
                }
            }))
        };
        loop {
            match rx.recv().await {
                Some(StreamEvent::Headers(fields, end)) => {
                    let status = fields
                        .iter()
                        .find(|f| &f.name[..] == b":status")
                        .and_then(|f| std::str::from_utf8(&f.value).ok()?.parse::<u16>().ok())
                        .ok_or_else(|| Error::InvalidMessage("response without :status".into()))?;
                    if (100..200).contains(&status) && !end {
                        continue; // informational
                    }
                    let mut resp = Response::builder()
                        .status(status)
                        .body(())
                        .map_err(|e| Error::InvalidMessage(e.to_string()))?;
                    *resp.headers_mut() = to_header_map(&fields);
                    let body = if end {
                        Body::empty()
                    } else {
                        Body::incoming(rx)
                    };
                    drop(pump);
                    let (parts, ()) = resp.into_parts();
                    return Ok(Response::from_parts(parts, body));
                }
                Some(StreamEvent::Reset(cause)) => {
                    return Err(Error::StreamReset(format!("{cause:?}")))
                }
                Some(StreamEvent::ConnectionLost(e)) => return Err(e),
                Some(_) => continue,
                None => return Err(Error::ConnectionClosed),
            }
        }
    }

    /// GET `path` and read the whole body (at most `limit` bytes).
    pub async fn get(&self, path: &str, limit: usize) -> Result<(http::StatusCode, Bytes), Error> {
        let req = Request::get(path)
            .body(Body::empty())
            .map_err(|e| Error::InvalidMessage(e.to_string()))?;
        let resp = self.send(req).await?;
        let status = resp.status();
        Ok((status, resp.into_body().collect(limit).await?))
    }

    /// Starts a graceful shutdown of the connection.
    pub fn close(&self) {
        self.conn.shutdown();
    }

    /// The connection underneath: open raw streams, read its limits and health
    /// ([`ConnectionHandle::is_going_away`], [`ConnectionHandle::peer_max_concurrent_streams`]).
    pub fn connection(&self) -> &ConnectionHandle {
        &self.conn
    }
}
