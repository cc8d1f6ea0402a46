//! A blocking HTTP/2 client for code that does not run an async runtime (as the JDK client
//! offers both, MISSION.md): [`Client`] wraps [`crate::Client`] and a small tokio runtime of
//! its own (one worker thread that drives the connection), and every call blocks the calling
//! thread until it is done. The response body is a [`std::io::Read`].
//!
//! ```no_run
//! use std::io::Read;
//! let client = h2mux::blocking::Client::connect("127.0.0.1:8080").unwrap();
//! let resp = client.send(http::Request::get("/").body(h2mux::Body::empty()).unwrap()).unwrap();
//! let mut text = String::new();
//! resp.into_body().read_to_string(&mut text).unwrap();
//! ```
//!
//! Calling it from inside an async runtime would block that runtime's thread; it refuses
//! with [`Error::Command`] instead (use [`crate::Client`] there). A streaming request body
//! is fed from a plain thread with [`crate::BodySender::blocking_send`].

use std::future::Future;
use std::io;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use http::{HeaderMap, Request, Response, StatusCode};

use crate::error::Error;
use crate::http::ClientOptions;

/// A blocking HTTP/2 client on one connection. Cloneable: clones share the connection (and
/// the runtime) and may be used from several threads at once; their requests multiplex.
#[derive(Clone, Debug)]
pub struct Client {
    rt: Arc<Runtime>,
    inner: crate::Client,
}

/// The client's runtime; dropped with `shutdown_background`, which (unlike dropping a
/// runtime) is allowed anywhere, also inside another runtime.
#[derive(Debug)]
struct Runtime(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for Runtime {
    type Target = tokio::runtime::Runtime;
    fn deref(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("present until drop")
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

fn runtime() -> Result<Arc<Runtime>, Error> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::Command(
            "h2mux::blocking::Client cannot be used from inside an async runtime; use h2mux::Client"
                .into(),
        ));
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("h2mux-blocking")
        .enable_all()
        .build()
        .map(|rt| Arc::new(Runtime(Some(rt))))
        .map_err(|e| Error::Command(format!("cannot start the client's runtime: {e}")))
}

/// Runs `f` to completion on `rt`, from a thread outside any runtime.
fn block_on<T>(
    rt: &tokio::runtime::Runtime,
    f: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::Command(
            "a blocking h2mux call was made from inside an async runtime; use h2mux::Client".into(),
        ));
    }
    rt.block_on(f)
}

impl Client {
    /// Connects to `addr` (`host:port`, h2c) with the default [`ClientOptions`].
    pub fn connect(addr: &str) -> Result<Client, Error> {
        Client::connect_with_options(addr, &ClientOptions::default())
    }

    /// Connects to `addr` (h2c) with `options` (timeouts included).
    pub fn connect_with_options(addr: &str, options: &ClientOptions) -> Result<Client, Error> {
        let rt = runtime()?;
        let inner = block_on(&rt, crate::Client::connect_with_options(addr, options))?;
        Ok(Client { rt, inner })
    }

    /// Connects over TLS (see [`crate::Client::connect_tls_with_options`]).
    pub fn connect_tls(
        addr: &str,
        server_name: &str,
        tls: Arc<rustls::ClientConfig>,
        options: &ClientOptions,
    ) -> Result<Client, Error> {
        let rt = runtime()?;
        let inner = block_on(
            &rt,
            crate::Client::connect_tls_with_options(addr, server_name, tls, options),
        )?;
        Ok(Client { rt, inner })
    }

    /// Sends a request and blocks until the response head; the body is read with
    /// [`Body`]'s `Read` implementation (or [`Body::chunk`]).
    pub fn send(&self, req: Request<crate::Body>) -> Result<Response<Body>, Error> {
        let resp = block_on(&self.rt, self.inner.send(req))?;
        let (parts, body) = resp.into_parts();
        Ok(Response::from_parts(
            parts,
            Body {
                rt: self.rt.clone(),
                inner: body,
                current: Bytes::new(),
            },
        ))
    }

    /// GET `path` and read the whole body (at most `limit` bytes).
    pub fn get(&self, path: &str, limit: usize) -> Result<(StatusCode, Bytes), Error> {
        block_on(&self.rt, self.inner.get(path, limit))
    }

    /// The async client underneath (same connection).
    pub fn as_async(&self) -> &crate::Client {
        &self.inner
    }

    /// Graceful close: GOAWAY, requests in flight finish, then the connection ends; blocks
    /// until it has.
    pub fn close(&self) -> Result<(), Error> {
        block_on(&self.rt, async {
            self.inner.close_and_wait().await;
            Ok(())
        })
    }
}

/// A response body read by blocking calls.
pub struct Body {
    rt: Arc<Runtime>,
    inner: crate::Body,
    current: Bytes,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("blocking::Body")
    }
}

impl Body {
    /// The next chunk (`None` at the end), blocking until it arrives.
    pub fn chunk(&mut self) -> Option<Result<Bytes, Error>> {
        if !self.current.is_empty() {
            return Some(Ok(std::mem::take(&mut self.current)));
        }
        match block_on(&self.rt, async { Ok(self.inner.data().await) }) {
            Ok(c) => c,
            Err(e) => Some(Err(e)),
        }
    }

    /// Reads the whole (rest of the) body, failing beyond `limit` bytes.
    pub fn collect(mut self, limit: usize) -> Result<Bytes, Error> {
        let mut out = bytes::BytesMut::new();
        while let Some(c) = self.chunk() {
            let c = c?;
            if out.len() + c.len() > limit {
                return Err(Error::BodyTooLarge { limit });
            }
            out.extend_from_slice(&c);
        }
        Ok(out.freeze())
    }

    /// Trailers received (after the body's end).
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.inner.trailers()
    }
}

impl io::Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.current.is_empty() {
            match self.chunk() {
                None => return Ok(0),
                Some(Ok(c)) => self.current = c,
                Some(Err(e)) => return Err(io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}
