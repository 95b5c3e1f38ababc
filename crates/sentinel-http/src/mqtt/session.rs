//! One device connection: CONNECT and authentication, then packets in order —
//! publishes into the agent operations, subscriptions to the device's command
//! topic, command pushes when the bus says one is waiting — until the device
//! leaves, breaks the protocol, goes silent past its keepalive, connects
//! again elsewhere, is revoked, or the server stops.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sentinel_core::audit::Outcome;
use sentinel_core::audit::{Actor, AuditAction, AuditContext, Entity, EntityType, LogId, Origin};
use sentinel_core::{BearerSecret, SecretHash};
use sentinel_protocol::command::ResultMessage;
use sentinel_protocol::inventory::{InventoryReport, InventoryStatus};
use sentinel_protocol::paths::DEVICE_TOKEN_PREFIX;
use sentinel_protocol::telemetry::TelemetryBatch;
use sentinel_store::StoreError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use super::topics::{Channel, DeviceTopics, Refusal};
use super::wire::{self, Connect, Inbound, Outbound, Reason, Version, WireError};
use super::{Gateway, MAX_PACKET_BYTES};
use crate::access::DeviceContext;
use crate::error::AppError;
use crate::ops;
use crate::rate_limit::RateKey;

/// A client has this long to complete its CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest CONNECT accepted (credentials are short; nobody gets to make an
/// unauthenticated connection buffer more).
const MAX_CONNECT_BYTES: usize = 4096;
/// The longest keepalive a client may ask for, and the one used for clients
/// that ask for none (MQTT 5 clients are told; 3.1.1 has no way to).
const MAX_KEEP_ALIVE: u16 = 1200;
/// A write that does not finish in this time ends the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Commands pushed and not yet acknowledged, at most.
const MAX_IN_FLIGHT: usize = 100;
/// How much room a read starts with; it grows (up to [`MAX_READ_CHUNK`]) while
/// reads fill it, and an idle connection gives its buffer back.
const READ_CHUNK: usize = 512;
const MAX_READ_CHUNK: usize = 64 * 1024;
/// The most packets handled as one run (and telemetry messages stored in one
/// transaction).
const MAX_RUN: usize = 64;
/// How long one bus waiter waits before it is renewed.
const WAKE_RENEWAL: Duration = Duration::from_secs(3600);

/// What handling a packet leads to.
enum Flow {
    Continue,
    /// End the connection, telling an MQTT 5 client why (None: just close).
    Close(Option<Reason>),
}

