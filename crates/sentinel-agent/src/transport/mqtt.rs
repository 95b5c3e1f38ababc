//! The MQTT link: one MQTT 5 connection to the server's device gateway, over TLS with
//! the agent's own trust (the pinned CA or the public roots, as for HTTPS), logged in
//! as the device (username: its id, password: its token).
//!
//! Reports are published with QoS 1 and count as delivered only once the gateway's
//! PUBACK says it took them ([`answers`](super::answers)). Messages pushed on the
//! device's `commands` topic are handed on ([`Pushed`]) and acknowledged by whoever
//! handled them. The [`Connection`] task polls rumqttc's event loop, subscribes on
//! every connection (the gateway keeps no sessions), and after a failure waits out the
//! agent's back-off before connecting again.
//!
//! rumqttc does not say which packet id it gave a publish, but it takes requests from
//! its channel in order and announces each publish as it writes it; so publishes are
//! queued under one lock, and each announced packet id goes to the oldest one waiting.
//! When a connection ends, every publish waiting on it fails (its loop sends it again
//! later) and what rumqttc still held for it is dropped, so nothing stale goes out on
//! the next connection and the order stays true.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, SubscribeReasonCode};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::{Outgoing, TlsConfiguration, Transport};
use sentinel_protocol::paths::mqtt_namespace;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::answers::{self, Taken};
use crate::api::ApiError;
use crate::retry::Retry;
use crate::secret::Secret;

/// The gateway's port when `--mqtt-address` does not name one.
pub const DEFAULT_PORT: u16 = 8883;
/// Pings when nothing else was sent for this long.
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// How long the TLS handshake and CONNECT may take, in seconds.
const CONNECT_TIMEOUT_SECONDS: u64 = 10;
/// The largest packet accepted from the gateway: a command with a 64 KiB script, and
/// room to spare.
const MAX_INCOMING_BYTES: u32 = 1024 * 1024;
/// Publishes on the wire and not yet acknowledged, at most.
const MAX_IN_FLIGHT: u16 = 16;
/// Requests rumqttc holds for the connection (publishes and acknowledgements).
const REQUEST_CAPACITY: usize = 256;
/// Pushed commands waiting to be handled, at most; more wait with the gateway.
const PUSHED_CAPACITY: usize = 128;
/// How long a stopping agent waits for its DISCONNECT to be written.
const GOODBYE_TIME: Duration = Duration::from_secs(1);

/// Where the gateway listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// A host name or an IPv4 address (the name its certificate must carry).
    pub host: String,
    /// The gateway's TCP port.
    pub port: u16,
}

impl Address {
    /// The host of the server's URL, on [`DEFAULT_PORT`].
    pub fn of_server(url: &str) -> Result<Self, String> {
        let parsed =
            reqwest::Url::parse(url).map_err(|e| format!("the server URL {url:?}: {e}"))?;
        let host = parsed
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| format!("the server URL {url:?} names no host"))?;
        Ok(Self {
            host: host.to_owned(),
            port: DEFAULT_PORT,
        })
    }
}

impl FromStr for Address {
    type Err = String;

    /// `HOST:PORT`.
    fn from_str(text: &str) -> Result<Self, String> {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("{text:?} is not HOST:PORT"))?;
        let port = port
            .parse()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| format!("{port:?} is not a port"))?;
        if host.is_empty() || host.contains([':', '/', '[', ']']) {
            return Err(format!("{host:?} is not a host name or an IPv4 address"));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Who connects, where, trusting what.
pub struct Settings {
    /// The gateway.
    pub address: Address,
    /// The device's organization, which names its namespace with the device's id.
    pub org_id: Uuid,
    /// The username.
    pub device_id: Uuid,
    /// The password: the device token, as over HTTPS.
    pub token: Secret,
    /// The agent's TLS configuration (its HTTP ALPN protocols are not offered).
    pub tls: rustls::ClientConfig,
}

/// A topic the device publishes to, in its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// `…/telemetry`: a telemetry batch.
    Telemetry,
    /// `…/inventory`: an inventory report (its digest, or the full list).
    Inventory,
    /// `…/results`: a command report with its command's id.
    Results,
}

impl Channel {
    fn leaf(self) -> &'static str {
        match self {
            Self::Telemetry => "telemetry",
            Self::Inventory => "inventory",
            Self::Results => "results",
        }
    }
}

