//! The per-stream replay cache a late viewer is primed with: the latest headers plus the
//! most recent complete GOP(s), so playback can start at once from a keyframe.

use std::collections::VecDeque;
use std::sync::Arc;

use super::frame::{FrameKind, MediaFrame};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GopLimits {
    /// How many GOPs to keep (livego's `gop_num`); 0 disables the GOP cache (headers are
    /// still kept).
    pub gops: usize,
    /// Cap on cached frames across all GOPs.
    pub max_frames: usize,
    /// Cap on cached body bytes across all GOPs.
    pub max_bytes: usize,
}

impl Default for GopLimits {
    fn default() -> Self {
        GopLimits {
            gops: 1,
            max_frames: 2500,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Default)]
struct Gop {
    frames: Vec<Arc<MediaFrame>>,
    bytes: usize,
}

#[derive(Debug)]
pub struct GopCache {
    limits: GopLimits,
    metadata: Option<Arc<MediaFrame>>,
    video_header: Option<Arc<MediaFrame>>,
    audio_header: Option<Arc<MediaFrame>>,
    /// Oldest first; every GOP starts with a keyframe.
    gops: VecDeque<Gop>,
    frames: usize,
    bytes: usize,
    /// Whether the newest GOP accepts frames. False until the first keyframe and after an
    /// overflow, so a GOP missing its start or its middle is never replayed.
    open: bool,
}

impl GopCache {
    pub fn new(limits: GopLimits) -> Self {
        GopCache {
            limits,
            metadata: None,
            video_header: None,
            audio_header: None,
            gops: VecDeque::new(),
            frames: 0,
            bytes: 0,
            open: false,
        }
    }

    pub fn limits(&self) -> &GopLimits {
        &self.limits
    }

    /// Whether a GOP is cached, i.e. a replay ends in decodable video that live frames can
    /// follow. False before the first keyframe, after an overflow and after `clear_media`.
    pub fn has_keyframe(&self) -> bool {
        self.open && !self.gops.is_empty()
    }

    pub fn push(&mut self, frame: &Arc<MediaFrame>) {
        match frame.kind {
            FrameKind::Metadata => self.metadata = Some(Arc::clone(frame)),
            FrameKind::Video if frame.is_sequence_header => {
                // Cached frames were coded against the old configuration; replaying them after
                // the new header would only feed a decoder garbage until the next keyframe.
                if replaces_different(&self.video_header, frame) {
                    self.clear_media();
                }
                self.video_header = Some(Arc::clone(frame));
            }
            FrameKind::Audio if frame.is_sequence_header => {
                if replaces_different(&self.audio_header, frame) {
                    self.clear_media();
                }
                self.audio_header = Some(Arc::clone(frame));
            }
            FrameKind::Video if frame.is_keyframe => self.start_gop(frame),
            FrameKind::Video | FrameKind::Audio => self.append(frame),
        }
    }

    fn start_gop(&mut self, keyframe: &Arc<MediaFrame>) {
        if self.limits.gops == 0 {
            return;
        }
        self.gops.push_back(Gop::default());
        while self.gops.len() > self.limits.gops {
            self.drop_oldest();
        }
        self.open = true;
        self.append(keyframe);
    }

    fn append(&mut self, frame: &Arc<MediaFrame>) {
        if !self.open {
            return;
        }
        let len = frame.len();
        while self.would_overflow(len) && self.gops.len() > 1 {
            self.drop_oldest();
        }
        if self.would_overflow(len) {
            // The current GOP alone is too big; a truncated GOP is useless, so cache nothing
            // until the next keyframe.
            self.clear_media();
            return;
        }
        if let Some(gop) = self.gops.back_mut() {
            gop.frames.push(Arc::clone(frame));
            gop.bytes += len;
            self.frames += 1;
            self.bytes += len;
        }
    }

    fn would_overflow(&self, len: usize) -> bool {
        self.frames + 1 > self.limits.max_frames
            || self.bytes.saturating_add(len) > self.limits.max_bytes
    }

    fn drop_oldest(&mut self) {
        if let Some(gop) = self.gops.pop_front() {
            self.frames -= gop.frames.len();
            self.bytes -= gop.bytes;
        }
    }

    /// Headers (metadata, video, audio) followed by every cached frame, oldest first.
    pub fn replay(&self) -> Vec<Arc<MediaFrame>> {
        let mut out = Vec::with_capacity(3 + self.frames);
        out.extend(
            [&self.metadata, &self.video_header, &self.audio_header]
                .into_iter()
                .flatten()
                .cloned(),
        );
        for gop in &self.gops {
            out.extend(gop.frames.iter().cloned());
        }
        out
    }

    /// Cached audio/video frames (headers not counted).
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Body bytes of the cached audio/video frames (headers not counted).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of cached GOPs, the newest possibly still growing.
    pub fn gop_count(&self) -> usize {
        self.gops.len()
    }

