//! The standard health service, `grpc.health.v1.Health/Check` (grpc/doc/health-checking.md):
//!
//! ```proto
//! message HealthCheckRequest { string service = 1; }
//! message HealthCheckResponse {
//!   enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
//!   ServingStatus status = 1;
//! }
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::pb::{get_bytes, get_varint, put_bytes, put_varint, skip_field, ProtoError};

/// Full method path of the check.
pub const CHECK: &str = "/grpc.health.v1.Health/Check";

/// `HealthCheckRequest`: the service asked about ("" = the server as a whole).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthCheckRequest {
    /// Field 1.
    pub service: String,
}

/// `HealthCheckResponse.ServingStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServingStatus {
    /// 0
    Unknown,
    /// 1
    Serving,
    /// 2
    NotServing,
    /// 3 (only for Watch; Check answers NOT_FOUND instead)
    ServiceUnknown,
    /// A value this build does not know (proto3 enums are open).
    Other(u32),
}

impl ServingStatus {
    fn to_wire(self) -> u32 {
        match self {
            ServingStatus::Unknown => 0,
            ServingStatus::Serving => 1,
            ServingStatus::NotServing => 2,
            ServingStatus::ServiceUnknown => 3,
            ServingStatus::Other(v) => v,
        }
    }
    fn from_wire(v: u32) -> ServingStatus {
        match v {
            0 => ServingStatus::Unknown,
            1 => ServingStatus::Serving,
            2 => ServingStatus::NotServing,
            3 => ServingStatus::ServiceUnknown,
            v => ServingStatus::Other(v),
        }
    }
}

/// `HealthCheckResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthCheckResponse {
    /// Field 1.
    pub status: ServingStatus,
}

impl HealthCheckRequest {
    /// Serialises the message.
    pub fn encode(&self, dst: &mut BytesMut) {
        if !self.service.is_empty() {
            put_bytes(dst, 0x0a, self.service.as_bytes());
        }
    }
    /// Parses the message; the service name must be UTF-8 (proto3 `string`).
    pub fn decode(mut buf: Bytes) -> Result<HealthCheckRequest, ProtoError> {
        let mut req = HealthCheckRequest::default();
        while buf.has_remaining() {
            let key = get_varint(&mut buf)?;
            match (key >> 3, (key & 7) as u8) {
                (1, 2) => {
                    let b = get_bytes(&mut buf)?;
                    req.service =
                        String::from_utf8(b.to_vec()).map_err(|_| ProtoError::InvalidUtf8)?;
                }
                (1, w) => {
                    return Err(ProtoError::WrongWireType {
                        field: 1,
                        wire_type: w,
                        expected: 2,
                    })
                }
                (_, w) => skip_field(&mut buf, w)?,
            }
        }
        Ok(req)
    }
}

impl HealthCheckResponse {
    /// Serialises the message.
    pub fn encode(&self, dst: &mut BytesMut) {
        let v = self.status.to_wire();
        if v != 0 {
            dst.put_u8(0x08);
            put_varint(dst, u64::from(v));
        }
    }
    /// Parses the message.
    pub fn decode(mut buf: Bytes) -> Result<HealthCheckResponse, ProtoError> {
        let mut status = ServingStatus::Unknown;
        while buf.has_remaining() {
            let key = get_varint(&mut buf)?;
            match (key >> 3, (key & 7) as u8) {
                (1, 0) => status = ServingStatus::from_wire(get_varint(&mut buf)? as u32),
                (1, w) => {
                    return Err(ProtoError::WrongWireType {
                        field: 1,
                        wire_type: w,
                        expected: 0,
                    })
                }
                (_, w) => skip_field(&mut buf, w)?,
            }
        }
        Ok(HealthCheckResponse { status })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_round_trips() {
        let mut b = BytesMut::new();
        HealthCheckRequest {
            service: "h2mux.echo.v1.Echo".into(),
        }
        .encode(&mut b);
        assert_eq!(b[0], 0x0a);
        assert_eq!(
            HealthCheckRequest::decode(b.freeze()).unwrap().service,
            "h2mux.echo.v1.Echo"
        );
        let mut b = BytesMut::new();
        HealthCheckResponse {
            status: ServingStatus::Serving,
        }
        .encode(&mut b);
        assert_eq!(&b[..], &[0x08, 0x01]);
        assert_eq!(
            HealthCheckResponse::decode(b.freeze()).unwrap().status,
            ServingStatus::Serving
        );
        assert_eq!(
            HealthCheckResponse::decode(Bytes::from_static(&[0x08, 0x09]))
                .unwrap()
                .status,
            ServingStatus::Other(9)
        );
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert_eq!(
            HealthCheckRequest::decode(Bytes::from_static(&[0x0a, 0x02, 0xff, 0xfe])),
            Err(ProtoError::InvalidUtf8)
        );
        assert_eq!(
            HealthCheckRequest::decode(Bytes::from_static(&[0x0a, 0x09])),
            Err(ProtoError::Truncated)
        );
        assert!(HealthCheckResponse::decode(Bytes::from_static(&[0x0a, 0x00])).is_err());
    }
}
