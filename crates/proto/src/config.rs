//! Connection configuration (RFC 9113 §6.5.2 settings plus local limits).
//!
//! Defaults are chosen for throughput: large frames (1 MiB, §6.5.2 allows up to 2^24-1) and
//! large initial windows (2 MiB per stream, 4 MiB per connection) that the adaptive
//! [`crate::bdp`] estimator may grow up to 16 MiB, so a long-fat link fills without tuning
//! while a slow reader still bounds what the peer may send.

/// Tunables of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// SETTINGS_MAX_FRAME_SIZE we advertise (RFC 9113 §6.5.2). Default 1 MiB.
    pub max_frame_size: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE we advertise for streams. Default 2 MiB.
    pub initial_stream_window: u32,
    /// Receive window of the connection (raised from 65 535 by WINDOW_UPDATE on stream 0).
    /// Default 4 MiB.
    pub initial_connection_window: u32,
    /// Upper bound for the adaptive window (stream and connection). Default 16 MiB.
    pub max_window: u32,
    /// Fraction (in 1/256) of the window that must be consumed before a WINDOW_UPDATE is sent.
    /// Default 128 (half the window).
    pub window_update_threshold_256: u32,
    /// SETTINGS_MAX_CONCURRENT_STREAMS we advertise. Default 256.
    pub max_concurrent_streams: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce. Default 64 KiB.
    pub max_header_list_size: u32,
    /// SETTINGS_HEADER_TABLE_SIZE we advertise. Default 4096.
    pub header_table_size: u32,
    /// Whether adaptive (BDP) window growth is enabled. Default true.
    pub adaptive_window: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_size: 1 << 20,
            initial_stream_window: 2 << 20,
            initial_connection_window: 4 << 20,
            max_window: 16 << 20,
            window_update_threshold_256: 128,
            max_concurrent_streams: 256,
            max_header_list_size: 64 << 10,
            header_table_size: 4096,
            adaptive_window: true,
        }
    }
}
