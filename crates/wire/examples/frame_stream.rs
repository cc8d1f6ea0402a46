//! Encodes a small HTTP/2 conversation (preface-less frame stream: SETTINGS, HEADERS with an
//! HPACK block, DATA, PING, WINDOW_UPDATE, GOAWAY), then decodes it back, one byte at a time,
//! and prints what came out. Run: `cargo run --release -p h2mux-wire --example frame_stream`.

use bytes::{Bytes, BytesMut};
use h2mux_wire::frame::{
    DataFrame, Frame, GoAwayFrame, HeadersFrame, PingFrame, Setting, SettingsFrame,
    WindowUpdateFrame,
};
use h2mux_wire::hpack::{Decoder, Encoder, HeaderField};
use h2mux_wire::{ErrorCode, FrameDecoder, StreamId};

fn main() {
    let request = [
        HeaderField::new(":method", "GET"),
        HeaderField::new(":scheme", "https"),
        HeaderField::new(":authority", "example.com"),
        HeaderField::new(":path", "/bytes/1024"),
        HeaderField::sensitive("authorization", "Bearer secret"),
    ];
    let mut encoder = Encoder::new();
    let mut block = BytesMut::new();
    encoder.encode(request.iter(), &mut block);

    let stream = StreamId::new(1);
    let frames = vec![
        Frame::Settings(SettingsFrame {
            ack: false,
            settings: vec![
                Setting::MaxFrameSize(1 << 20),
                Setting::InitialWindowSize(1 << 21),
            ],
        }),
        Frame::Headers(HeadersFrame {
            stream_id: stream,
            header_block: block.freeze(),
            end_stream: false,
            end_headers: true,
            priority: None,
        }),
        Frame::Data(DataFrame {
            stream_id: stream,
            payload: Bytes::from(vec![0x42; 1024]),
            end_stream: true,
            flow_controlled_len: 1024,
        }),
        Frame::Ping(PingFrame {
            ack: false,
            payload: *b"h2mux!!!",
        }),
        Frame::WindowUpdate(WindowUpdateFrame {
            stream_id: StreamId::ZERO,
            increment: 1 << 20,
        }),
        Frame::GoAway(GoAwayFrame {
            last_stream_id: stream,
            error_code: ErrorCode::NO_ERROR,
            debug_data: Bytes::from_static(b"bye"),
        }),
    ];

    let mut wire = BytesMut::new();
    for frame in &frames {
        frame.encode(&mut wire);
    }
    println!("encoded {} frames into {} bytes", frames.len(), wire.len());

    // Decode as a socket would deliver it: one byte at a time.
    let mut decoder = FrameDecoder::new(1 << 20);
    let mut hpack = Decoder::new(4096, 64 * 1024);
    let mut inbox = BytesMut::new();
    let mut decoded = Vec::new();
    for byte in wire.iter() {
        inbox.extend_from_slice(&[*byte]);
        match decoder.decode(&mut inbox) {
            Ok(Some(frame)) => decoded.push(frame),
            Ok(None) => {}
            Err(e) => {
                eprintln!("decode error: {e} ({:?}, {})", e.scope(), e.code());
                std::process::exit(1);
            }
        }
    }
    for frame in &decoded {
        match frame {
            Frame::Headers(h) => {
                let fields = hpack.decode(&h.header_block).unwrap_or_else(|e| {
                    eprintln!("hpack error: {e}");
                    std::process::exit(1);
                });
                println!(
                    "HEADERS stream {} ({} HPACK bytes):",
                    h.stream_id,
                    h.header_block.len()
                );
                for f in fields {
                    println!(
                        "    {}: {}{}",
                        String::from_utf8_lossy(&f.name),
                        String::from_utf8_lossy(&f.value),
                        if f.sensitive { "  (never indexed)" } else { "" }
                    );
                }
            }
            Frame::Data(d) => println!(
                "DATA stream {} {} bytes end_stream={}",
                d.stream_id,
                d.payload.len(),
                d.end_stream
            ),
            other => println!("{other:?}"),
        }
    }
    if decoded != frames {
        eprintln!("round trip FAILED: decoded frames differ from the encoded ones");
        std::process::exit(1);
    }
    println!(
        "round trip OK: {} frames decoded byte by byte match what was encoded",
        decoded.len()
    );
}
