//! The `prost` codec (feature `prost`; this crate's dev-dependency on itself turns it on for
//! its tests, so `cargo test --workspace` runs these): prost-generated messages over the
//! channel against the echo server, and byte-for-byte agreement with the hand-written
//! echo messages.
#![cfg(feature = "prost")]

use bytes::{Bytes, BytesMut};
use h2mux::{Config, Server};
use h2mux_rpc::channel::{CallOptions, Channel, ChannelConfig};
use h2mux_rpc::codec::{Codec, ProstCodec};
use h2mux_rpc::echo::{self, method};
use h2mux_rpc::server::echo_service;
use h2mux_rpc::Code;
use proptest::prelude::*;

/// `proto/echo.proto`'s messages as prost derives them.
#[derive(Clone, PartialEq, prost::Message)]
struct EchoRequest {
    #[prost(bytes = "bytes", tag = "1")]
    payload: Bytes,
    #[prost(uint32, tag = "2")]
    repeat: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct EchoReply {
    #[prost(bytes = "bytes", tag = "1")]
    payload: Bytes,
    #[prost(uint32, tag = "2")]
    index: u32,
}

type EchoProst = ProstCodec<EchoRequest, EchoReply>;

async fn echo_server() -> String {
    let server = Server::bind("127.0.0.1:0", Config::default())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let rpc = std::sync::Arc::new(echo_service());
    tokio::spawn(server.serve(move |req| {
        let rpc = rpc.clone();
        async move { rpc.handle(req).await }
    }));
    addr
}

#[tokio::test]
async fn prost_messages_over_the_channel() {
    let ch = Channel::new(ChannelConfig::new(&echo_server().await));
    let codec = EchoProst::default();
    let r = ch
        .unary_with(
            &codec,
            method::UNARY,
            &EchoRequest {
                payload: Bytes::from_static(b"prost"),
                repeat: 0,
            },
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        r,
        EchoReply {
            payload: Bytes::from_static(b"prost"),
            index: 0
        }
    );

    let mut call = ch
        .start(method::SERVER_STREAM, CallOptions::default())
        .await
        .unwrap();
    call.send_with(
        &codec,
        &EchoRequest {
            payload: Bytes::from_static(b"p"),
            repeat: 3,
        },
    )
    .await
    .unwrap();
    call.finish().await.unwrap();
    let mut got = Vec::new();
    while let Some(r) = call.recv_with(&codec).await {
        got.push(r.unwrap().index);
    }
    assert_eq!(got, [0, 1, 2]);
}

#[test]
fn a_malformed_message_is_internal() {
    let err = EchoProst::default()
        .decode(Bytes::from_static(&[0x0a, 0x05, 1]))
        .unwrap_err();
    assert_eq!(err.code, Code::INTERNAL);
}

proptest! {
    #[test]
    fn prost_and_the_built_in_messages_agree_on_the_wire(
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        n in any::<u32>(),
    ) {
        let payload = Bytes::from(payload);
        let codec = EchoProst::default();
        let mut ours = BytesMut::new();
        echo::EchoRequest { payload: payload.clone(), repeat: n }.encode(&mut ours);
        let mut theirs = BytesMut::new();
        codec.encode(&EchoRequest { payload: payload.clone(), repeat: n }, &mut theirs).unwrap();
        prop_assert_eq!(&ours[..], &theirs[..]);
        let mut reply = BytesMut::new();
        echo::EchoReply { payload: payload.clone(), index: n }.encode(&mut reply);
        prop_assert_eq!(codec.decode(reply.freeze()).unwrap(), EchoReply { payload, index: n });
    }
}