/// Serves `stream` from CONNECT to the end.
pub(super) async fn run<S>(
    gateway: &Gateway,
    mut stream: S,
    peer: SocketAddr,
    mut stopping: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let metrics = &gateway.state.metrics;
    let mut read = BytesMut::with_capacity(256);
    let connect =
        match tokio::time::timeout(CONNECT_TIMEOUT, read_connect(&mut stream, &mut read)).await {
            Ok(Ok(connect)) => connect,
            Ok(Err(WireError::UnsupportedVersion(level))) => {
                metrics
                    .mqtt_connect_refusals
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, level, "MQTT CONNECT with an unsupported protocol level");
                // Answered in 3.1.1's form, which every version can read.
                let mut out = BytesMut::new();
                let refusal = Outbound::ConnAck {
                    reason: Reason::UnsupportedVersion,
                    server_keep_alive: None,
                    max_packet_bytes: 0,
                };
                if wire::write(&refusal, Version::V311, &mut out).is_ok() {
                    let _ = write_all(&mut stream, &out).await;
                }
                return;
            }
            Ok(Err(e)) => {
                metrics
                    .mqtt_connect_refusals
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, error = %e, "MQTT connection closed before a valid CONNECT");
                return;
            }
            Err(_) => {
                metrics
                    .mqtt_connect_refusals
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, "MQTT CONNECT timed out");
                return;
            }
        };
    let version = connect.version;
    // Boxed here and below: an idle session's task then holds only the
    // packet loop, not the largest store future any step may await.
    let (ctx, token) = match Box::pin(authenticate(gateway, &connect, peer)).await {
        Ok(login) => login,
        Err(reason) => {
            metrics
                .mqtt_connect_refusals
                .fetch_add(1, Ordering::Relaxed);
            let mut out = BytesMut::new();
            let refusal = Outbound::ConnAck {
                reason,
                server_keep_alive: None,
                max_packet_bytes: 0,
            };
            if wire::write(&refusal, version, &mut out).is_ok() {
                let _ = write_all(&mut stream, &out).await;
            }
            let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.shutdown()).await;
            return;
        }
    };
    let (keep_alive, told) = match connect.keep_alive {
        0 => (MAX_KEEP_ALIVE, true),
        k if k > MAX_KEEP_ALIVE => (MAX_KEEP_ALIVE, true),
        k => (k, false),
    };
    let device = ctx.device.id;
    let org = ctx.store.org_id();
    let (connection, taken_over) = gateway.register(device);
    tracing::info!(%peer, %org, device_id = %device, version = version.as_str(), "MQTT device connected");
    let origin = Origin::new(
        peer.ip(),
        &format!("MQTT {} client {}", version.as_str(), connect.client_id),
        Uuid::now_v7(),
    );
    let mut session = Session {
        gateway,
        stream,
        version,
        topics: DeviceTopics::new(org, device),
        ctx,
        token,
        origin,
        keep_alive: Duration::from_millis(u64::from(keep_alive) * 1500),
        subscribed: false,
        next_pkid: 0,
        in_flight: Vec::new(),
        read,
        write: BytesMut::new(),
    };
    session.queue(&Outbound::ConnAck {
        reason: Reason::Success,
        server_keep_alive: (version == Version::V5 && told).then_some(keep_alive),
        max_packet_bytes: u32::try_from(MAX_PACKET_BYTES).unwrap_or(u32::MAX),
    });
    let ending = session.serve(&taken_over, &mut stopping).await;
    gateway.unregister(device, connection);
    tracing::info!(device_id = %device, reason = ?ending, "MQTT device disconnected");
    Box::pin(session.close(ending)).await;
}

/// Reads until a complete CONNECT is buffered.
async fn read_connect<S>(stream: &mut S, buf: &mut BytesMut) -> Result<Connect, WireError>
where
    S: AsyncRead + Unpin,
{
    loop {
        match wire::read(buf, None, MAX_CONNECT_BYTES)? {
            Some(Inbound::Connect(connect)) => return Ok(connect),
            Some(_) => return Err(WireError::Malformed("expected CONNECT".into())),
            None => {}
        }
        buf.reserve(512);
        match stream.read_buf(buf).await {
            Ok(0) | Err(_) => return Err(WireError::Malformed("connection closed".into())),
            Ok(_) => {}
        }
    }
}

/// The device whose id is the username and whose live token is the password
/// (and that token's hash), within its rate limit; otherwise the CONNACK
/// reason to refuse with.
async fn authenticate(
    gateway: &Gateway,
    connect: &Connect,
    peer: SocketAddr,
) -> Result<(DeviceContext, SecretHash), Reason> {
    let state = &gateway.state;
    // A failed attempt counts against the address, like an HTTPS request
    // with a bad token; beyond the limit the answer says so.
    let refused = || match state.limits.requests.check(RateKey::address(peer.ip())) {
        Ok(()) => Reason::BadCredentials,
        Err(_) => Reason::QuotaExceeded,
    };
    let internal = |e: StoreError| {
        tracing::error!(error = %e, "MQTT authentication failed on the store");
        Reason::ServerBusy
    };
    let Some(device_id) = connect
        .username
        .as_deref()
        .and_then(|u| u.parse::<Uuid>().ok())
    else {
        return Err(refused());
    };
    let Some(secret) = connect
        .password
        .as_deref()
        .and_then(|p| p.strip_prefix(DEVICE_TOKEN_PREFIX))
        .and_then(BearerSecret::parse)
    else {
        return Err(refused());
    };
    let access = ops::agent::authenticate(state, secret.hash())
        .await
        .map_err(internal)?;
    let Some(access) = access.filter(|a| a.device_id() == device_id) else {
        return Err(refused());
    };
    let store = state.stores.device_store(&access).await.map_err(internal)?;
    let device = match store
        .seen(state.clock.now(), crate::access::seen_every(state))
        .await
    {
        Ok(device) => device,
        // Revoked.
        Err(StoreError::NotFound) => return Err(refused()),
        Err(e) => return Err(internal(e)),
    };
    if state
        .limits
        .agent
        .check(RateKey::Device(device.id))
        .is_err()
    {
        return Err(Reason::QuotaExceeded);
    }
    Ok((DeviceContext { store, device }, secret.hash()))
}

