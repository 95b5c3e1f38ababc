//! `sentinel-agent run`: the agent as a service. Loads the enrollment, runs the
//! telemetry, inventory, command and token-rotation loops concurrently until told to
//! stop, then shuts down in order.
//!
//! Commands come in by polling over HTTPS, or pushed over the MQTT link; either way
//! the same dispatcher verifies and runs them ([`commands`]).
//!
//! Shutting down: taking commands stops at once; running commands get
//! [`COMMAND_GRACE`] to finish, then their process groups are killed; what is left to
//! report and the spooled telemetry get [`FLUSH_TIME`] to reach the server; the MQTT
//! link, if any, is closed last.

mod actions;
mod commands;
mod diagnostics;
mod inventory;
mod reports;
mod telemetry;
mod token;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sentinel_protocol::enroll::AgentSettings;
use sentinel_protocol::signing::CommandVerifier;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::ApiClient;
use crate::host::Host;
use crate::inventory::InventorySource;
use crate::replay::ReplayRecord;
use crate::state::{State, StateDir, StateError};
use crate::tls::{self, Trust};
use crate::transport::mqtt::{self, Connection, Pushed};
use crate::transport::{Protocol, Transport};
use actions::Environment;

/// How long running commands may go on once the agent is told to stop.
pub const COMMAND_GRACE: Duration = Duration::from_secs(10);
/// How long the agent then spends delivering reports and telemetry.
pub const FLUSH_TIME: Duration = Duration::from_secs(5);

/// What `sentinel-agent run` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Where enrollment left the state.
    pub state_dir: PathBuf,
    /// Where the host's files are.
    pub host_root: PathBuf,
    /// Where the installed packages are listed; detected under `host_root` when `None`.
    pub inventory: Option<InventorySource>,
    /// What carries reports and commands.
    pub transport: Protocol,
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The state directory is missing, exposed or unreadable.
    #[error(transparent)]
    State(#[from] StateError),
    /// Something derived from the state is unusable.
    #[error("{0}")]
    Setup(String),
}

/// What the loops share: the enrollment, the client, the current settings, the host.
struct Agent {
    dir: StateDir,
    state: Mutex<State>,
    transport: Transport,
    settings: watch::Sender<AgentSettings>,
    /// When the telemetry loop next sends, while it runs: the command poll ends just
    /// before, so that the report finds the HTTP/1.1 connection free
    /// (`sentinel_protocol::polling`).
    telemetry_due: watch::Sender<Option<Instant>>,
    host: Host,
    replay: Mutex<ReplayRecord>,
    /// Held while the inventory is reported, so that two reports never interleave.
    inventory_turn: tokio::sync::Mutex<()>,
    environment: Environment,
}

/// Runs the agent until `shutdown` is cancelled, then stops it cleanly.
pub async fn run(options: RunOptions, shutdown: CancellationToken) -> Result<(), RunError> {
    let (agent, mqtt) = load(options)?;
    let agent = Arc::new(agent);
    let (verifier, device_id) = {
        let state = agent.state();
        let verifier = CommandVerifier::from_hex(&state.command_key)
            .ok_or_else(|| RunError::Setup("the state's command key is not valid".into()))?;
        tracing::info!(
            device = %state.device_id,
            server = %state.server_url,
            "sentinel-agent {} running",
            env!("CARGO_PKG_VERSION")
        );
        (verifier, state.device_id)
    };
    if agent.host.inventory.is_none() {
        tracing::warn!("no package manager found: the inventory will not be reported");
    }

    let (outbox, delivery) = reports::outbox();
    let dispatcher =
        commands::Dispatcher::new(agent.clone(), verifier, device_id, outbox, shutdown.clone());
    let loops = TaskTracker::new();
    loops.spawn(telemetry::run(agent.clone(), shutdown.clone()));
    loops.spawn(inventory::run(agent.clone(), shutdown.clone()));
    loops.spawn(token::run(agent.clone(), shutdown.clone()));
    loops.close();
    let link_stop = CancellationToken::new();
    let (intake, linking) = match mqtt {
        None => (
            tokio::spawn(commands::poll(agent.clone(), dispatcher, shutdown.clone())),
            None,
        ),
        Some((connection, pushed)) => (
            tokio::spawn(commands::receive(pushed, dispatcher, shutdown.clone())),
            Some(tokio::spawn(connection.run(link_stop.clone()))),
        ),
    };
    let mut delivering = tokio::spawn({
        let agent = agent.clone();
        async move { delivery.run(&agent.transport).await }
    });

    shutdown.cancelled().await;
    tracing::info!("stopping");
    match intake.await {
        Ok(dispatcher) => dispatcher.finish(COMMAND_GRACE).await,
        Err(error) => tracing::error!("the command loop failed: {error}"),
    }
    // Every sender of reports is gone now: delivery ends once the outbox is empty.
    if tokio::time::timeout(FLUSH_TIME, &mut delivering)
        .await
        .is_err()
    {
        tracing::warn!("command reports left undelivered");
        delivering.abort();
    }
    if tokio::time::timeout(FLUSH_TIME, loops.wait())
        .await
        .is_err()
    {
        tracing::warn!("the telemetry, inventory or token loop did not stop in time");
    }
    link_stop.cancel();
    if let Some(linking) = linking
        && let Err(error) = linking.await
    {
        tracing::error!("the MQTT link failed: {error}");
    }
    tracing::info!("stopped");
    Ok(())
}

