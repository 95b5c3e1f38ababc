//! The live feed (`GET /api/v1/orgs/{org_id}/live`, a WebSocket) with a real
//! WebSocket client over the server's TLS: a watcher receives its own
//! organization's events and never another's; strangers, other
//! organizations' members, other origins, API tokens and plain GETs are
//! refused; the feed closes once the session ends or the membership goes.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{WebSocketStream, client_async};

use crate::support::{Agent, PASSWORD, Session, TestServer, on_both_engines};

type Feed = WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// How a test asks for the feed: which cookie, origin and bearer token.
#[derive(Default)]
struct Ask<'a> {
    cookie: Option<&'a str>,
    origin: Option<&'a str>,
    bearer: Option<&'a str>,
}

/// Opens `org`'s feed as asked: the open feed, or the HTTP status refusing it.
async fn open(server: &TestServer, org: &str, ask: Ask<'_>) -> Result<Feed, u16> {
    let url = format!(
        "wss://localhost:{}/api/v1/orgs/{org}/live",
        server.addr.port()
    );
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    if let Some(cookie) = ask.cookie {
        headers.insert("cookie", cookie.parse().unwrap());
    }
    if let Some(origin) = ask.origin {
        headers.insert("origin", origin.parse().unwrap());
    }
    if let Some(token) = ask.bearer {
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let tls = server.tls_connect(server.addr).await;
    match client_async(request, tls).await {
        Ok((feed, response)) => {
            assert_eq!(response.status(), 101);
            Ok(feed)
        }
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("the WebSocket handshake failed: {e}"),
    }
}

/// `session`'s feed of `org`, as its own dashboard opens it.
async fn watch(server: &TestServer, session: &Session, org: &str) -> Feed {
    open(
        server,
        org,
        Ask {
            cookie: Some(&session.cookie),
            origin: Some(&server.origin),
            ..Ask::default()
        },
    )
    .await
    .unwrap()
}

/// What the feed says next: an event, or the close frame's code.
enum Next {
    Event(Value),
    Closed(Option<CloseCode>),
}

async fn next(feed: &mut Feed) -> Next {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("the feed said nothing for 10 s");
        match message {
            Some(Ok(Message::Text(text))) => {
                return Next::Event(serde_json::from_str(&text).unwrap());
            }
            Some(Ok(Message::Close(frame))) => return Next::Closed(frame.map(|f| f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Next::Closed(None),
        }
    }
}

async fn next_event(feed: &mut Feed) -> Value {
    match next(feed).await {
        Next::Event(event) => event,
        Next::Closed(code) => panic!("the feed closed ({code:?}) instead of sending an event"),
    }
}

/// Reports one telemetry sample for `agent`.
async fn report(server: &TestServer, agent: &Agent, cpu: f64) {
    let body = json!({"samples": [{"at": 1_700_000_000, "sample": {
        "uptime_seconds": 5, "load": [0.1, 0.2, 0.3], "cpu_percent": cpu,
        "memory": {"total_bytes": 200, "available_bytes": 150, "used_bytes": 50},
        "swap": {"total_bytes": 0, "available_bytes": 0, "used_bytes": 0},
        "disks": [], "interfaces": [], "logged_in_users": 1, "warnings": []
    }}]});
    let resp = TestServer::send(
        server
            .as_agent(agent, Method::POST, "/api/v1/agent/telemetry")
            .json(&body),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
}

on_both_engines!(
    a_watcher_receives_its_own_organizations_events_and_no_others,
    |server: TestServer| async move {
        let root = server.setup_admin().await;
        let org = server.create_org(&root, "Watched").await;
        let other = server.create_org(&root, "Other").await;
        let reader = server
            .member(&root, &org, "reader@example.org", "readonly")
            .await;
        let mut feed = watch(&server, &reader, &org).await;

        // The other organization's events come first: had they leaked into this
        // feed, they would arrive before this organization's.
        let stranger = server.enroll(&root, &other, "stranger").await;
        report(&server, &stranger, 99.0).await;
        server
            .queue_command(
                &root,
                &other,
                &stranger.device_id,
                json!({"type": "reboot"}),
            )
            .await;

        let device = server.enroll(&root, &org, "watched-host").await;
        let enrolled = next_event(&mut feed).await;
        assert_eq!(enrolled["type"], "device_enrolled", "{enrolled}");
        assert_eq!(enrolled["device_id"], device.device_id.as_str());
        assert_eq!(enrolled["hostname"], "watched-host");

        report(&server, &device, 42.5).await;
        let telemetry = next_event(&mut feed).await;
        assert_eq!(telemetry["type"], "telemetry", "{telemetry}");
        assert_eq!(telemetry["device_id"], device.device_id.as_str());
        assert_eq!(telemetry["samples"], 1);
        assert_eq!(telemetry["cpu_percent"], 42.5);
        assert_eq!(telemetry["memory_percent"], 25.0);

        let command = server
            .queue_command(&root, &org, &device.device_id, json!({"type": "reboot"}))
            .await;
        let queued = next_event(&mut feed).await;
        assert_eq!(queued["type"], "command", "{queued}");
        assert_eq!(queued["command_id"], command.as_str());
        assert_eq!(queued["status"], "queued");

        // The device fetches it: delivered.
        let fetched =
            TestServer::send(server.as_agent(&device, Method::GET, "/api/v1/agent/commands")).await;
        assert_eq!(fetched.status, 200, "{}", fetched.text);
        let delivered = next_event(&mut feed).await;
        assert_eq!(delivered["status"], "delivered", "{delivered}");

        let revoked = server
            .call(
                &root,
                Method::DELETE,
                &format!("/api/v1/orgs/{org}/devices/{}", device.device_id),
                json!({}),
            )
            .await;
        assert_eq!(revoked.status, 200, "{}", revoked.text);
        // Revoking cancels the waiting command first? Either way the revocation
        // is announced, and nothing of the other organization ever was.
        loop {
            let event = next_event(&mut feed).await;
            assert_ne!(
                event["device_id"],
                stranger.device_id.as_str(),
                "leaked: {event}"
            );
            if event["type"] == "device_revoked" {
                assert_eq!(event["device_id"], device.device_id.as_str());
                break;
            }
        }
        server
    }
);

on_both_engines!(
    the_feed_refuses_strangers_other_sites_tokens_and_plain_requests,
    |server: TestServer| async move {
        let root = server.setup_admin().await;
        let org = server.create_org(&root, "Guarded").await;
        let other = server.create_org(&root, "Elsewhere").await;
        let outsider = server
            .member(&root, &other, "outsider@example.org", "owner")
            .await;
        let origin = server.origin.clone();

        // No session at all.
        let anonymous = Ask {
            origin: Some(&origin),
            ..Ask::default()
        };
        assert_eq!(open(&server, &org, anonymous).await.err(), Some(401));
        // A forged or stale cookie.
        let forged = Ask {
            cookie: Some("__Host-sentinel_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            origin: Some(&origin),
            ..Ask::default()
        };
        assert_eq!(open(&server, &org, forged).await.err(), Some(401));
        // A member of another organization learns nothing about this one.
        let stranger = Ask {
            cookie: Some(&outsider.cookie),
            origin: Some(&origin),
            ..Ask::default()
        };
        assert_eq!(open(&server, &org, stranger).await.err(), Some(404));
        // An id that is no organization.
        let bogus = Ask {
            cookie: Some(&root.cookie),
            origin: Some(&origin),
            ..Ask::default()
        };
        assert_eq!(open(&server, "not-an-id", bogus).await.err(), Some(400));
        // Cross-site WebSocket hijacking: the right cookie from another site's page.
        let hijack = Ask {
            cookie: Some(&root.cookie),
            origin: Some("https://evil.example"),
            ..Ask::default()
        };
        assert_eq!(open(&server, &org, hijack).await.err(), Some(403));
        // No Origin at all is no evidence of our own page either.
        let no_origin = Ask {
            cookie: Some(&root.cookie),
            ..Ask::default()
        };
        assert_eq!(open(&server, &org, no_origin).await.err(), Some(403));
        // An API token, even one that may read devices.
        let token = server
        .call(
            &root,
            Method::POST,
            "/api/v1/tokens",
            json!({"name": "script", "org_id": org, "permissions": ["devices.read"], "expires_in_days": 1}),
        )
        .await;
        assert_eq!(token.status, 201, "{}", token.text);
        let token = token.json()["token"].as_str().unwrap().to_owned();
        let bearer = Ask {
            bearer: Some(&token),
            ..Ask::default()
        };
        assert_eq!(open(&server, &org, bearer).await.err(), Some(403));
        // A plain GET is told what the route is.
        let plain = server.get(&root, &format!("/api/v1/orgs/{org}/live")).await;
        assert_eq!(plain.status, 400, "{}", plain.text);
        assert!(plain.text.contains("WebSocket"), "{}", plain.text);

        // One user holds a bounded number of feeds.
        let mut held = Vec::new();
        for _ in 0..16 {
            held.push(watch(&server, &root, &org).await);
        }
        let one_more = Ask {
            cookie: Some(&root.cookie),
            origin: Some(&origin),
            ..Ask::default()
        };
        assert_eq!(open(&server, &org, one_more).await.err(), Some(429));
        drop(held);
        server
    }
);

on_both_engines!(
    the_feed_closes_once_the_session_ends_or_the_membership_goes,
    |server: TestServer| async move {
        let root = server.setup_admin().await;
        let org = server.create_org(&root, "Closing").await;
        let device = server.enroll(&root, &org, "host").await;
        let leaving = server
            .member(&root, &org, "leaving@example.org", "analyst")
            .await;
        let staying = server
            .member(&root, &org, "staying@example.org", "readonly")
            .await;
        // A second login of the same admin, which outlives the first's logout.
        let remover = server.login("root@example.org", PASSWORD).await.unwrap();
        let mut logged_out = watch(&server, &root, &org).await;
        let mut removed = watch(&server, &leaving, &org).await;
        let mut kept = watch(&server, &staying, &org).await;

        let logout = server
            .call(&root, Method::POST, "/api/v1/auth/logout", json!({}))
            .await;
        assert_eq!(logout.status, 204, "{}", logout.text);
        let removal = server
            .call(
                &remover,
                Method::DELETE,
                &format!("/api/v1/orgs/{org}/members/{}", leaving.user_id),
                json!({}),
            )
            .await;
        assert_eq!(removal.status, 204, "{}", removal.text);
        // Access is confirmed again before an event is sent once the last check
        // is two seconds old.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        report(&server, &device, 10.0).await;

        for feed in [&mut logged_out, &mut removed] {
            match next(feed).await {
                Next::Closed(code) => assert_eq!(code, Some(CloseCode::Policy)),
                Next::Event(event) => panic!("an event after access ended: {event}"),
            }
        }
        let event = next_event(&mut kept).await;
        assert_eq!(event["type"], "telemetry", "{event}");
        server
    }
);
