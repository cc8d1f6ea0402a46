//! How messages become bytes and back. Messages are plain bytes by default ([`BytesCodec`]);
//! any serialisation plugs in through [`Codec`] — a `prost` codec is behind the `prost`
//! feature ([`ProstCodec`]).

use bytes::{Bytes, BytesMut};

use crate::status::{Code, Status};

/// Encodes outgoing messages and decodes incoming ones.
pub trait Codec: Send + Sync + 'static {
    /// The type sent.
    type Encode: Send + 'static;
    /// The type received.
    type Decode: Send + 'static;
    /// Appends the serialised `item` to `dst`.
    fn encode(&self, item: &Self::Encode, dst: &mut BytesMut) -> Result<(), Status>;
    /// Parses one message; a parse failure is a status (INTERNAL by convention).
    fn decode(&self, message: Bytes) -> Result<Self::Decode, Status>;
}

/// Messages as raw bytes, no serialisation.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesCodec;

impl Codec for BytesCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    fn encode(&self, item: &Bytes, dst: &mut BytesMut) -> Result<(), Status> {
        dst.extend_from_slice(item);
        Ok(())
    }
    fn decode(&self, message: Bytes) -> Result<Bytes, Status> {
        Ok(message)
    }
}

/// A decode failure as the status gRPC implementations use for it.
pub fn decode_error(what: &str, detail: impl std::fmt::Display) -> Status {
    Status::new(Code::INTERNAL, format!("failed to decode {what}: {detail}"))
}

#[cfg(feature = "prost")]
pub use prost_codec::ProstCodec;

#[cfg(feature = "prost")]
mod prost_codec {
    use super::*;
    use std::marker::PhantomData;

    /// Protocol Buffers through `prost`: sends `E`, receives `D`.
    #[derive(Debug)]
    pub struct ProstCodec<E, D>(PhantomData<fn() -> (E, D)>);

    impl<E, D> Default for ProstCodec<E, D> {
        fn default() -> Self {
            ProstCodec(PhantomData)
        }
    }

    impl<E, D> Codec for ProstCodec<E, D>
    where
        E: prost::Message + Send + 'static,
        D: prost::Message + Default + Send + 'static,
    {
        type Encode = E;
        type Decode = D;
        fn encode(&self, item: &E, dst: &mut BytesMut) -> Result<(), Status> {
            item.encode(dst)
                .map_err(|e| Status::new(Code::INTERNAL, format!("failed to encode message: {e}")))
        }
        fn decode(&self, message: Bytes) -> Result<D, Status> {
            D::decode(message).map_err(|e| decode_error(std::any::type_name::<D>(), e))
        }
    }
}