/// The gateway's answer to one publish, or why there was none.
type Answer = Result<Taken, ApiError>;

/// What the loops and the connection task share.
struct Queue {
    client: AsyncClient,
    /// Why publishing fails at once: the connection is down, waiting to try again.
    down: Option<ApiError>,
    /// Publishes handed to rumqttc and not yet given a packet id, oldest first.
    unsent: VecDeque<oneshot::Sender<Answer>>,
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The publishing end of the link, shared by the loops.
pub struct MqttLink {
    queue: Arc<Mutex<Queue>>,
    /// `sentinel/{org}/devices/{device}`.
    namespace: String,
    token: watch::Sender<Secret>,
}

impl fmt::Debug for MqttLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttLink")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Messages the gateway pushed on the device's `commands` topic.
pub type Pushed = mpsc::Receiver<Delivered>;

/// A message pushed on the `commands` topic, to acknowledge once it is handled.
pub struct Delivered {
    publish: Publish,
    client: AsyncClient,
}

impl Delivered {
    /// What the gateway sent.
    pub fn payload(&self) -> &[u8] {
        &self.publish.payload
    }

    /// Tells the gateway the device has it (the QoS 1 PUBACK), after which the server
    /// counts the command as delivered. Unacknowledged, it comes again on the next
    /// connection.
    pub fn acknowledge(self) {
        if let Err(error) = self.client.try_ack(&self.publish) {
            tracing::debug!(
                "a pushed command could not be acknowledged ({error}); it will come again"
            );
        }
    }
}

/// The task that keeps the connection.
pub struct Connection {
    events: EventLoop,
    queue: Arc<Mutex<Queue>>,
    address: Address,
    device_id: String,
    commands: String,
    token: watch::Receiver<Secret>,
    pushed: mpsc::Sender<Delivered>,
    /// Publishes on the wire, by packet id.
    in_flight: HashMap<u16, oneshot::Sender<Answer>>,
    /// Whether the gateway accepted the current connection.
    connected: bool,
}

/// The link, the task that keeps its connection, and the commands it receives.
pub fn link(settings: Settings) -> (MqttLink, Connection, Pushed) {
    let Settings {
        address,
        org_id,
        device_id,
        token,
        mut tls,
    } = settings;
    tls.alpn_protocols.clear();
    let mut options = MqttOptions::new(
        format!("sentinel-agent-{}", device_id.simple()),
        address.host.clone(),
        address.port,
    );
    options
        .set_keep_alive(KEEP_ALIVE)
        .set_clean_start(true)
        .set_manual_acks(true)
        .set_connection_timeout(CONNECT_TIMEOUT_SECONDS)
        .set_max_packet_size(Some(MAX_INCOMING_BYTES))
        .set_outgoing_inflight_upper_limit(MAX_IN_FLIGHT)
        .set_credentials(device_id.to_string(), token.expose())
        .set_transport(Transport::Tls(TlsConfiguration::Rustls(Arc::new(tls))));
    let (client, events) = AsyncClient::new(options, REQUEST_CAPACITY);
    let queue = Arc::new(Mutex::new(Queue {
        client,
        down: None,
        unsent: VecDeque::new(),
    }));
    let namespace = mqtt_namespace(org_id, device_id);
    let (token, token_changes) = watch::channel(token);
    let (pushed, received) = mpsc::channel(PUSHED_CAPACITY);
    let connection = Connection {
        events,
        queue: queue.clone(),
        address,
        device_id: device_id.to_string(),
        commands: format!("{namespace}/commands"),
        token: token_changes,
        pushed,
        in_flight: HashMap::new(),
        connected: false,
    };
    let link = MqttLink {
        queue,
        namespace,
        token,
    };
    (link, connection, received)
}

impl MqttLink {
    /// Publishes `payload` on `channel` with QoS 1 and waits up to `timeout` for the
    /// gateway's answer. Fails at once while the connection is down.
    pub async fn publish(
        &self,
        channel: Channel,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Taken, ApiError> {
        let topic = format!("{}/{}", self.namespace, channel.leaf());
        let (answer, answered) = oneshot::channel();
        {
            let mut queue = lock(&self.queue);
            if let Some(down) = &queue.down {
                return Err(down.clone());
            }
            queue
                .client
                .try_publish(topic, QoS::AtLeastOnce, false, payload)
                .map_err(|e| ApiError::Unavailable(format!("cannot queue the message: {e}")))?;
            queue.unsent.push_back(answer);
        }
        match tokio::time::timeout(timeout, answered).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(ApiError::Unavailable(
                "the MQTT connection ended before the gateway answered".into(),
            )),
            Err(_) => Err(ApiError::Unavailable(format!(
                "the gateway did not acknowledge within {}s",
                timeout.as_secs()
            ))),
        }
    }

