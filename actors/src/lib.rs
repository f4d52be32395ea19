//! Switchboard's actor graph and the sans-IO media code it needs.
//!
//! - [`registry::Registry`] routes publish and play requests to stream channels.
//! - [`stream_channel::StreamChannel`] owns one stream: GOP cache, timeline, viewers.
//! - [`rtmp_session::RtmpSession`] is one RTMP connection (publisher or player).
//! - [`flv_viewer::FlvViewer`] is one HTTP-FLV viewer.
//!
//! Everything under [`media`] is plain data in, data out.

pub mod client;
pub mod flv_viewer;
pub mod hls_hub;
pub mod hls_segmenter;
pub mod key_store;
pub mod media;
pub mod recorder;
pub mod recorder_hub;
pub mod registry;
pub mod relay_manager;
pub mod relay_session;
pub mod rtmp_session;
pub mod settings;
pub mod socket_writer;
pub mod stream_channel;
