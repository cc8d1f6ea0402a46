//! One call on the channel, client side of the gRPC over HTTP/2 spec: request messages
//! out, response head, messages and the status trailers in; deadline, size limits and
//! cancellation enforced here.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2mux::conn::{SendTicket, StreamEvent, StreamHandle, StreamReceiver, StreamSender};
use h2mux::proto::{HeaderField, ResetCause};
use h2mux::wire::ErrorCode;
use tokio::time::Instant;

use super::{deadline_exceeded, Conn};
use crate::codec::Codec;
use crate::compression::Encoding;
use crate::message::{self, MessageDecoder};
use crate::metadata::Metadata;
use crate::status::{Code, Status};

/// Counts a call as active on its connection until it is dropped.
pub(crate) struct ActiveCall(Arc<Conn>);

impl ActiveCall {
    /// Takes over the count `pick` added.
    pub(crate) fn new(conn: Arc<Conn>) -> ActiveCall {
        ActiveCall(conn)
    }
    pub(crate) fn conn(&self) -> &Conn {
        &self.0
    }
}

impl Drop for ActiveCall {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A call in progress. Dropping it before its status arrived cancels it: the stream is
/// reset with CANCEL, which the server sees as a cancelled call.
pub struct OutgoingCall {
    _active: ActiveCall,
    tx: StreamSender,
    rx: StreamReceiver,
    deadline: Option<Instant>,
    send_encoding: Encoding,
    max_send: usize,
    max_receive: usize,
    /// END_STREAM of the request side was sent.
    sent_end: bool,
    /// The response head arrived (messages may follow).
    head: bool,
    decoder: MessageDecoder,
    reply_encoding: Encoding,
    buf: BytesMut,
    /// The stream is over; this status is delivered once the buffered messages are read.
    ending: Option<Status>,
    initial: Metadata,
    trailing: Metadata,
    status: Option<Status>,
}

impl Drop for OutgoingCall {
    fn drop(&mut self) {
        if self.status.is_none() {
            self.tx.reset(ErrorCode::CANCEL);
        }
    }
}

/// The gRPC status for an HTTP status other than 200 (the spec's "HTTP to gRPC Status
/// Code Mapping").
fn status_for_http(code: u16) -> Status {
    let c = match code {
        400 => Code::INTERNAL,
        401 => Code::UNAUTHENTICATED,
        403 => Code::PERMISSION_DENIED,
        404 => Code::UNIMPLEMENTED,
        429 | 502..=504 => Code::UNAVAILABLE,
        _ => Code::UNKNOWN,
    };
    Status::new(c, format!("HTTP status {code} instead of a gRPC response"))
}

/// The gRPC status for a reset stream (the spec's "Errors" mapping of RST_STREAM codes).
fn status_for_reset(cause: &ResetCause) -> Status {
    let code = match cause {
        ResetCause::GoAway => {
            return Status::new(
                Code::UNAVAILABLE,
                "the server went away (GOAWAY) before processing the call",
            )
        }
        ResetCause::Remote(c) => *c,
        ResetCause::Local(e) => {
            return Status::new(Code::INTERNAL, format!("protocol error on the stream: {e}"))
        }
    };
    let c = match code {
        ErrorCode::REFUSED_STREAM => Code::UNAVAILABLE,
        ErrorCode::CANCEL => Code::CANCELLED,
        ErrorCode::ENHANCE_YOUR_CALM => Code::RESOURCE_EXHAUSTED,
        ErrorCode::INADEQUATE_SECURITY => Code::PERMISSION_DENIED,
        _ => Code::INTERNAL,
    };
    Status::new(c, format!("the server reset the stream ({code:?})"))
}

fn field<'a>(fields: &'a [HeaderField], name: &[u8]) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|f| &f.name[..] == name)
        .map(|f| &f.value[..])
}

fn metadata_of(fields: &[HeaderField]) -> Metadata {
    // A peer's bad entry is skipped rather than failing the call.
    let mut md = Metadata::new();
    for f in fields {
        if let Ok(one) = Metadata::from_fields([(&f.name[..], &f.value[..])]) {
            for (k, v) in one.iter() {
                let _ = if k.ends_with("-bin") {
                    md.insert_bin(k, v)
                } else {
                    md.insert(k, &String::from_utf8_lossy(v))
                };
            }
        }
    }
    md
}

