//! The tunnel's control protocol, spoken on the pool's control stream `00000000`.
//!
//! # Messages
//! Each message is one octet of type, a 2-octet big-endian payload length (at most
//! [`MAX_PAYLOAD`]) and the payload:
//!
//! | type | message | payload | direction |
//! |---:|---|---|---|
//! | 1 | `Hello` | version (1 octet, [`VERSION`]) + server nonce (32) | server → client |
//! | 2 | `Auth` | client nonce (32) + client MAC (32) | client → server |
//! | 3 | `Accepted` | server MAC (32) | server → client |
//! | 4 | `Rejected` | reason (UTF-8) | server → client |
//! | 5 | `Open` | pool stream ID (4): connect this stream to the target | server → client |
//! | 6 | `Refused` | pool stream ID (4) + reason (UTF-8): the target refused | client → server |
//!
//! # Authentication
//! A challenge–response with the shared secret as HMAC-SHA256 key (ring); the secret never
//! crosses the wire. Both MACs cover the TLS session's channel binding
//! ([`crate::TlsInfo::channel_binding`], RFC 9266), so an answer relayed by a man in the middle
//! (who holds two TLS sessions, hence two bindings) does not verify even when the client runs
//! in TLS mode 0/1 and does not check the certificate:
//!
//! * client MAC = HMAC(secret, `"h2mux-tunnel-v1 client"` ‖ binding ‖ server nonce ‖ client nonce)
//! * server MAC = HMAC(secret, `"h2mux-tunnel-v1 server"` ‖ binding ‖ client nonce ‖ server nonce)
//!
//! The server checks the client's MAC (constant time) and answers `Accepted` with its own, which
//! the client checks in turn; otherwise `Rejected`, and the connection is closed.

use ring::hmac;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::id::PoolStreamId;

/// Protocol version sent in `Hello`.
pub const VERSION: u8 = 1;
/// Octets of a nonce.
pub const NONCE_LEN: usize = 32;
/// Octets of a MAC (HMAC-SHA256).
pub const MAC_LEN: usize = 32;
/// Largest payload of a message.
pub const MAX_PAYLOAD: usize = 1024;

/// A random challenge.
pub type Nonce = [u8; NONCE_LEN];
/// An HMAC-SHA256 tag.
pub type Mac = [u8; MAC_LEN];

/// A control message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The server's challenge.
    Hello {
        /// Protocol version.
        version: u8,
        /// The server's nonce.
        nonce: Nonce,
    },
    /// The client's answer and counter-challenge.
    Auth {
        /// The client's nonce.
        nonce: Nonce,
        /// The client's MAC.
        mac: Mac,
    },
    /// The server accepts the client and proves it knows the secret too.
    Accepted {
        /// The server's MAC.
        mac: Mac,
    },
    /// The server refuses the client.
    Rejected {
        /// Why.
        reason: String,
    },
    /// Connect pool stream `id` to the target.
    Open {
        /// The stream.
        id: PoolStreamId,
    },
    /// The target refused the connection for stream `id`.
    Refused {
        /// The stream.
        id: PoolStreamId,
        /// The operating system's reason.
        reason: String,
    },
}

/// Why a control message could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// A message type this version does not know.
    #[error("unknown control message type {0}")]
    UnknownType(u8),
    /// A payload of the wrong length for its type.
    #[error("control message type {kind} with a {len}-octet payload")]
    BadLength {
        /// The type.
        kind: u8,
        /// The length received.
        len: usize,
    },
    /// A reason that is not UTF-8.
    #[error("control message reason is not UTF-8")]
    BadText,
    /// The stream ended or failed.
    #[error("control stream: {0}")]
    Io(String),
}

impl Message {
    fn kind(&self) -> u8 {
        match self {
            Message::Hello { .. } => 1,
            Message::Auth { .. } => 2,
            Message::Accepted { .. } => 3,
            Message::Rejected { .. } => 4,
            Message::Open { .. } => 5,
            Message::Refused { .. } => 6,
        }
    }

