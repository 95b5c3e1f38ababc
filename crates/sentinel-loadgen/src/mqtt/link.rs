//! One simulated device's MQTT 3.1.1 connection to the gateway: TCP from a
//! chosen source address, TLS trusting only the server's CA (or none: plain
//! MQTT on loopback), and packets written and read with rumqttc's codecs
//! directly — no client event loop or queues, so thousands of idle devices cost
//! the load generator little.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::{self, QoS, v4};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use uuid::Uuid;

use crate::client::{self, Failure, SetupError};

/// The largest packet written or read.
const MAX_PACKET_BYTES: usize = 1 << 20;

/// How long the gateway may take to answer a CONNECT or SUBSCRIBE.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the gateway is and how to reach it (cheap to clone).
#[derive(Clone)]
pub struct Gateway {
    pub addr: SocketAddr,
    /// The name the server's certificate carries.
    pub host: String,
    /// The CA certificate file, for MQTTS; `None`: plain MQTT.
    pub ca: Option<PathBuf>,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Gateway {
    /// The gateway at `addr`, over TLS with the server certificate issued by the
    /// CA in the file `ca` (known as `host`), or over plain TCP when `ca` is `None`.
    pub fn new(addr: SocketAddr, host: &str, ca: Option<&Path>) -> Result<Self, SetupError> {
        let tls = match ca {
            Some(path) => {
                let pem = std::fs::read_to_string(path)
                    .map_err(|e| SetupError::Ca(format!("{}: {e}", path.display())))?;
                let config = client::tls_config(&pem, None)?;
                Some((TlsConnector::from(config), client::server_name(host)?))
            }
            None => None,
        };
        Ok(Self {
            addr,
            host: host.to_owned(),
            ca: ca.map(Path::to_path_buf),
            tls,
        })
    }

    /// "MQTTS" or "plain MQTT".
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "MQTTS"
        } else {
            "plain MQTT"
        }
    }

    /// Connects `device` from `source` with its token as the password, asking for
    /// `keep_alive` seconds, and waits for a successful CONNACK.
    pub async fn connect(
        &self,
        source: Option<IpAddr>,
        device: Uuid,
        token: &str,
        keep_alive: u16,
    ) -> Result<Link, Failure> {
        let tcp = client::tcp(self.addr, source).await?;
        let stream: Box<dyn Stream> = match &self.tls {
            Some((connector, name)) => Box::new(client::handshake(connector, name, tcp).await?),
            None => Box::new(tcp),
        };
        let mut link = Link {
            stream,
            read: BytesMut::new(),
            write: BytesMut::new(),
        };
        let id = device.hyphenated().to_string();
        let mut connect = v4::Connect::new(id.clone());
        connect.keep_alive = keep_alive;
        connect.set_login(id, token);
        link.queue(&v4::Packet::Connect(connect))?;
        link.flush().await?;
        match link.next_within(ANSWER_TIMEOUT).await? {
            v4::Packet::ConnAck(ack) if ack.code == v4::ConnectReturnCode::Success => {
                link.read = BytesMut::new();
                Ok(link)
            }
            v4::Packet::ConnAck(ack) => Err(Failure::Refused(ack.code as u8)),
            _ => Err(Failure::Decode),
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A connected device: packets are queued, then written together by [`Link::flush`].
pub struct Link {
    stream: Box<dyn Stream>,
    read: BytesMut,
    write: BytesMut,
}

impl Link {
    fn queue(&mut self, packet: &v4::Packet) -> Result<(), Failure> {
        packet
            .write(&mut self.write, MAX_PACKET_BYTES)
            .map(drop)
            .map_err(|_| Failure::Decode)
    }

    /// Queues a QoS 1 PUBLISH of `payload` to `topic` as packet `pkid`.
    pub fn publish(&mut self, topic: &str, pkid: u16, payload: Vec<u8>) -> Result<(), Failure> {
        let mut publish = v4::Publish::new(topic, QoS::AtLeastOnce, payload);
        publish.pkid = pkid;
        self.queue(&v4::Packet::Publish(publish))
    }

    /// Queues the PUBACK of the gateway's QoS 1 PUBLISH `pkid`.
    pub fn puback(&mut self, pkid: u16) -> Result<(), Failure> {
        self.queue(&v4::Packet::PubAck(v4::PubAck::new(pkid)))
    }

    /// Subscribes to `topic` at QoS 1 and waits for the SUBACK granting it.
    pub async fn subscribe(&mut self, topic: &str) -> Result<(), Failure> {
        let mut subscribe = v4::Subscribe::new(topic, QoS::AtLeastOnce);
        subscribe.pkid = 1;
        self.queue(&v4::Packet::Subscribe(subscribe))?;
        self.flush().await?;
        match self.next_within(ANSWER_TIMEOUT).await? {
            v4::Packet::SubAck(ack)
                if ack.return_codes == [v4::SubscribeReasonCode::Success(QoS::AtLeastOnce)] =>
            {
                Ok(())
            }
            v4::Packet::SubAck(_) => Err(Failure::Refused(0x80)),
            _ => Err(Failure::Decode),
        }
    }

    /// Writes every queued packet.
    pub async fn flush(&mut self) -> Result<(), Failure> {
        self.stream
            .write_all(&self.write)
            .await
            .map_err(|_| Failure::Transport)?;
        self.stream.flush().await.map_err(|_| Failure::Transport)?;
        self.write.clear();
        Ok(())
    }

    /// The next packet from the gateway; [`Failure::Transport`] when the
    /// connection closed, [`Failure::Decode`] when the bytes are no packet.
    pub async fn next(&mut self) -> Result<v4::Packet, Failure> {
        loop {
            match v4::Packet::read(&mut self.read, MAX_PACKET_BYTES) {
                Ok(packet) => return Ok(packet),
                Err(mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(_) => return Err(Failure::Decode),
            }
            match self.stream.read_buf(&mut self.read).await {
                Ok(0) | Err(_) => return Err(Failure::Transport),
                Ok(_) => {}
            }
        }
    }

    /// [`Link::next`], or [`Failure::Timeout`] after `limit`.
    pub async fn next_within(&mut self, limit: Duration) -> Result<v4::Packet, Failure> {
        tokio::time::timeout(limit, self.next())
            .await
            .map_err(|_| Failure::Timeout)?
    }
}

/// The topic `leaf` (`telemetry`, `commands`, …) of `device` in organization `org`.
pub fn topic(org: Uuid, device: Uuid, leaf: &str) -> String {
    format!(
        "{}/{leaf}",
        sentinel_protocol::paths::mqtt_namespace(org, device)
    )
}