/// The enrollment and everything derived from it, refused if the state is not private;
/// with the MQTT transport, also the task that keeps its connection and the commands it
/// receives.
fn load(options: RunOptions) -> Result<(Agent, Option<(Connection, Pushed)>), RunError> {
    let dir = StateDir::open_private(&options.state_dir)?;
    let state = dir.load()?;
    let ca_pem = if state.ca_pinned {
        let path = dir.ca_file();
        Some(std::fs::read(&path).map_err(|e| {
            RunError::Setup(format!(
                "the server is pinned to {} but it cannot be read: {e}",
                path.display()
            ))
        })?)
    } else {
        None
    };
    let trust = ca_pem.as_deref().map_or(Trust::PublicRoots, Trust::Pinned);
    let tls = tls::client_config(trust).map_err(|e| RunError::Setup(e.to_string()))?;
    let client = ApiClient::new(
        &state.server_url,
        tls.clone(),
        Some(state.device_token.clone()),
    )
    .map_err(|e| RunError::Setup(e.to_string()))?;
    let (transport, mqtt) = match options.transport {
        Protocol::Https => (Transport::https(client), None),
        Protocol::Mqtt(address) => {
            let address = match address {
                Some(address) => address,
                None => mqtt::Address::of_server(&state.server_url).map_err(RunError::Setup)?,
            };
            tracing::info!(gateway = %address, "reporting over MQTT");
            let (link, connection, pushed) = mqtt::link(mqtt::Settings {
                address,
                org_id: state.org_id,
                device_id: state.device_id,
                token: state.device_token.clone(),
                tls,
            });
            (Transport::mqtt(client, link), Some((connection, pushed)))
        }
    };
    let replay_file = dir.replay_file();
    let replay = ReplayRecord::load(&replay_file).map_err(|e| {
        RunError::Setup(format!(
            "the replay record {} is unusable ({e}); it guards against commands running twice, \
             so the agent will not start without it",
            replay_file.display()
        ))
    })?;
    actions::remove_leftover_scripts(&dir)?;
    let (settings, _) = watch::channel(sane(state.settings));
    let agent = Agent {
        host: Host::under(&options.host_root, options.inventory),
        dir,
        state: Mutex::new(state),
        transport,
        settings,
        // The first report goes at once: the first poll follows it.
        telemetry_due: watch::Sender::new(Some(Instant::now())),
        replay: Mutex::new(replay),
        inventory_turn: tokio::sync::Mutex::new(()),
        environment: Environment::of_agent(),
    };
    Ok((agent, mqtt))
}

/// `settings` made safe to follow: no interval under a second, no long-poll over 60 s.
fn sane(settings: AgentSettings) -> AgentSettings {
    AgentSettings {
        telemetry_interval_seconds: settings.telemetry_interval_seconds.max(1),
        inventory_interval_seconds: settings.inventory_interval_seconds.max(1),
        long_poll_seconds: settings.long_poll_seconds.min(60),
        poll_interval_seconds: settings.poll_interval_seconds.max(1),
        token_rotation_seconds: settings.token_rotation_seconds.max(1),
    }
}

fn seconds(seconds: u32) -> Duration {
    Duration::from_secs(seconds.into())
}

impl Agent {
    /// The enrollment as it is now.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the enrollment and saves it; in memory only once it is saved.
    fn update_state(&self, change: impl FnOnce(&mut State)) -> Result<(), StateError> {
        let mut state = self.state();
        let mut next = state.clone();
        change(&mut next);
        self.dir.save(&next)?;
        *state = next;
        Ok(())
    }

    /// Tells the command poll that telemetry is next sent at `due`. One due now
    /// changes nothing: the poll waits for the report that is already due, and a
    /// change tells it the report has gone.
    fn telemetry_due_at(&self, due: Instant) {
        if due > Instant::now() {
            self.telemetry_due.send_if_modified(|known| {
                let changed = *known != Some(due);
                *known = Some(due);
                changed
            });
        }
    }

    /// The settings the loops follow now.
    fn settings(&self) -> AgentSettings {
        *self.settings.borrow()
    }

    /// Follows the settings the server sent, and saves them, if they changed.
    fn adopt(&self, settings: AgentSettings) {
        if self.state().settings == settings {
            return;
        }
        tracing::info!(?settings, "the server changed the settings");
        self.settings.send_replace(sane(settings));
        if let Err(error) = self.update_state(|state| state.settings = settings) {
            tracing::warn!("cannot save the new settings: {error}");
        }
    }

    fn replay(&self) -> MutexGuard<'_, ReplayRecord> {
        self.replay.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `interval` (read from the settings, following their changes) has
    /// passed since `since`; false if `stop` came first.
    async fn wait_interval(
        &self,
        since: Instant,
        interval: fn(&AgentSettings) -> u32,
        stop: &CancellationToken,
    ) -> bool {
        let mut settings = self.settings.subscribe();
        loop {
            let deadline = since + seconds(interval(&settings.borrow_and_update()));
            tokio::select! {
                () = sleep_until(deadline) => return true,
                _ = settings.changed() => {}
                () = stop.cancelled() => return false,
            }
        }
    }
}

/// Sleeps for `delay`; false if `stop` came first.
async fn pause(delay: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        () = stop.cancelled() => false,
    }
}
