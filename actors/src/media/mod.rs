//! Sans-IO media code: plain structs and functions, no sockets, clocks or actix types.

pub mod amf;
pub mod codec;
pub mod flv;
pub mod frame;
pub mod fuzz;
pub mod gop;
pub mod hls_playlist;
pub mod rtmp_chunk;
pub mod timeline;
pub mod ts;

pub use frame::{FrameKind, MediaFrame};