fn status_of(fields: &[HeaderField]) -> Status {
    Status::from_trailers(
        field(fields, b"grpc-status"),
        field(fields, b"grpc-message"),
    )
}

/// `fut`'s output, or None when `deadline` passed first.
pub(super) async fn within<T>(
    deadline: Option<Instant>,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    match deadline {
        None => Some(fut.await),
        Some(d) => tokio::time::timeout_at(d, fut).await.ok(),
    }
}

impl OutgoingCall {
    pub(crate) fn new(
        active: ActiveCall,
        stream: StreamHandle,
        deadline: Option<Instant>,
        gzip: bool,
        max_send: usize,
        max_receive: usize,
    ) -> OutgoingCall {
        let (tx, rx) = stream.split();
        OutgoingCall {
            _active: active,
            tx,
            rx,
            deadline,
            send_encoding: if gzip {
                Encoding::Gzip
            } else {
                Encoding::Identity
            },
            max_send,
            max_receive,
            sent_end: false,
            head: false,
            decoder: MessageDecoder::new(max_receive, None),
            reply_encoding: Encoding::Identity,
            buf: BytesMut::new(),
            ending: None,
            initial: Metadata::new(),
            trailing: Metadata::new(),
            status: None,
        }
    }

    /// The stream's id on its connection (for logs).
    pub fn stream_id(&self) -> u32 {
        self.tx.id().value()
    }

    /// Sends one request message.
    pub async fn send(&mut self, msg: &[u8]) -> Result<(), Status> {
        self.send_message(msg, false).await
    }

    /// Sends the last request message and ends the request side in the same DATA frame.
    pub async fn send_last(&mut self, msg: &[u8]) -> Result<(), Status> {
        self.send_message(msg, true).await
    }

    /// Sends one typed message through `codec`.
    pub async fn send_with<C: Codec>(&mut self, codec: &C, item: &C::Encode) -> Result<(), Status> {
        let mut b = BytesMut::new();
        codec.encode(item, &mut b)?;
        self.send(&b).await
    }

    /// No more request messages (END_STREAM).
    pub async fn finish(&mut self) -> Result<(), Status> {
        if self.sent_end || self.status.is_some() {
            return Ok(());
        }
        self.sent_end = true;
        let sent = within(self.deadline, self.tx.send_data(Bytes::new(), true)).await;
        match sent {
            Some(r) => r.map_err(|e| self.send_failed(e)),
            None => Err(self.cancel_with(deadline_exceeded())),
        }
    }

    async fn send_message(&mut self, msg: &[u8], last: bool) -> Result<(), Status> {
        let sent = self.queue_message(msg, last)?;
        self.await_sent(sent).await
    }

    /// Checks and frames one request message and hands it to the connection without
    /// waiting; [`OutgoingCall::await_sent`] waits for the connection to take it.
    pub(crate) fn queue_message(&mut self, msg: &[u8], last: bool) -> Result<SendTicket, Status> {
        if let Some(s) = &self.status {
            return Err(if s.code == Code::OK {
                Status::new(Code::INTERNAL, "send on a call that has ended")
            } else {
                s.clone()
            });
        }
        if self.sent_end {
            return Err(Status::new(Code::INTERNAL, "send after finish"));
        }
        if msg.len() > self.max_send {
            let s = Status::new(
                Code::RESOURCE_EXHAUSTED,
                format!(
                    "request message of {} octets is larger than the limit of {}",
                    msg.len(),
                    self.max_send
                ),
            );
            return Err(self.cancel_with(s));
        }
        let mut b = BytesMut::new();
        message::encode(msg, self.send_encoding, &mut b);
        self.sent_end = last;
        Ok(self.tx.start_send_data(b.freeze(), last))
    }

    /// Waits (within the deadline) until the connection has taken a queued message.
    pub(crate) async fn await_sent(&mut self, sent: SendTicket) -> Result<(), Status> {
        match within(self.deadline, sent).await {
            None => Err(self.cancel_with(deadline_exceeded())),
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => {
                let fallback = self.send_failed(e);
                // The server ended the call (its status is on the receive side already).
                Err(self.status_after_send_failure(fallback).await)
            }
        }
    }

    /// The call was never opened (its connection went away first): nothing to cancel.
    pub(crate) fn never_opened(mut self) {
        self.status = Some(Status::new(Code::UNAVAILABLE, "never opened"));
    }

    fn send_failed(&self, e: h2mux::Error) -> Status {
        Status::new(
            Code::UNAVAILABLE,
            format!("the call's stream is closed: {e}"),
        )
    }

