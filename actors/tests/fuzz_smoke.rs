//! The fuzz targets' entry points on pseudo-random and mutated inputs, on stable Rust, so every
//! `make test` exercises them (cargo-fuzz itself needs nightly; see fuzz/).

use switchboard_actors::media::{flv, fuzz};

/// xorshift64*: deterministic, so a failure reproduces from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = (self.next() as usize) % (max_len + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Flip, insert and delete a few bytes of a valid sample.
    fn mutate(&mut self, sample: &[u8]) -> Vec<u8> {
        let mut out = sample.to_vec();
        for _ in 0..(1 + self.next() % 4) {
            let pos = if out.is_empty() {
                0
            } else {
                (self.next() as usize) % out.len()
            };
            match self.next() % 3 {
                0 if !out.is_empty() => out[pos] ^= 1 << (self.next() % 8),
                1 => out.insert(pos, self.next() as u8),
                _ if !out.is_empty() => {
                    out.remove(pos);
                }
                _ => {}
            }
        }
        out
    }
}

fn valid_flv() -> Vec<u8> {
    let mut data = flv::FLV_HEADER_AV.to_vec();
    data.extend_from_slice(&flv::encode_tag(
        9,
        0,
        &[
            0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 4,
            0x68, 0xee, 0x3c, 0x80,
        ],
    ));
    data.extend_from_slice(&flv::encode_tag(8, 0, &[0xaf, 0x00, 0x12, 0x10]));
    data.extend_from_slice(&flv::encode_tag(
        9,
        33,
        &[0x17, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x65],
    ));
    data
}

#[test]
fn flv_parsing_survives_random_and_mutated_input() {
    let mut rng = Rng(0x5eed_0001);
    let sample = valid_flv();
    for _ in 0..20_000 {
        fuzz::flv_tags(&rng.bytes(256));
        fuzz::flv_tags(&rng.mutate(&sample));
    }
}

#[test]
fn codec_parsing_survives_random_and_mutated_input() {
    let mut rng = Rng(0x5eed_0002);
    let sample = valid_flv();
    let bodies = [
        sample[24..48].to_vec(),
        vec![0xaf, 0x00, 0x12, 0x10],
        vec![0x9c, b'h', b'v', b'c', b'1', 0, 0, 0],
    ];
    for i in 0..30_000 {
        fuzz::codec_configs(&rng.bytes(64));
        fuzz::codec_configs(&rng.mutate(&bodies[i % bodies.len()]));
    }
}

#[test]
fn frame_pipeline_survives_random_input() {
    let mut rng = Rng(0x5eed_0003);
    for _ in 0..3000 {
        fuzz::media_frames(&rng.bytes(2048));
    }
}