    /// Logs in with `token` from now on, reconnecting at once to use it.
    pub fn set_token(&self, token: Secret) {
        self.token.send_replace(token);
    }
}

impl Connection {
    /// Keeps the connection until `stop`, then says goodbye.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut retry = Retry::default();
        loop {
            let event = tokio::select! {
                event = self.events.poll() => event,
                _ = self.token.changed() => {
                    let token = self.token.borrow_and_update().clone();
                    self.events.options.set_credentials(self.device_id.clone(), token.expose());
                    tracing::info!("reconnecting to the MQTT gateway with the rotated token");
                    self.drop_connection(None);
                    continue;
                }
                () = stop.cancelled() => break,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    retry.succeeded();
                    self.connected = true;
                    // The gateway keeps no session: nothing of an earlier one goes out.
                    self.events.pending.clear();
                    tracing::info!(gateway = %self.address, "connected to the MQTT gateway");
                    let client = lock(&self.queue).client.clone();
                    if let Err(error) =
                        client.try_subscribe(self.commands.clone(), QoS::AtLeastOnce)
                    {
                        tracing::error!("cannot subscribe to the commands topic: {error}");
                    }
                }
                Ok(event) => self.handle(event),
                Err(error) => {
                    let error = answers::connection_failure(&error);
                    self.drop_connection(Some(error.clone()));
                    let what = format!("the MQTT connection to {}", self.address);
                    let delay = retry.delay_after(&error, &what);
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stop.cancelled() => break,
                    }
                    lock(&self.queue).down = None;
                }
            }
        }
        self.goodbye().await;
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                if let Some(answer) = lock(&self.queue).unsent.pop_front() {
                    self.in_flight.insert(pkid, answer);
                }
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                if let Some(answer) = self.in_flight.remove(&ack.pkid) {
                    let detail = ack
                        .properties
                        .as_ref()
                        .and_then(|properties| properties.reason_string.as_deref());
                    let _ = answer.send(answers::acknowledgement(ack.reason, detail));
                }
            }
            Event::Incoming(Packet::Publish(publish)) => self.receive(publish),
            Event::Incoming(Packet::SubAck(ack)) => {
                if let Some(refusal) = ack
                    .return_codes
                    .iter()
                    .find(|code| !matches!(code, SubscribeReasonCode::Success(_)))
                {
                    tracing::error!(
                        "the gateway refused the subscription to {}: {refusal:?}; no command \
                         will arrive",
                        self.commands
                    );
                }
            }
            _ => {}
        }
    }

    /// Hands a pushed command on; one that cannot be taken now is left unacknowledged,
    /// so the gateway sends it again.
    fn receive(&mut self, publish: Publish) {
        let client = lock(&self.queue).client.clone();
        let delivered = Delivered { publish, client };
        if delivered.publish.topic != self.commands.as_bytes() {
            tracing::warn!("a message on a topic other than the commands topic; ignored");
            delivered.acknowledge();
            return;
        }
        if self.pushed.try_send(delivered).is_err() {
            tracing::debug!("a pushed command could not be taken now; it will come again");
        }
    }

    /// Closes the connection: every publish waiting on it fails, and nothing rumqttc
    /// held for it is sent on the next one. `down` is why publishing fails until the
    /// next attempt (`None`: connect again at once).
    fn drop_connection(&mut self, down: Option<ApiError>) {
        self.connected = false;
        let mut queue = lock(&self.queue);
        // Under the lock, so no publish can slip in between: the network goes, and
        // the requests still in rumqttc's channel with it.
        self.events.clean();
        self.events.pending.clear();
        self.events.state.events.clear();
        let failure = down.clone().unwrap_or_else(|| {
            ApiError::Unavailable(
                "the MQTT connection was closed before the gateway answered".into(),
            )
        });
        for answer in queue
            .unsent
            .drain(..)
            .chain(self.in_flight.drain().map(|(_, answer)| answer))
        {
            let _ = answer.send(Err(failure.clone()));
        }
        queue.down = down;
    }

    /// Sends DISCONNECT, if the connection is up, and closes it.
    async fn goodbye(mut self) {
        let client = lock(&self.queue).client.clone();
        if self.connected && client.try_disconnect().is_ok() {
            let _ = tokio::time::timeout(GOODBYE_TIME, async {
                while let Ok(event) = self.events.poll().await {
                    if event == Event::Outgoing(Outgoing::Disconnect) {
                        break;
                    }
                }
            })
            .await;
        }
        self.drop_connection(Some(ApiError::Unavailable("the agent is stopping".into())));
    }
}