    /// After a failed send, the status the server gave (read within a short bound).
    async fn status_after_send_failure(&mut self, fallback: Status) -> Status {
        let bound = Instant::now() + Duration::from_secs(1);
        let bound = self.deadline.map_or(bound, |d| d.min(bound));
        let drain = async {
            while let Some(m) = self.recv().await {
                if let Err(s) = m {
                    return Some(s);
                }
            }
            self.status.clone()
        };
        match tokio::time::timeout_at(bound, drain).await {
            Ok(Some(s)) if s.code != Code::OK => s,
            _ => fallback,
        }
    }

    /// Cancels the call: RST_STREAM CANCEL to the server, CANCELLED here.
    pub fn cancel(&mut self) {
        if self.status.is_none() {
            self.cancel_with(Status::new(Code::CANCELLED, "cancelled by the client"));
        }
    }

    fn cancel_with(&mut self, s: Status) -> Status {
        if self.status.is_none() {
            self.tx.reset(ErrorCode::CANCEL);
            self.status = Some(s.clone());
        }
        s
    }

    /// The response's initial metadata (after the first `recv`).
    pub fn metadata(&self) -> &Metadata {
        &self.initial
    }

    /// The `grpc-encoding` of the reply messages (after the first `recv`).
    pub fn reply_encoding(&self) -> Encoding {
        self.reply_encoding
    }

    /// The trailing metadata (once `recv` returned `None` or an error).
    pub fn trailers(&self) -> &Metadata {
        &self.trailing
    }

    /// The final status, once `recv` returned `None` (or an error).
    pub fn status(&self) -> Option<Status> {
        self.status.clone()
    }

    /// The next reply message; `None` at the end, when [`OutgoingCall::status`] tells how
    /// the call ended. An error status is returned once as `Some(Err)`.
    pub async fn recv(&mut self) -> Option<Result<Bytes, Status>> {
        if self.status.is_some() {
            return None;
        }
        let Some(d) = self.deadline else {
            return self.recv_inner().await;
        };
        match tokio::time::timeout_at(d, self.recv_inner()).await {
            Ok(r) => r,
            Err(_) => Some(Err(self.cancel_with(deadline_exceeded()))),
        }
    }

    /// The next typed reply through `codec`.
    pub async fn recv_with<C: Codec>(&mut self, codec: &C) -> Option<Result<C::Decode, Status>> {
        Some(self.recv().await?.and_then(|m| codec.decode(m)))
    }

    /// Exactly one reply then the end (unary and client-streaming calls).
    pub(crate) async fn recv_only_message(&mut self) -> Result<Bytes, Status> {
        let reply = match self.recv().await {
            Some(r) => r?,
            None => {
                return Err(match self.status() {
                    Some(s) if s.code != Code::OK => s,
                    _ => Status::new(Code::INTERNAL, "the server sent no reply message"),
                })
            }
        };
        match self.recv().await {
            None => match self.status() {
                Some(s) if s.code != Code::OK => Err(s),
                _ => Ok(reply),
            },
            Some(Ok(_)) => Err(self.cancel_with(Status::new(
                Code::INTERNAL,
                "the server sent more than one reply to a single-reply call",
            ))),
            Some(Err(s)) => Err(s),
        }
    }

    fn conclude(&mut self, s: Status) -> Option<Result<Bytes, Status>> {
        let ok = s.code == Code::OK;
        self.status = Some(s.clone());
        if ok {
            None
        } else {
            Some(Err(s))
        }
    }

    fn fail_and_cancel(&mut self, s: Status) -> Option<Result<Bytes, Status>> {
        Some(Err(self.cancel_with(s)))
    }

