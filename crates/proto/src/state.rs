//! Stream states of RFC 9113 §5.1.

use thiserror::Error;

/// State of one stream (RFC 9113 §5.1, without the reserved states: we never push).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No frame yet.
    Idle,
    /// Both sides may send.
    Open,
    /// We sent END_STREAM.
    HalfClosedLocal,
    /// The peer sent END_STREAM.
    HalfClosedRemote,
    /// Done.
    Closed,
}

/// A state-machine rule the peer broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum StateError {
    /// RFC 9113 §5.1: frame other than HEADERS/PRIORITY on an idle stream
    /// (connection error PROTOCOL_ERROR).
    #[error("RFC 9113 §5.1: frame on an idle stream")]
    Idle,
    /// RFC 9113 §5.1: DATA/HEADERS after the peer's END_STREAM
    /// (stream error STREAM_CLOSED).
    #[error("RFC 9113 §5.1: frame after END_STREAM (half-closed remote)")]
    HalfClosedRemote,
    /// RFC 9113 §5.1: frame on a closed stream (STREAM_CLOSED).
    #[error("RFC 9113 §5.1: frame on a closed stream")]
    Closed,
}

impl State {
    /// The peer sent HEADERS (possibly with END_STREAM).
    pub fn recv_headers(self, end_stream: bool) -> Result<State, StateError> {
        match self {
            State::Idle | State::Open => Ok(if end_stream {
                State::HalfClosedRemote
            } else {
                State::Open
            }),
            State::HalfClosedLocal => Ok(if end_stream {
                State::Closed
            } else {
                State::HalfClosedLocal
            }),
            State::HalfClosedRemote => Err(StateError::HalfClosedRemote),
            State::Closed => Err(StateError::Closed),
        }
    }

    /// The peer sent DATA.
    pub fn recv_data(self, end_stream: bool) -> Result<State, StateError> {
        match self {
            State::Idle => Err(StateError::Idle),
            State::Open => Ok(if end_stream {
                State::HalfClosedRemote
            } else {
                State::Open
            }),
            State::HalfClosedLocal => Ok(if end_stream {
                State::Closed
            } else {
                State::HalfClosedLocal
            }),
            State::HalfClosedRemote => Err(StateError::HalfClosedRemote),
            State::Closed => Err(StateError::Closed),
        }
    }

    /// We send HEADERS or DATA, possibly with END_STREAM. `None` if we may not send.
    pub fn send(self, end_stream: bool) -> Option<State> {
        match (self, end_stream) {
            (State::Idle | State::Open, false) => Some(State::Open),
            (State::Idle | State::Open, true) => Some(State::HalfClosedLocal),
            (State::HalfClosedRemote, false) => Some(State::HalfClosedRemote),
            (State::HalfClosedRemote, true) => Some(State::Closed),
            (State::HalfClosedLocal | State::Closed, _) => None,
        }
    }

    /// Whether the peer may still send DATA.
    pub fn can_recv(self) -> bool {
        matches!(self, State::Open | State::HalfClosedLocal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_response_lifecycle() {
        // Server view: request HEADERS, DATA+END_STREAM, response.
        let s = State::Idle.recv_headers(false).unwrap();
        assert_eq!(s, State::Open);
        let s = s.recv_data(true).unwrap();
        assert_eq!(s, State::HalfClosedRemote);
        let s = s.send(false).unwrap();
        assert_eq!(s.send(true), Some(State::Closed));
    }

    #[test]
    fn peer_violations() {
        // §5.1 idle: "Receiving any frame other than HEADERS or PRIORITY on a stream in this
        // state MUST be treated as a connection error".
        assert_eq!(State::Idle.recv_data(false), Err(StateError::Idle));
        // §5.1 half-closed (remote): "the endpoint MUST respond with a stream error of type
        // STREAM_CLOSED".
        assert_eq!(
            State::HalfClosedRemote.recv_data(false),
            Err(StateError::HalfClosedRemote)
        );
        assert_eq!(State::Closed.recv_headers(false), Err(StateError::Closed));
        assert_eq!(State::HalfClosedLocal.send(false), None);
        assert!(!State::HalfClosedRemote.can_recv());
    }
}
