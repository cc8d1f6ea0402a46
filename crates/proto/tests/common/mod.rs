//! Shared helpers: header lists and a "raw peer" that feeds hand-built frames to one
//! connection and decodes what it writes back.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use h2mux_proto::{Config, Connection, ConnectionError, Event, Role};
use h2mux_wire::frame::{
    encode_header_block, ContinuationFrame, DataFrame, Frame, PingFrame, RstStreamFrame, Setting,
    SettingsFrame, WindowUpdateFrame, CLIENT_PREFACE,
};
use h2mux_wire::hpack::{Encoder, HeaderField};
use h2mux_wire::{ErrorCode, FrameDecoder, StreamId};
use std::time::Instant;

pub fn h(n: &'static str, v: &'static str) -> HeaderField {
    HeaderField::new(n, v)
}

pub fn get(path: &'static str) -> Vec<HeaderField> {
    vec![
        h(":method", "GET"),
        h(":scheme", "https"),
        h(":path", path),
        h(":authority", "example.com"),
    ]
}

pub fn post(path: &'static str) -> Vec<HeaderField> {
    vec![
        h(":method", "POST"),
        h(":scheme", "https"),
        h(":path", path),
        h(":authority", "example.com"),
    ]
}

pub fn status(s: &'static str) -> Vec<HeaderField> {
    vec![h(":status", s)]
}

pub fn sid(n: u32) -> StreamId {
    StreamId::new(n)
}

/// One connection driven by hand-built frames.
pub struct Raw {
    pub conn: Connection,
    pub now: Instant,
    pub enc: Encoder,
    out: BytesMut,
    dec: FrameDecoder,
    skip_preface: bool,
    pub result: Result<(), ConnectionError>,
}

impl Raw {
    /// A server that has received the preface and an empty SETTINGS.
    pub fn server(config: Config) -> Raw {
        let now = Instant::now();
        let mut r = Raw {
            conn: Connection::new(Role::Server, config, now),
            now,
            enc: Encoder::new(),
            out: BytesMut::new(),
            dec: FrameDecoder::new(1 << 24),
            skip_preface: false,
            result: Ok(()),
        };
        let mut b = BytesMut::new();
        b.extend_from_slice(CLIENT_PREFACE);
        SettingsFrame::encode_settings(&[], &mut b);
        r.feed(b).expect("handshake");
        r
    }

    /// A client that has received an empty SETTINGS.
    pub fn client(config: Config) -> Raw {
        let now = Instant::now();
        let mut r = Raw {
            conn: Connection::new(Role::Client, config, now),
            now,
            enc: Encoder::new(),
            out: BytesMut::new(),
            dec: FrameDecoder::new(1 << 24),
            skip_preface: true,
            result: Ok(()),
        };
        let mut b = BytesMut::new();
        SettingsFrame::encode_settings(&[], &mut b);
        r.feed(b).expect("handshake");
        r
    }

    pub fn feed(&mut self, mut b: BytesMut) -> Result<(), ConnectionError> {
        self.result = self.conn.recv(&mut b, self.now);
        self.result.clone()
    }

    pub fn feed_frames(&mut self, frames: &[Frame]) -> Result<(), ConnectionError> {
        let mut b = BytesMut::new();
        for f in frames {
            f.encode(&mut b);
        }
        self.feed(b)
    }

    /// Everything the connection wrote since the last call, decoded.
    pub fn written(&mut self) -> Vec<Frame> {
        let mut chunks = Vec::new();
        while self.conn.poll_transmit(self.now, &mut chunks) > 0 {}
        for c in chunks {
            self.out.extend_from_slice(&c);
        }
        if self.skip_preface && self.out.len() >= CLIENT_PREFACE.len() {
            let _ = self.out.split_to(CLIENT_PREFACE.len());
            self.skip_preface = false;
        }
        let mut v = Vec::new();
        while let Ok(Some(f)) = self.dec.decode(&mut self.out) {
            v.push(f);
        }
        v
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    /// HEADERS (+ CONTINUATION) bytes for `fields`.
    pub fn headers(&mut self, id: u32, fields: &[HeaderField], end_stream: bool) -> BytesMut {
        let mut block = BytesMut::new();
        self.enc.encode(fields.iter(), &mut block);
        let mut b = BytesMut::new();
        encode_header_block(sid(id), block.freeze(), end_stream, 16_384, &mut b);
        b
    }

    /// A HEADERS frame without END_HEADERS carrying the whole block, for CONTINUATION tests.
    pub fn headers_open(&mut self, id: u32, fields: &[HeaderField]) -> BytesMut {
        let mut block = BytesMut::new();
        self.enc.encode(fields.iter(), &mut block);
        let mut b = BytesMut::new();
        Frame::Headers(h2mux_wire::frame::HeadersFrame {
            stream_id: sid(id),
            header_block: block.freeze(),
            end_stream: false,
            end_headers: false,
            priority: None,
        })
        .encode(&mut b);
        b
    }
}

pub fn data(id: u32, payload: &'static [u8], end_stream: bool) -> Frame {
    Frame::Data(DataFrame {
        stream_id: sid(id),
        payload: Bytes::from_static(payload),
        end_stream,
        flow_controlled_len: payload.len() as u32,
    })
}

pub fn rst(id: u32, code: ErrorCode) -> Frame {
    Frame::RstStream(RstStreamFrame {
        stream_id: sid(id),
        error_code: code,
    })
}

pub fn ping(payload: [u8; 8]) -> Frame {
    Frame::Ping(PingFrame {
        ack: false,
        payload,
    })
}

pub fn window_update(id: u32, increment: u32) -> Frame {
    Frame::WindowUpdate(WindowUpdateFrame {
        stream_id: sid(id),
        increment,
    })
}

pub fn settings(s: Vec<Setting>) -> Frame {
    Frame::Settings(SettingsFrame {
        ack: false,
        settings: s,
    })
}

pub fn continuation(id: u32, block: &'static [u8], end_headers: bool) -> Frame {
    Frame::Continuation(ContinuationFrame {
        stream_id: sid(id),
        header_block: Bytes::from_static(block),
        end_headers,
    })
}

/// The RST_STREAM codes in `frames`, by stream.
pub fn resets(frames: &[Frame]) -> Vec<(u32, ErrorCode)> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::RstStream(r) => Some((r.stream_id.value(), r.error_code)),
            _ => None,
        })
        .collect()
}

/// The GOAWAY error code in `frames`, if any.
pub fn goaway_code(frames: &[Frame]) -> Option<ErrorCode> {
    frames.iter().find_map(|f| match f {
        Frame::GoAway(g) => Some(g.error_code),
        _ => None,
    })
}
