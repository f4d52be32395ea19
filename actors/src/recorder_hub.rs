//! The recorder hub: with `flv_archive = true`, keeps one FLV recorder per published stream.
//!
//! A recording follows the stream's channel, so a publisher that reconnects or is taken over
//! continues the same file; a stream that ends and is published again gets a new file.

use std::collections::HashMap;
use std::path::PathBuf;

use actix::prelude::*;

use crate::client::{ClientId, StreamKey};
use crate::recorder::Recorder;
use crate::registry::{Registry, StreamPublished};

// ---------------------------------------------------------------------------------------------
// Messages

/// Recorder → hub: the recorder stopped (the stream ended, or the recording failed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RecordingEnded {
    pub key: StreamKey,
    pub id: ClientId,
}

// ---------------------------------------------------------------------------------------------
// The actor

struct RecorderEntry {
    id: ClientId,
    /// Publishes seen while this recorder ran. One may have come just after its subscription
    /// ended, so a recorder that ends after any is followed by a fresh one, which records only
    /// if the stream is live.
    publishes_since: u64,
}

pub struct RecorderHub {
    registry: Addr<Registry>,
    dir: PathBuf,
    recorders: HashMap<StreamKey, RecorderEntry>,
}

impl RecorderHub {
    pub fn new(registry: Addr<Registry>, dir: PathBuf) -> RecorderHub {
        RecorderHub {
            registry,
            dir,
            recorders: HashMap::new(),
        }
    }

    fn start_recorder(&mut self, key: StreamKey, ctx: &mut Context<Self>) {
        let id = uuid::Uuid::new_v4();
        Recorder::new(
            id,
            key.clone(),
            self.registry.clone(),
            ctx.address(),
            self.dir.clone(),
        )
        .start();
        self.recorders.insert(
            key,
            RecorderEntry {
                id,
                publishes_since: 0,
            },
        );
    }
}

impl Actor for RecorderHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
    }
}

impl Handler<StreamPublished> for RecorderHub {
    type Result = ();

    fn handle(&mut self, msg: StreamPublished, ctx: &mut Self::Context) {
        match self.recorders.get_mut(&msg.key) {
            Some(entry) => entry.publishes_since += 1,
            None => self.start_recorder(msg.key, ctx),
        }
    }
}

impl Handler<RecordingEnded> for RecorderHub {
    type Result = ();

    fn handle(&mut self, msg: RecordingEnded, ctx: &mut Self::Context) {
        let current = self
            .recorders
            .get(&msg.key)
            .is_some_and(|entry| entry.id == msg.id);
        if !current {
            return;
        }
        if let Some(entry) = self.recorders.remove(&msg.key) {
            if entry.publishes_since > 0 {
                self.start_recorder(msg.key, ctx);
            }
        }
    }
}