    /// Drops the cached GOPs but keeps the headers; caching resumes at the next keyframe.
    pub fn clear_media(&mut self) {
        self.gops.clear();
        self.frames = 0;
        self.bytes = 0;
        self.open = false;
    }

    /// Drops everything, headers included.
    pub fn clear(&mut self) {
        self.clear_media();
        self.metadata = None;
        self.video_header = None;
        self.audio_header = None;
    }

    pub fn video_header(&self) -> Option<&Arc<MediaFrame>> {
        self.video_header.as_ref()
    }

    pub fn audio_header(&self) -> Option<&Arc<MediaFrame>> {
        self.audio_header.as_ref()
    }

    pub fn metadata(&self) -> Option<&Arc<MediaFrame>> {
        self.metadata.as_ref()
    }
}

fn replaces_different(old: &Option<Arc<MediaFrame>>, new: &MediaFrame) -> bool {
    old.as_ref().is_some_and(|old| old.body != new.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(kind: FrameKind, ts: u32, body: Vec<u8>) -> Arc<MediaFrame> {
        Arc::new(MediaFrame::new(kind, ts, Bytes::from(body)))
    }
    fn video_header(version: u8) -> Arc<MediaFrame> {
        frame(FrameKind::Video, 0, vec![0x17, 0, 0, 0, 0, 1, version])
    }
    fn audio_header(asc: u8) -> Arc<MediaFrame> {
        frame(FrameKind::Audio, 0, vec![0xaf, 0, asc, 0x10])
    }
    fn metadata(tag: u8) -> Arc<MediaFrame> {
        frame(FrameKind::Metadata, 0, vec![2, 0, 1, tag])
    }
    fn key(ts: u32) -> Arc<MediaFrame> {
        frame(FrameKind::Video, ts, vec![0x17, 1, 0, 0, 0, 0xaa])
    }
    fn inter(ts: u32) -> Arc<MediaFrame> {
        frame(FrameKind::Video, ts, vec![0x27, 1, 0, 0, 0, 0xbb])
    }
    fn audio(ts: u32) -> Arc<MediaFrame> {
        frame(FrameKind::Audio, ts, vec![0xaf, 1, 0xcc])
    }

    fn sized(kind_key: bool, ts: u32, len: usize) -> Arc<MediaFrame> {
        let mut body = vec![if kind_key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        body.resize(len, 0);
        frame(FrameKind::Video, ts, body)
    }

    fn cache(gops: usize) -> GopCache {
        let mut c = GopCache::new(GopLimits {
            gops,
            ..GopLimits::default()
        });
        c.push(&metadata(1));
        c.push(&video_header(1));
        c.push(&audio_header(0x12));
        c
    }

    /// Pushes `n` GOPs of keyframe + audio + inter + audio, 100 ms apart.
    fn push_gops(c: &mut GopCache, n: u32) {
        for g in 0..n {
            let t = g * 100;
            c.push(&key(t));
            c.push(&audio(t + 10));
            c.push(&inter(t + 33));
            c.push(&audio(t + 40));
        }
    }

    fn media_timestamps(c: &GopCache) -> Vec<u32> {
        c.replay()
            .iter()
            .filter(|f| !f.is_sequence_header && f.kind != FrameKind::Metadata)
            .map(|f| f.timestamp)
            .collect()
    }

    #[test]
    fn the_defaults_match_livego() {
        assert_eq!(
            GopLimits::default(),
            GopLimits {
                gops: 1,
                max_frames: 2500,
                max_bytes: 64 << 20
            }
        );
    }

    #[test]
    fn replay_starts_with_the_headers_then_the_last_keyframe_and_includes_audio() {
        let mut c = cache(1);
        push_gops(&mut c, 3);
        let replay = c.replay();
        assert_eq!(replay[0].kind, FrameKind::Metadata);
        assert!(replay[1].kind == FrameKind::Video && replay[1].is_sequence_header);
        assert!(replay[2].kind == FrameKind::Audio && replay[2].is_sequence_header);
        assert!(replay[3].is_keyframe);
        assert_eq!(replay[3].timestamp, 200);
        assert_eq!(media_timestamps(&c), vec![200, 210, 233, 240]);
        assert_eq!(c.frames(), 4);
        assert_eq!(c.bytes(), 6 + 3 + 6 + 3);
    }

    #[test]
    fn gop_num_two_and_three_keep_that_many_gops() {
        for n in [2, 3] {
            let mut c = cache(n);
            push_gops(&mut c, 5);
            assert_eq!(c.gop_count(), n);
            let ts = media_timestamps(&c);
            assert_eq!(ts.len(), 4 * n);
            assert_eq!(ts[0], (5 - n as u32) * 100);
        }
    }

    #[test]
    fn gop_num_zero_caches_headers_only() {
        let mut c = cache(0);
        push_gops(&mut c, 2);
        assert_eq!(c.replay().len(), 3);
        assert_eq!(c.frames(), 0);
    }

    #[test]
    fn frames_before_the_first_keyframe_are_never_cached() {
        let mut c = cache(1);
        c.push(&audio(0));
        c.push(&inter(10));
        assert_eq!(c.frames(), 0);
        assert!(!c.has_keyframe());
        c.push(&key(20));
        assert!(c.has_keyframe());
        c.push(&inter(30));
        assert_eq!(media_timestamps(&c), vec![20, 30]);
    }

    #[test]
    fn an_audio_only_stream_caches_only_its_headers() {
        let mut c = GopCache::new(GopLimits::default());
        c.push(&metadata(1));
        c.push(&audio_header(0x12));
        for t in 0..100 {
            c.push(&audio(t * 23));
        }
        assert_eq!(c.frames(), 0);
        let replay = c.replay();
        assert_eq!(replay.len(), 2);
        assert!(c.video_header().is_none());
        assert!(c.audio_header().is_some());
    }

    #[test]
    fn headers_are_replaced_by_newer_ones() {
        let mut c = cache(1);
        c.push(&metadata(2));
        c.push(&video_header(1));
        c.push(&audio_header(0x11));
        assert_eq!(c.metadata().unwrap().body[3], 2);
        assert_eq!(c.audio_header().unwrap().body[2], 0x11);
        let replay = c.replay();
        assert_eq!(replay.len(), 3);
        assert_eq!(replay[0].body[3], 2);
    }

    #[test]
    fn a_changed_sequence_header_drops_gops_coded_against_the_old_one() {
        let mut c = cache(2);
        push_gops(&mut c, 2);
        // The same header again (encoders resend it) keeps the cache.
        c.push(&video_header(1));
        assert_eq!(c.frames(), 8);
        c.push(&video_header(2));
        assert_eq!(c.frames(), 0);
        assert_eq!(c.video_header().unwrap().body[6], 2);
        c.push(&inter(500));
        assert_eq!(c.frames(), 0, "caching resumes only at a keyframe");
        c.push(&key(533));
        assert_eq!(c.frames(), 1);
        c.push(&audio_header(0x13));
        assert_eq!(c.frames(), 0);
    }

    #[test]
    fn the_frame_cap_drops_the_oldest_gops_first() {
        let mut c = GopCache::new(GopLimits {
            gops: 3,
            max_frames: 10,
            max_bytes: usize::MAX,
        });
        push_gops(&mut c, 3); // 12 frames wanted, only 10 allowed
        assert_eq!(c.gop_count(), 2);
        assert_eq!(
            media_timestamps(&c),
            vec![100, 110, 133, 140, 200, 210, 233, 240]
        );
        assert!(c.frames() <= 10);
    }

    #[test]
    fn the_byte_cap_drops_the_oldest_gops_first() {
        let mut c = GopCache::new(GopLimits {
            gops: 3,
            max_frames: usize::MAX,
            max_bytes: 1000,
        });
        c.push(&sized(true, 0, 400));
        c.push(&sized(false, 33, 100));
        c.push(&sized(true, 66, 400));
        c.push(&sized(false, 99, 200)); // 1100 > 1000: the first GOP goes
        assert_eq!(c.gop_count(), 1);
        assert_eq!(c.bytes(), 600);
        assert_eq!(media_timestamps(&c), vec![66, 99]);
    }

    #[test]
    fn a_gop_that_alone_overflows_is_dropped_until_the_next_keyframe() {
        let mut c = GopCache::new(GopLimits {
            gops: 1,
            max_frames: 3,
            max_bytes: usize::MAX,
        });
        c.push(&key(0));
        c.push(&inter(1));
        c.push(&inter(2));
        assert_eq!(c.frames(), 3);
        assert!(c.has_keyframe());
        c.push(&inter(3));
        assert_eq!(c.frames(), 0);
        assert!(!c.has_keyframe());
        c.push(&inter(4));
        c.push(&audio(5));
        assert_eq!(c.frames(), 0, "no partial GOP after an overflow");
        c.push(&key(6));
        c.push(&audio(7));
        assert_eq!(media_timestamps(&c), vec![6, 7]);

        let mut c = GopCache::new(GopLimits {
            gops: 1,
            max_frames: 100,
            max_bytes: 100,
        });
        c.push(&sized(true, 0, 101));
        assert_eq!(
            c.frames(),
            0,
            "a keyframe bigger than the cap is not cached"
        );
    }

    #[test]
    fn clear_media_keeps_headers_and_clear_drops_everything() {
        let mut c = cache(1);
        push_gops(&mut c, 1);
        c.clear_media();
        assert_eq!((c.frames(), c.bytes()), (0, 0));
        assert_eq!(c.replay().len(), 3);
        c.push(&inter(1000));
        assert_eq!(c.frames(), 0);
        c.clear();
        assert!(c.replay().is_empty());
        assert!(c.metadata().is_none() && c.video_header().is_none());
    }

    #[test]
    fn replay_shares_the_frames_rather_than_copying_them() {
        let mut c = cache(1);
        let k = key(0);
        c.push(&k);
        let replay = c.replay();
        assert!(Arc::ptr_eq(&replay[3], &k));
    }
}
