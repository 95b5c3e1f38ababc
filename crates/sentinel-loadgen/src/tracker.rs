//! Command delivery latency: from the moment the member's queue request is sent
//! to the moment the device's poll answer carrying the command arrived. Either
//! end may be seen first (the answer can beat the queue request's own answer).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use uuid::Uuid;

use crate::stats::Recorder;

enum Mark {
    Queued(Instant),
    Arrived(Instant),
    Done,
}

#[derive(Default)]
pub struct Tracker {
    marks: Mutex<HashMap<Uuid, Mark>>,
}

impl Tracker {
    /// Command `id`'s queue request was sent at `sent`.
    pub fn queued(&self, id: Uuid, sent: Instant, recorder: &Recorder) {
        let Ok(mut marks) = self.marks.lock() else {
            return;
        };
        match marks.get(&id) {
            Some(Mark::Arrived(at)) => {
                recorder.delivered(at.saturating_duration_since(sent));
                marks.insert(id, Mark::Done);
            }
            _ => {
                marks.insert(id, Mark::Queued(sent));
            }
        }
    }

    /// Command `id` reached its device at `at`.
    pub fn arrived(&self, id: Uuid, at: Instant, recorder: &Recorder) {
        let Ok(mut marks) = self.marks.lock() else {
            return;
        };
        match marks.get(&id) {
            Some(Mark::Queued(sent)) => {
                recorder.delivered(at.saturating_duration_since(*sent));
                marks.insert(id, Mark::Done);
            }
            Some(Mark::Arrived(_) | Mark::Done) => {}
            None => {
                marks.insert(id, Mark::Arrived(at));
            }
        }
    }

    /// Whether command `id` was both queued and received.
    pub fn is_delivered(&self, id: Uuid) -> bool {
        self.marks
            .lock()
            .is_ok_and(|marks| matches!(marks.get(&id), Some(Mark::Done)))
    }

    /// Commands queued that no device has received.
    pub fn undelivered(&self) -> u64 {
        self.marks.lock().map_or(0, |marks| {
            marks
                .values()
                .filter(|m| matches!(m, Mark::Queued(_)))
                .count() as u64
        })
    }
}