    /// The message on the wire (reasons are cut to fit [`MAX_PAYLOAD`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::new();
        let text = |p: &mut Vec<u8>, s: &str| {
            let mut end = s.len().min(MAX_PAYLOAD - p.len());
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            p.extend_from_slice(&s.as_bytes()[..end]);
        };
        match self {
            Message::Hello { version, nonce } => {
                p.push(*version);
                p.extend_from_slice(nonce);
            }
            Message::Auth { nonce, mac } => {
                p.extend_from_slice(nonce);
                p.extend_from_slice(mac);
            }
            Message::Accepted { mac } => p.extend_from_slice(mac),
            Message::Rejected { reason } => text(&mut p, reason),
            Message::Open { id } => p.extend_from_slice(&id.0),
            Message::Refused { id, reason } => {
                p.extend_from_slice(&id.0);
                text(&mut p, reason);
            }
        }
        let mut out = Vec::with_capacity(3 + p.len());
        out.push(self.kind());
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
        out.extend_from_slice(&p);
        out
    }

    /// A message from its type and payload.
    pub fn decode(kind: u8, p: &[u8]) -> Result<Message, ControlError> {
        let bad = || ControlError::BadLength { kind, len: p.len() };
        let arr = |b: &[u8]| -> [u8; 32] {
            let mut a = [0u8; 32];
            a.copy_from_slice(b);
            a
        };
        let text = |b: &[u8]| {
            std::str::from_utf8(b)
                .map(str::to_string)
                .map_err(|_| ControlError::BadText)
        };
        let id = |b: &[u8]| PoolStreamId([b[0], b[1], b[2], b[3]]);
        Ok(match kind {
            1 if p.len() == 1 + NONCE_LEN => Message::Hello {
                version: p[0],
                nonce: arr(&p[1..]),
            },
            2 if p.len() == NONCE_LEN + MAC_LEN => Message::Auth {
                nonce: arr(&p[..NONCE_LEN]),
                mac: arr(&p[NONCE_LEN..]),
            },
            3 if p.len() == MAC_LEN => Message::Accepted { mac: arr(p) },
            4 => Message::Rejected { reason: text(p)? },
            5 if p.len() == 4 => Message::Open { id: id(p) },
            6 if p.len() >= 4 => Message::Refused {
                id: id(p),
                reason: text(&p[4..])?,
            },
            1..=6 => return Err(bad()),
            other => return Err(ControlError::UnknownType(other)),
        })
    }
}

fn io(e: std::io::Error) -> ControlError {
    ControlError::Io(e.to_string())
}

/// Reads one message.
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> Result<Message, ControlError> {
    let mut head = [0u8; 3];
    r.read_exact(&mut head).await.map_err(io)?;
    let len = usize::from(u16::from_be_bytes([head[1], head[2]]));
    if len > MAX_PAYLOAD {
        return Err(ControlError::BadLength { kind: head[0], len });
    }
    let mut p = vec![0u8; len];
    r.read_exact(&mut p).await.map_err(io)?;
    Message::decode(head[0], &p)
}

/// Writes one message.
pub async fn write_message<W: AsyncWrite + Unpin>(
    w: &mut W,
    m: &Message,
) -> Result<(), ControlError> {
    w.write_all(&m.encode()).await.map_err(io)?;
    w.flush().await.map_err(io)
}

/// A fresh nonce from the OS's cryptographic RNG.
pub fn nonce() -> Result<Nonce, ControlError> {
    let mut n = [0u8; NONCE_LEN];
    getrandom::getrandom(&mut n).map_err(|e| ControlError::Io(format!("no randomness: {e}")))?;
    Ok(n)
}

/// The shared secret, as an HMAC-SHA256 key. Its `Debug` shows nothing of it.
pub struct Secret(hmac::Key);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

const CLIENT_LABEL: &[u8] = b"h2mux-tunnel-v1 client";
const SERVER_LABEL: &[u8] = b"h2mux-tunnel-v1 server";

impl Secret {
    /// The key from the secret's octets (must not be empty).
    pub fn new(secret: &[u8]) -> Option<Secret> {
        (!secret.is_empty()).then(|| Secret(hmac::Key::new(hmac::HMAC_SHA256, secret)))
    }

