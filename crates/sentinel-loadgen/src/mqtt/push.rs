//! Command push latency: devices subscribed to their `commands` topic, and a
//! member queueing `refresh_inventory` commands one at a time through the HTTPS
//! API (round robin over the devices). Each is timed from the moment its queue
//! request is sent until the PUBLISH carrying it has reached its device, which
//! acknowledges it and checks its signature, as the agent would.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rumqttc::mqttbytes::{QoS, v4};
use sentinel_protocol::signing::{CommandVerifier, SignedCommand};
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::admin::Admin;
use crate::client::Failure;
use crate::device::unix_now;
use crate::mqtt::enroll::Enrolled;
use crate::mqtt::link::{self, Gateway, Link};
use crate::stats::{Population, Recorder, Summary};
use crate::tracker::Tracker;

/// What subscribed devices ask for; the phase is over long before.
const KEEP_ALIVE_SECONDS: u16 = 600;

/// How long a command may take to arrive before the next one is queued anyway
/// (it then counts as undelivered).
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(5);

/// The push phase's results.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    /// Devices that connected and subscribed.
    pub subscribed: usize,
    pub commands_queued: u64,
    pub commands_received: u64,
    pub commands_undelivered: u64,
    /// Queue request sent → PUBLISH received.
    pub delivery: Summary,
}

/// Subscribes `devices`, then queues `commands` commands one after another.
pub async fn measure(
    gateway: &Gateway,
    admin: &Admin,
    org: Uuid,
    devices: &[Enrolled],
    commands: usize,
    sources: &[IpAddr],
    recorder: &Arc<Recorder>,
) -> PushReport {
    let tracker = Arc::new(Tracker::default());
    let arrivals = Arc::new(Notify::new());
    let (stop, stopped) = watch::channel(false);
    let mut subscribing = JoinSet::new();
    for device in devices {
        let source = (!sources.is_empty()).then(|| sources[device.index % sources.len()]);
        let (gateway, id, token) = (gateway.clone(), device.id, device.token.clone());
        let verifier = CommandVerifier::from_hex(&device.command_key);
        subscribing.spawn(async move {
            let mut link = gateway
                .connect(source, id, &token, KEEP_ALIVE_SECONDS)
                .await?;
            link.subscribe(&link::topic(org, id, "commands")).await?;
            Ok::<_, Failure>((id, verifier, link))
        });
    }
    let mut subscribed = Vec::with_capacity(devices.len());
    let mut receiving = JoinSet::new();
    while let Some(done) = subscribing.join_next().await {
        match done {
            Ok(Ok((id, verifier, link))) => {
                subscribed.push(id);
                receiving.spawn(receive(
                    link,
                    id,
                    verifier,
                    tracker.clone(),
                    recorder.clone(),
                    arrivals.clone(),
                    stopped.clone(),
                ));
            }
            Ok(Err(failure)) => recorder.error(Population::Clean, "push: subscribe", failure),
            Err(_) => recorder.error(Population::Clean, "push: subscribe", Failure::Transport),
        }
    }

    if !subscribed.is_empty() {
        for n in 0..commands {
            let device = subscribed[n % subscribed.len()];
            let sent = Instant::now();
            let id = match admin.queue_command(org, device, n).await {
                Ok(id) => id,
                Err(failure) => {
                    recorder.error(Population::Clean, "member: queue command", failure);
                    continue;
                }
            };
            recorder.latency(Population::Clean, "member: queue command", sent.elapsed());
            recorder.commands_queued.fetch_add(1, Ordering::Relaxed);
            tracker.queued(id, sent, recorder);
            let deadline = tokio::time::Instant::now() + ARRIVAL_TIMEOUT;
            while !tracker.is_delivered(id)
                && tokio::time::timeout_at(deadline, arrivals.notified())
                    .await
                    .is_ok()
            {}
        }
    }
    let _ = stop.send(true);
    while receiving.join_next().await.is_some() {}
    PushReport {
        subscribed: subscribed.len(),
        commands_queued: recorder.commands_queued.load(Ordering::Relaxed),
        commands_received: recorder.commands_received.load(Ordering::Relaxed),
        commands_undelivered: tracker.undelivered(),
        delivery: recorder.delivery(),
    }
}

/// One subscribed device: notes each command's arrival, acknowledges it and
/// checks its signature, until `stop`.
async fn receive(
    mut link: Link,
    device: Uuid,
    verifier: Option<CommandVerifier>,
    tracker: Arc<Tracker>,
    recorder: Arc<Recorder>,
    arrivals: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let packet = tokio::select! {
            packet = link.next() => packet,
            _ = stop.changed() => return,
        };
        let arrived = Instant::now();
        let publish = match packet {
            Ok(v4::Packet::Publish(publish)) => publish,
            Ok(_) => {
                recorder.error(Population::Clean, "push: command", Failure::Decode);
                continue;
            }
            Err(failure) => {
                recorder.error(Population::Clean, "push: command", failure);
                return;
            }
        };
        let signed: Option<SignedCommand> = serde_json::from_slice(&publish.payload).ok();
        if let Some(signed) = &signed {
            tracker.arrived(signed.id, arrived, &recorder);
            arrivals.notify_one();
        }
        if publish.qos == QoS::AtLeastOnce {
            let acked = match link.puback(publish.pkid) {
                Ok(()) => link.flush().await,
                Err(failure) => Err(failure),
            };
            if let Err(failure) = acked {
                recorder.error(Population::Clean, "push: command", failure);
                return;
            }
        }
        let verified = signed
            .zip(verifier.as_ref())
            .is_some_and(|(signed, v)| v.open(&signed, device, unix_now()).is_ok());
        if !verified {
            recorder.error(Population::Clean, "command signature", Failure::Decode);
        }
    }
}