async fn write_all<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> std::io::Result<()> {
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(result) => result,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

struct Session<'g, S> {
    gateway: &'g Gateway,
    stream: S,
    version: Version,
    topics: DeviceTopics,
    ctx: DeviceContext,
    /// The hash of the token the device logged in with: once a rotation
    /// retires it, the session ends.
    token: SecretHash,
    origin: Origin,
    /// Silence longer than this (1.5 × keepalive) ends the connection.
    keep_alive: Duration,
    subscribed: bool,
    next_pkid: u16,
    /// Commands pushed and not yet acknowledged: (packet id, command id).
    in_flight: Vec<(u16, Uuid)>,
    read: BytesMut,
    write: BytesMut,
}

impl<S> Session<'_, S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// The packet loop; returns why it ended.
    async fn serve(
        &mut self,
        taken_over: &tokio::sync::Notify,
        stopping: &mut watch::Receiver<bool>,
    ) -> Option<Reason> {
        let bus = self.gateway.state.bus.clone();
        let device = self.ctx.device.id;
        // Listening before any look at the store, so a command queued in
        // between wakes us.
        let mut wake = Box::pin(bus.waiter(device).wait(WAKE_RENEWAL));
        let mut deadline = Instant::now() + self.keep_alive;
        let mut chunk = READ_CHUNK;
        loop {
            // What is buffered, a run at a time: consecutive telemetry
            // messages of a run are stored in one transaction.
            let (packets, broken) = self.decode();
            let got = !packets.is_empty();
            if got {
                deadline = Instant::now() + self.keep_alive;
            }
            if let Flow::Close(reason) = Box::pin(self.handle_all(packets)).await {
                return reason;
            }
            if let Some(reason) = broken {
                return Some(reason);
            }
            if self.flush().await.is_err() {
                return None;
            }
            if got {
                continue;
            }
            if self.read.is_empty() && self.read.capacity() > chunk {
                self.read = BytesMut::new();
            }
            self.read.reserve(chunk);
            let room = self.read.capacity() - self.read.len();
            tokio::select! {
                read = self.stream.read_buf(&mut self.read) => match read {
                    Ok(0) | Err(_) => return None,
                    // A client that fills the room gets more (its pipelined
                    // messages are then stored together); one that does not,
                    // the small room again.
                    Ok(n) if n >= room => chunk = (chunk * 4).min(MAX_READ_CHUNK),
                    Ok(_) => chunk = READ_CHUNK,
                },
                woke = &mut wake => {
                    wake = Box::pin(bus.waiter(device).wait(WAKE_RENEWAL));
                    if woke && let Flow::Close(reason) = Box::pin(self.on_wake()).await {
                        return reason;
                    }
                }
                () = taken_over.notified() => return Some(Reason::SessionTakenOver),
                _ = stopping.changed() => return Some(Reason::ServerShuttingDown),
                () = tokio::time::sleep_until(deadline) => return Some(Reason::KeepAliveTimeout),
            }
        }
    }

    /// Up to [`MAX_RUN`] buffered packets, and the reason to close if the
    /// bytes after them are not a packet.
    fn decode(&mut self) -> (Vec<Inbound>, Option<Reason>) {
        let mut packets = Vec::new();
        while packets.len() < MAX_RUN {
            match wire::read(&mut self.read, Some(self.version), MAX_PACKET_BYTES) {
                Ok(Some(packet)) => packets.push(packet),
                Ok(None) => break,
                Err(WireError::TooLarge(_)) => return (packets, Some(Reason::PacketTooLarge)),
                Err(e) => {
                    tracing::debug!(device_id = %self.ctx.device.id, error = %e, "malformed MQTT packet");
                    return (packets, Some(Reason::Malformed));
                }
            }
        }
        (packets, None)
    }

    /// Handles `packets` in order; runs of telemetry publishes go to the store
    /// together.
    async fn handle_all(&mut self, packets: Vec<Inbound>) -> Flow {
        let telemetry = self.topics.topic(Channel::Telemetry);
        let mut run = Vec::new();
        for packet in packets {
            match packet {
                Inbound::Publish {
                    topic,
                    qos,
                    pkid,
                    payload,
                } if qos <= 1 && topic == telemetry => run.push((qos, pkid, payload)),
                other => {
                    if let Flow::Close(reason) = self.telemetry_run(std::mem::take(&mut run)).await
                    {
                        return Flow::Close(reason);
                    }
                    if let Flow::Close(reason) = self.handle(other).await {
                        return Flow::Close(reason);
                    }
                }
            }
        }
        self.telemetry_run(run).await
    }

    /// Telemetry publishes to the device's own topic, in order: each counted
    /// and parsed alone, the valid ones stored in one transaction, then each
    /// answered.
    async fn telemetry_run(&mut self, run: Vec<(u8, u16, Bytes)>) -> Flow {
        if run.is_empty() {
            return Flow::Continue;
        }
        let state = &self.gateway.state;
        let mut outcomes: Vec<Result<Reason, AppError>> = Vec::with_capacity(run.len());
        let mut batches = Vec::with_capacity(run.len());
        let mut positions = Vec::with_capacity(run.len());
        for (_, _, payload) in &run {
            if let Err(e) = state
                .limits
                .agent
                .check(RateKey::Device(self.ctx.device.id))
            {
                state.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
                outcomes.push(Err(e));
                continue;
            }
            match parse::<TelemetryBatch>(payload) {
                Ok(batch) => {
                    positions.push(outcomes.len());
                    outcomes.push(Ok(Reason::Success));
                    batches.push(batch);
                }
                Err(e) => outcomes.push(Err(e)),
            }
        }
        let stored = ops::agent::telemetry_batches(state, &self.ctx, &batches).await;
        for (at, result) in positions.into_iter().zip(stored) {
            if let (Err(e), Some(outcome)) = (result, outcomes.get_mut(at)) {
                *outcome = Err(e);
            }
        }
        // Every stored message is acknowledged, even after one that ends the
        // connection: they were all committed together.
        let mut flow = Flow::Continue;
        for ((qos, pkid, _), outcome) in run.into_iter().zip(outcomes) {
            let stored = outcome.is_ok();
            if matches!(flow, Flow::Close(_)) && !stored {
                continue;
            }
            if let Flow::Close(reason) = self.answer(qos, pkid, outcome)
                && matches!(flow, Flow::Continue)
            {
                flow = Flow::Close(reason);
            }
        }
        flow
    }

    async fn handle(&mut self, packet: Inbound) -> Flow {
        match packet {
            Inbound::Publish {
                topic,
                qos,
                pkid,
                payload,
            } => self.on_publish(&topic, qos, pkid, &payload).await,
            Inbound::PubAck { pkid } => {
                self.on_puback(pkid);
                Flow::Continue
            }
            Inbound::Subscribe { pkid, filters } => self.on_subscribe(pkid, filters).await,
            Inbound::Unsubscribe { pkid, filters } => {
                let commands = self.topics.commands();
                let existed = filters
                    .iter()
                    .map(|f| {
                        let was = self.subscribed && *f == commands;
                        if was {
                            self.subscribed = false;
                        }
                        was
                    })
                    .collect();
                self.queue(&Outbound::UnsubAck { pkid, existed });
                Flow::Continue
            }
            Inbound::PingReq => {
                // A ping is the device being heard from, and a moment to see
                // whether it was revoked.
                if let Flow::Close(reason) = self.check_device().await {
                    return Flow::Close(reason);
                }
                self.queue(&Outbound::PingResp);
                Flow::Continue
            }
            Inbound::Disconnect => Flow::Close(None),
            Inbound::Connect(_) => Flow::Close(Some(Reason::ProtocolError)),
            Inbound::Unexpected(kind) => {
                tracing::debug!(device_id = %self.ctx.device.id, kind, "unexpected MQTT packet");
                Flow::Close(Some(Reason::ProtocolError))
            }
        }
    }

    async fn on_publish(&mut self, topic: &str, qos: u8, pkid: u16, payload: &Bytes) -> Flow {
        if qos > 1 {
            return Flow::Close(Some(Reason::QosNotSupported));
        }
        let channel = match self.topics.publish(topic) {
            Ok(channel) => channel,
            Err(refusal) => {
                self.refuse(AuditAction::DeviceMqttPublish, topic, refusal)
                    .await;
                return self.reject(qos, pkid, Reason::NotAuthorized, refusal.reason().into());
            }
        };
        let state = &self.gateway.state;
        // Each message counts like one HTTPS agent request.
        let outcome = match state
            .limits
            .agent
            .check(RateKey::Device(self.ctx.device.id))
        {
            Ok(()) => self.deliver(channel, payload).await,
            Err(e) => {
                state.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        };
        self.answer(qos, pkid, outcome)
    }

    /// Acknowledges a publish that was taken, or refuses it with the reason.
    fn answer(&mut self, qos: u8, pkid: u16, outcome: Result<Reason, AppError>) -> Flow {
        match outcome {
            Ok(reason) => {
                if reason == Reason::Success {
                    self.gateway
                        .state
                        .metrics
                        .mqtt_messages_stored
                        .fetch_add(1, Ordering::Relaxed);
                }
                if qos == 1 {
                    self.queue(&Outbound::PubAck {
                        pkid,
                        reason,
                        detail: None,
                    });
                }
                Flow::Continue
            }
            Err(e) => {
                let (reason, detail) = match e {
                    AppError::BadRequest(text) => (Reason::PayloadFormatInvalid, text),
                    AppError::Invalid(e) => (Reason::PayloadFormatInvalid, e.to_string()),
                    AppError::TooManyRequests(_) => (Reason::QuotaExceeded, e.to_string()),
                    AppError::Internal(text) => {
                        tracing::error!(device_id = %self.ctx.device.id, error = %text, "an MQTT message could not be stored");
                        (Reason::Unspecified, String::from("internal error"))
                    }
                    // Not taken now; the same message may be taken later.
                    AppError::Busy | AppError::Timeout => (Reason::Unspecified, e.to_string()),
                    // Never taken, however often sent (a report on a command that
                    // is over, or not the device's): unlike 0x80, which says
                    // "try again", as HTTPS tells a 4xx from a 5xx.
                    other => (Reason::Refused, other.to_string()),
                };
                self.reject(qos, pkid, reason, detail)
            }
        }
    }

    /// Hands a message to the same operation its HTTPS route calls; Ok once
    /// it is durable.
    async fn deliver(&mut self, channel: Channel, payload: &[u8]) -> Result<Reason, AppError> {
        let state = &self.gateway.state;
        match channel {
            Channel::Telemetry => {
                let batch: TelemetryBatch = parse(payload)?;
                ops::agent::telemetry(state, &self.ctx, &batch).await?;
                Ok(Reason::Success)
            }
            Channel::Inventory => {
                let report: InventoryReport = parse(payload)?;
                match ops::agent::inventory(state, &self.ctx, &report).await? {
                    InventoryStatus::Unchanged | InventoryStatus::Stored => Ok(Reason::Success),
                    // A digest the server does not hold: the full list is
                    // wanted (MQTT 5 clients read it from the reason code).
                    InventoryStatus::SendFull => Ok(Reason::NoMatchingSubscribers),
                }
            }
            Channel::Results => {
                let message: ResultMessage = parse(payload)?;
                ops::agent::report(
                    state,
                    &self.ctx,
                    &self.origin,
                    message.command_id,
                    &message.report,
                )
                .await?;
                Ok(Reason::Success)
            }
            // Allowed, but nothing consumes device events yet.
            Channel::Events => Ok(Reason::NoMatchingSubscribers),
        }
    }

    /// Refuses a publish: an MQTT 5 QoS 1 publish gets a PUBACK with the
    /// reason; anything else (3.1.1, or QoS 0, which has no acknowledgement)
    /// ends the connection, so the device cannot believe it was accepted.
    fn reject(&mut self, qos: u8, pkid: u16, reason: Reason, detail: String) -> Flow {
        if self.version == Version::V5 && qos == 1 {
            self.queue(&Outbound::PubAck {
                pkid,
                reason,
                detail: Some(detail),
            });
            Flow::Continue
        } else {
            Flow::Close(Some(reason))
        }
    }

    async fn on_subscribe(&mut self, pkid: u16, filters: Vec<(String, u8)>) -> Flow {
        let mut results = Vec::with_capacity(filters.len());
        let mut granted = false;
        for (filter, qos) in &filters {
            match self.topics.subscribe(filter) {
                Ok(()) => {
                    granted = true;
                    results.push(Ok((*qos).min(1)));
                }
                Err(refusal) => {
                    self.refuse(AuditAction::DeviceMqttSubscribe, filter, refusal)
                        .await;
                    results.push(Err(Reason::NotAuthorized));
                }
            }
        }
        if self.version == Version::V311 && results.iter().any(Result::is_err) {
            return Flow::Close(Some(Reason::NotAuthorized));
        }
        self.queue(&Outbound::SubAck { pkid, results });
        if granted {
            self.subscribed = true;
            // Whatever waited while the device was away goes out now.
            self.push_commands().await;
        }
        Flow::Continue
    }

    fn on_puback(&mut self, pkid: u16) {
        let Some(at) = self.in_flight.iter().position(|(p, _)| *p == pkid) else {
            return;
        };
        let (_, command) = self.in_flight.swap_remove(at);
        // The device has it: recorded off the packet loop, like the HTTPS
        // hand-over (a lost mark only means it is handed over again).
        let (state, store) = (self.gateway.state.clone(), self.ctx.store.clone());
        let now = state.clock.now();
        tokio::spawn(async move {
            match store.mark_delivered(&[command], now).await {
                Ok(()) => ops::agent::delivered(&state, &store, &[command]),
                Err(e) => tracing::warn!(error = %e, "could not mark a command delivered"),
            }
        });
    }

    /// The bus says something is waiting for this device, or it was revoked.
    async fn on_wake(&mut self) -> Flow {
        if let Flow::Close(reason) = self.check_device().await {
            return Flow::Close(reason);
        }
        self.push_commands().await;
        Flow::Continue
    }

    /// Ends the session of a revoked device, or one whose token a rotation
    /// retired (as HTTPS refuses that token from then on); records that the
    /// device was heard from.
    async fn check_device(&mut self) -> Flow {
        let state = &self.gateway.state;
        let device = self.ctx.device.id;
        match self
            .ctx
            .store
            .seen(state.clock.now(), crate::access::seen_every(state))
            .await
        {
            Ok(_) => {}
            Err(StoreError::NotFound) => return Flow::Close(Some(Reason::AdministrativeAction)),
            Err(e) => {
                tracing::warn!(device_id = %device, error = %e, "could not check the device");
                return Flow::Continue;
            }
        }
        match ops::agent::authenticate(state, self.token).await {
            Ok(Some(access)) if access.device_id() == device => Flow::Continue,
            Ok(_) => {
                tracing::info!(device_id = %device, "MQTT session ended: its token was retired");
                Flow::Close(Some(Reason::NotAuthorized))
            }
            Err(e) => {
                tracing::warn!(device_id = %device, error = %e, "could not check the device's token");
                Flow::Continue
            }
        }
    }

    /// Publishes the commands waiting for the device (signed exactly as the
    /// HTTPS poll hands them over), if it subscribed.
    async fn push_commands(&mut self) {
        if !self.subscribed {
            return;
        }
        let now = self.gateway.state.clock.now();
        let waiting = match self.ctx.store.waiting_commands(now).await {
            Ok(waiting) => waiting,
            Err(e) => {
                tracing::warn!(device_id = %self.ctx.device.id, error = %e, "could not read waiting commands");
                return;
            }
        };
        let topic = self.topics.commands();
        for command in waiting {
            if self.in_flight.len() >= MAX_IN_FLIGHT {
                break;
            }
            if self.in_flight.iter().any(|(_, id)| *id == command.id) {
                continue;
            }
            let payload = match serde_json::to_vec(&command) {
                Ok(payload) => Bytes::from(payload),
                Err(e) => {
                    tracing::error!(error = %e, "could not encode a command");
                    continue;
                }
            };
            let pkid = self.next_pkid();
            self.queue(&Outbound::Publish {
                topic: topic.clone(),
                pkid,
                payload,
            });
            self.in_flight.push((pkid, command.id));
        }
    }

    fn next_pkid(&mut self) -> u16 {
        self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
        self.next_pkid
    }

    /// Counts a topic refusal and audits it, within the device's allowance.
    async fn refuse(&self, action: AuditAction, topic: &str, refusal: Refusal) {
        let state = &self.gateway.state;
        let device = &self.ctx.device;
        state
            .metrics
            .mqtt_topic_refusals
            .fetch_add(1, Ordering::Relaxed);
        let topic: String = topic
            .chars()
            .filter(|c| !c.is_control())
            .take(256)
            .collect();
        tracing::info!(device_id = %device.id, %action, %topic, reason = refusal.reason(), "MQTT topic refused");
        if state
            .limits
            .mqtt_refusal_audit
            .check(RateKey::Device(device.id))
            .is_err()
        {
            state
                .metrics
                .mqtt_refusals_unaudited
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let context = AuditContext {
            actor: Actor::device(device.id, &device.hostname),
            origin: self.origin.clone(),
        };
        let event = context.event(
            state.clock.now(),
            action,
            Entity::new(EntityType::Device, device.id),
            serde_json::json!({
                "protocol": format!("MQTT {}", self.version.as_str()),
                "topic": topic,
                "reason": refusal.reason(),
            }),
            Outcome::Denied,
        );
        if let Err(e) = state
            .stores
            .record(LogId::Org(self.ctx.store.org_id()), event)
            .await
        {
            state.metrics.audit_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, %action, "could not record an MQTT refusal in the audit log");
        }
    }

    fn queue(&mut self, packet: &Outbound) {
        if let Err(e) = wire::write(packet, self.version, &mut self.write) {
            tracing::error!(error = %e, "could not encode an MQTT packet");
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if self.write.is_empty() {
            return Ok(());
        }
        write_all(&mut self.stream, &self.write).await?;
        self.write.clear();
        if self.write.capacity() > 8 * READ_CHUNK {
            self.write = BytesMut::new();
        }
        Ok(())
    }

    /// Says why (MQTT 5), flushes, and closes the stream.
    async fn close(mut self, reason: Option<Reason>) {
        if let Some(reason) = reason {
            self.queue(&Outbound::Disconnect(reason));
        }
        let _ = self.flush().await;
        let _ = tokio::time::timeout(WRITE_TIMEOUT, self.stream.shutdown()).await;
    }
}

/// A message body as its topic's JSON type.
fn parse<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(payload)
        .map_err(|e| AppError::BadRequest(format!("the message does not fit its topic: {e}")))
}