#[cfg(test)]
mod tests {
    //! The link against a fake gateway speaking MQTT 5 over TLS: it logs in as the
    //! device, subscribes, hands pushed commands on and acknowledges them when told,
    //! matches each PUBACK to its own publish (even answered out of order), and fails
    //! the publishes of a connection that ends instead of leaving them hanging.

    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use bytes::BytesMut;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rumqttc::v5::mqttbytes::v5::{
        ConnAck, ConnectReturnCode, PubAck, PubAckProperties, PubAckReason, SubAck,
    };
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::tls::{self, Trust};

    const WAIT: Duration = Duration::from_secs(10);

    /// What the fake gateway saw.
    #[derive(Debug, Default)]
    struct Seen {
        logins: Vec<(String, String)>,
        subscriptions: Vec<String>,
        publishes: Vec<(String, Vec<u8>)>,
        acknowledged: Vec<u16>,
    }

    /// A CA, and a TLS server configuration for 127.0.0.1 signed by it.
    fn tls_material() -> (String, Arc<rustls::ServerConfig>) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(leaf.der().to_vec())], key)
        .unwrap();
        (ca.pem(), Arc::new(config))
    }

    /// A gateway on a free port: each connection is logged in, its subscription
    /// answered with a pushed command (packet id 7), and its publishes answered three
    /// at a time in reverse order, each by its payload: `stored` 0x00, `digest` 0x10,
    /// `refuse` 0x99; `drop` closes the connection unanswered.
    async fn gateway(seen: Arc<Mutex<Seen>>) -> (u16, String) {
        let (ca_pem, config) = tls_material();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let stream = acceptor.accept(tcp).await.unwrap();
                tokio::spawn(serve(stream, seen.clone()));
            }
        });
        (port, ca_pem)
    }

    async fn serve(
        mut stream: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        seen: Arc<Mutex<Seen>>,
    ) {
        let mut buf = BytesMut::new();
        let mut waiting = Vec::new();
        loop {
            let packet = match Packet::read(&mut buf, None) {
                Ok(packet) => packet,
                Err(_) => {
                    if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                    continue;
                }
            };
            let mut out = BytesMut::new();
            match packet {
                Packet::Connect(_, _, login) => {
                    let login = login.unwrap();
                    seen.lock()
                        .unwrap()
                        .logins
                        .push((login.username, login.password));
                    let ack = ConnAck {
                        session_present: false,
                        code: ConnectReturnCode::Success,
                        properties: None,
                    };
                    Packet::ConnAck(ack).write(&mut out, None).unwrap();
                }
                Packet::Subscribe(subscribe) => {
                    let filter = subscribe.filters[0].path.clone();
                    seen.lock().unwrap().subscriptions.push(filter.clone());
                    let ack = SubAck {
                        pkid: subscribe.pkid,
                        return_codes: vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)],
                        properties: None,
                    };
                    Packet::SubAck(ack).write(&mut out, None).unwrap();
                    let mut push = Publish::new(filter, QoS::AtLeastOnce, "pushed", None);
                    push.pkid = 7;
                    Packet::Publish(push).write(&mut out, None).unwrap();
                }
                Packet::PubAck(ack) => seen.lock().unwrap().acknowledged.push(ack.pkid),
                Packet::Publish(publish) => {
                    let topic = String::from_utf8(publish.topic.to_vec()).unwrap();
                    let payload = publish.payload.to_vec();
                    seen.lock()
                        .unwrap()
                        .publishes
                        .push((topic, payload.clone()));
                    if payload == b"drop" {
                        return;
                    }
                    waiting.push((publish.pkid, payload));
                    if waiting.len() == 3 {
                        for (pkid, payload) in waiting.drain(..).rev() {
                            let (reason, detail) = match payload.as_slice() {
                                b"stored" => (PubAckReason::Success, None),
                                b"digest" => (PubAckReason::NoMatchingSubscribers, None),
                                _ => (PubAckReason::PayloadFormatInvalid, Some("bad".into())),
                            };
                            let ack = PubAck {
                                pkid,
                                reason,
                                properties: Some(PubAckProperties {
                                    reason_string: detail,
                                    user_properties: Vec::new(),
                                }),
                            };
                            Packet::PubAck(ack).write(&mut out, None).unwrap();
                        }
                    }
                }
                _ => {}
            }
            if !out.is_empty() {
                stream.write_all(&out).await.unwrap();
            }
        }
    }

    #[tokio::test]
    async fn publishes_get_their_own_answers_and_pushed_commands_are_acknowledged() {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (port, ca_pem) = gateway(seen.clone()).await;
        let (org_id, device_id) = (Uuid::new_v4(), Uuid::new_v4());
        let (link, connection, mut pushed) = link(Settings {
            address: Address {
                host: "127.0.0.1".into(),
                port,
            },
            org_id,
            device_id,
            token: Secret::new("sdt_device-token"),
            tls: tls::client_config(Trust::Pinned(ca_pem.as_bytes())).unwrap(),
        });
        let stop = CancellationToken::new();
        let running = tokio::spawn(connection.run(stop.clone()));

        // Logged in as the device; subscribed to its own commands topic only.
        let delivered = tokio::time::timeout(WAIT, pushed.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(delivered.payload(), b"pushed");
        let namespace = format!("sentinel/{org_id}/devices/{device_id}");
        {
            let seen = seen.lock().unwrap();
            assert_eq!(
                seen.logins,
                vec![(device_id.to_string(), "sdt_device-token".to_owned())]
            );
            assert_eq!(seen.subscriptions, vec![format!("{namespace}/commands")]);
            assert!(
                seen.acknowledged.is_empty(),
                "acknowledged before it was handled"
            );
        }
        delivered.acknowledge();

        // Three at once, answered in reverse order: each gets its own answer.
        let (stored, digest, refused) = tokio::join!(
            link.publish(Channel::Telemetry, b"stored".to_vec(), WAIT),
            link.publish(Channel::Inventory, b"digest".to_vec(), WAIT),
            link.publish(Channel::Results, b"refuse".to_vec(), WAIT),
        );
        assert_eq!(stored.unwrap(), Taken::Stored);
        assert_eq!(digest.unwrap(), Taken::Unmatched);
        match refused {
            Err(ApiError::Refused { answer, detail }) => {
                assert!(answer.starts_with("PUBACK 0x99"), "{answer}");
                assert_eq!(detail, "bad");
            }
            other => panic!("{other:?}"),
        }
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen.acknowledged, vec![7], "the pushed command's PUBACK");
            let topics: Vec<&str> = seen.publishes.iter().map(|(t, _)| t.as_str()).collect();
            assert_eq!(
                topics,
                ["telemetry", "inventory", "results"].map(|leaf| format!("{namespace}/{leaf}"))
            );
        }

        // A connection that ends fails what waited on it at once (it is sent again
        // later by its loop), and the link connects again.
        let started = tokio::time::Instant::now();
        let dropped = link
            .publish(Channel::Telemetry, b"drop".to_vec(), WAIT)
            .await;
        assert!(
            matches!(dropped, Err(ApiError::Unavailable(_))),
            "{dropped:?}"
        );
        assert!(started.elapsed() < WAIT);
        let again = tokio::time::timeout(WAIT, pushed.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            again.payload(),
            b"pushed",
            "subscribed again after reconnecting"
        );
        assert_eq!(seen.lock().unwrap().logins.len(), 2);

        stop.cancel();
        tokio::time::timeout(WAIT, running).await.unwrap().unwrap();
    }
}