    /// Reads the response head: `:status`, `content-type`, `grpc-encoding`, metadata; a
    /// trailers-only response carries the status here.
    fn on_head(&mut self, fields: &[HeaderField], end: bool) -> Result<(), Status> {
        let code = field(fields, b":status")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<u16>().ok())
            .ok_or_else(|| Status::new(Code::INTERNAL, "response without a valid :status"))?;
        if (100..200).contains(&code) && !end {
            return Ok(()); // informational; the real head follows
        }
        if code != 200 {
            return Err(status_for_http(code));
        }
        let grpc = field(fields, b"content-type").is_some_and(|ct| {
            ct == crate::CONTENT_TYPE.as_bytes() || ct.starts_with(b"application/grpc+")
        });
        if !grpc && field(fields, b"grpc-status").is_none() {
            return Err(Status::new(
                Code::UNKNOWN,
                "the response is not gRPC (content-type is not application/grpc)",
            ));
        }
        self.head = true;
        self.initial = metadata_of(fields);
        if end {
            self.ending = Some(status_of(fields));
            return Ok(());
        }
        if let Some(enc) = field(fields, b"grpc-encoding") {
            let enc = Encoding::parse(enc)?;
            self.decoder = MessageDecoder::new(self.max_receive, Some(enc));
            self.reply_encoding = enc;
        }
        Ok(())
    }

    async fn recv_inner(&mut self) -> Option<Result<Bytes, Status>> {
        loop {
            if self.head {
                match self.decoder.decode(&mut self.buf) {
                    Ok(Some(m)) => return Some(Ok(m)),
                    Ok(None) => {}
                    Err(s) => return self.fail_and_cancel(s),
                }
            }
            if let Some(s) = self.ending.take() {
                if let Err(trunc) = self.decoder.finish(&self.buf) {
                    return self.fail_and_cancel(trunc);
                }
                return self.conclude(s);
            }
            match self.rx.recv().await {
                Some(StreamEvent::Headers(fields, end)) => {
                    if self.head {
                        // A second header section is the trailers.
                        self.trailing = metadata_of(&fields);
                        self.ending = Some(status_of(&fields));
                    } else if let Err(s) = self.on_head(&fields, end) {
                        return self.fail_and_cancel(s);
                    }
                }
                Some(StreamEvent::Data(d, end)) => {
                    if !self.head {
                        return self.fail_and_cancel(Status::new(
                            Code::INTERNAL,
                            "DATA before the response headers",
                        ));
                    }
                    self.buf.extend_from_slice(&d);
                    if end {
                        self.ending = Some(Status::new(
                            Code::INTERNAL,
                            "the server ended the stream without a grpc-status",
                        ));
                    }
                }
                Some(StreamEvent::Trailers(fields)) => {
                    self.trailing = metadata_of(&fields);
                    self.ending = Some(status_of(&fields));
                }
                Some(StreamEvent::Reset(cause)) => return self.conclude(status_for_reset(&cause)),
                Some(StreamEvent::ConnectionLost(e)) => {
                    return self.conclude(Status::new(
                        Code::UNAVAILABLE,
                        format!("the connection was lost: {e}"),
                    ))
                }
                None => {
                    return self.conclude(Status::new(
                        Code::INTERNAL,
                        "the stream ended without a status",
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_map_as_the_spec_says() {
        for (http, code) in [
            (400, Code::INTERNAL),
            (401, Code::UNAUTHENTICATED),
            (403, Code::PERMISSION_DENIED),
            (404, Code::UNIMPLEMENTED),
            (429, Code::UNAVAILABLE),
            (502, Code::UNAVAILABLE),
            (503, Code::UNAVAILABLE),
            (504, Code::UNAVAILABLE),
            (500, Code::UNKNOWN),
            (302, Code::UNKNOWN),
        ] {
            assert_eq!(status_for_http(http).code, code, "HTTP {http}");
        }
    }

    #[test]
    fn reset_codes_map_as_the_spec_says() {
        let remote = |c| status_for_reset(&ResetCause::Remote(c)).code;
        assert_eq!(remote(ErrorCode::CANCEL), Code::CANCELLED);
        assert_eq!(remote(ErrorCode::REFUSED_STREAM), Code::UNAVAILABLE);
        assert_eq!(
            remote(ErrorCode::ENHANCE_YOUR_CALM),
            Code::RESOURCE_EXHAUSTED
        );
        assert_eq!(
            remote(ErrorCode::INADEQUATE_SECURITY),
            Code::PERMISSION_DENIED
        );
        for c in [
            ErrorCode::NO_ERROR,
            ErrorCode::PROTOCOL_ERROR,
            ErrorCode::INTERNAL_ERROR,
            ErrorCode::FLOW_CONTROL_ERROR,
            ErrorCode::FRAME_SIZE_ERROR,
            ErrorCode::COMPRESSION_ERROR,
        ] {
            assert_eq!(remote(c), Code::INTERNAL, "{c}");
        }
        assert_eq!(
            status_for_reset(&ResetCause::GoAway).code,
            Code::UNAVAILABLE
        );
    }
}