    fn tag(&self, parts: &[&[u8]]) -> Mac {
        let mut ctx = hmac::Context::with_key(&self.0);
        for p in parts {
            ctx.update(p);
        }
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    fn check(&self, parts: &[&[u8]], mac: &Mac) -> bool {
        let msg: Vec<u8> = parts.concat();
        hmac::verify(&self.0, &msg, mac).is_ok()
    }

    /// The client's MAC over the session binding and both nonces.
    pub fn client_mac(&self, binding: &[u8], server: &Nonce, client: &Nonce) -> Mac {
        self.tag(&[CLIENT_LABEL, binding, server, client])
    }

    /// Checks the client's MAC (constant time).
    pub fn verify_client(&self, binding: &[u8], server: &Nonce, client: &Nonce, mac: &Mac) -> bool {
        self.check(&[CLIENT_LABEL, binding, server, client], mac)
    }

    /// The server's MAC.
    pub fn server_mac(&self, binding: &[u8], server: &Nonce, client: &Nonce) -> Mac {
        self.tag(&[SERVER_LABEL, binding, client, server])
    }

    /// Checks the server's MAC (constant time).
    pub fn verify_server(&self, binding: &[u8], server: &Nonce, client: &Nonce, mac: &Mac) -> bool {
        self.check(&[SERVER_LABEL, binding, client, server], mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Message> {
        vec![
            Message::Hello {
                version: VERSION,
                nonce: [1; 32],
            },
            Message::Auth {
                nonce: [2; 32],
                mac: [3; 32],
            },
            Message::Accepted { mac: [4; 32] },
            Message::Rejected {
                reason: "authentication failed".into(),
            },
            Message::Open {
                id: PoolStreamId([0xa1, 0xb2, 0xc3, 0xd4]),
            },
            Message::Refused {
                id: PoolStreamId([9, 8, 7, 6]),
                reason: "connection refused".into(),
            },
        ]
    }

    #[tokio::test]
    async fn every_message_round_trips_through_a_byte_stream() {
        let mut wire = Vec::new();
        for m in all() {
            write_message(&mut wire, &m).await.unwrap();
        }
        let mut r = &wire[..];
        for m in all() {
            assert_eq!(read_message(&mut r).await.unwrap(), m);
        }
        assert!(matches!(
            read_message(&mut r).await,
            Err(ControlError::Io(_))
        ));
    }

    #[test]
    fn malformed_messages_are_typed_errors() {
        assert_eq!(Message::decode(9, &[]), Err(ControlError::UnknownType(9)));
        assert_eq!(
            Message::decode(5, &[1, 2, 3]),
            Err(ControlError::BadLength { kind: 5, len: 3 })
        );
        assert_eq!(
            Message::decode(1, &[1; 32]),
            Err(ControlError::BadLength { kind: 1, len: 32 })
        );
        assert_eq!(
            Message::decode(4, &[0xff, 0xfe]),
            Err(ControlError::BadText)
        );
        assert_eq!(
            Message::decode(6, &[1, 2, 3, 4, 0xc3]),
            Err(ControlError::BadText)
        );
    }

    #[tokio::test]
    async fn an_oversized_length_is_refused_before_reading_the_payload() {
        let wire = [5u8, 0xff, 0xff];
        let mut r = &wire[..];
        assert_eq!(
            read_message(&mut r).await,
            Err(ControlError::BadLength {
                kind: 5,
                len: 0xffff
            })
        );
    }

    #[test]
    fn long_reasons_are_cut_on_a_character_boundary() {
        let m = Message::Refused {
            id: PoolStreamId([1; 4]),
            reason: "é".repeat(MAX_PAYLOAD),
        };
        let wire = m.encode();
        let len = usize::from(u16::from_be_bytes([wire[1], wire[2]]));
        assert!(len <= MAX_PAYLOAD);
        assert!(matches!(
            Message::decode(wire[0], &wire[3..]),
            Ok(Message::Refused { .. })
        ));
    }

    #[test]
    fn macs_verify_only_with_the_same_secret_binding_and_nonces() {
        let k = Secret::new(b"shared secret").unwrap();
        let other = Secret::new(b"another secret").unwrap();
        let (b, sn, cn) = ([5u8; 32], [6u8; 32], [7u8; 32]);
        let mac = k.client_mac(&b, &sn, &cn);
        assert!(k.verify_client(&b, &sn, &cn, &mac));
        assert!(!other.verify_client(&b, &sn, &cn, &mac), "wrong secret");
        assert!(
            !k.verify_client(&[0u8; 32], &sn, &cn, &mac),
            "another TLS session (a relay)"
        );
        assert!(!k.verify_client(&b, &cn, &sn, &mac), "nonces swapped");
        // The two directions use different labels: a reflected client MAC is no server MAC.
        assert!(!k.verify_server(&b, &sn, &cn, &mac));
        let smac = k.server_mac(&b, &sn, &cn);
        assert!(k.verify_server(&b, &sn, &cn, &smac));
        assert!(Secret::new(b"").is_none());
        assert_eq!(format!("{k:?}"), "Secret(..)");
    }
}
