//! Email notifications: worth reading, and never lost.
//!
//! `notify` reacts to transitions; it never checks anything and never blocks a check. Two tasks:
//!
//! * the **reactor** receives each [`TransitionEvent`] from the monitors, asks the [`policy`]
//!   whether it deserves a mail (degrades are held for one check, an incident's `UNHEALTHY` is
//!   mailed once, reminders, recoveries), [`render`]s the mail, and puts it in the store's outbox
//!   durably before anything is sent; then it wakes the worker;
//! * the **delivery worker** sends what is due in the outbox through the SMTP relay, retries
//!   transient failures with a backoff that doubles from 1 s up to 60 s, gives up on permanent ones,
//!   and coalesces storms into digests (see `delivery`).
//!
//! Without `smtp_url`, or in test mode, mail is written to the log instead (`MAIL (not sent: test
//! mode) To: ... Subject: ...` and the body) and marked as logged in the outbox.
//!
//! # Wiring
//!
//! ```no_run
//! # use healthchecker_server::{Config, notify::{Notifier, TransitionEvent}, store::{Store, StoreOptions}};
//! # use tokio_util::{sync::CancellationToken, task::TaskTracker};
//! # async fn wire(config: Config) -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open(&config.data_dir, StoreOptions::from(&config))?;
//! let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel::<TransitionEvent>();
//! let (cancel, tasks) = (CancellationToken::new(), TaskTracker::new());
//! let notifier = Notifier::spawn(&config, store.clone(), "http://192.168.1.5:8080".into(),
//!                                events_rx, cancel.clone(), &tasks)?;
//! // ... the monitors send every transition on events_tx, and call
//! // notifier.forget(&name) when a monitor is removed or paused ...
//! cancel.cancel(); // at shutdown: the notifier enqueues what it received, tries to send it
//! tasks.close();   // (within notify::FLUSH_DEADLINE), then its tasks end
//! tasks.wait().await;
//! store.close().await?;
//! # Ok(()) }
//! ```

pub mod delivery;
pub mod policy;
pub mod render;
mod smtp;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use delivery::{
    BACKOFF_FIRST, BACKOFF_MAX, COALESCE_WINDOW, DIGEST_MAX, FLUSH_DEADLINE, GIVE_UP_AFTER, backoff,
};
pub use smtp::{COMMAND_TIMEOUT, MAX_CONNECTIONS, SEND_TIMEOUT};

use self::policy::{Action, Input, Note, Policy};
use self::render::{MailContent, RECENT_MAX};
use crate::Config;
use crate::health::{State, Transition};
use crate::registry::{AppName, MonitorSpec};
use crate::store::{LoggedCheck, OutgoingMail, Store};

/// Transitions read from the store to rebuild an incident that was open before a restart.
const HISTORY: usize = 100;

/// A change of state of one monitor, as the monitors report it.
#[derive(Debug, Clone)]
pub struct TransitionEvent {
    /// The app.
    pub name: AppName,
    /// Its registration (recipients, URL, interval, timeout).
    pub spec: Arc<MonitorSpec>,
    /// The change.
    pub transition: Transition,
    /// `to` is `HEALTHY` at the end of a recovery from `UNHEALTHY` (not after a blip).
    pub recovered: bool,
    /// The last checks, newest first (at most 5 are shown).
    pub recent: Vec<LoggedCheck>,
}

/// A fault that stops the notifier from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// lettre cannot make a transport of `smtp_url`.
    #[error("cannot use the SMTP relay {url}: {reason}")]
    Transport {
        /// The URL, password hidden.
        url: String,
        /// What lettre said.
        reason: String,
    },
    /// The sender is not a mailbox.
    #[error("invalid sender address `{value}`: expected e.g. healthchecker@example.com")]
    MailFrom {
        /// The value.
        value: String,
    },
}

/// How the notifier behaves, beyond what [`Config`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotifyOptions {
    /// This server's base URL as apps reach it (e.g. `http://192.168.1.5:8080`), for the stop
    /// instructions in every mail.
    pub server_url: String,
    /// Time between reminders while an app stays `UNHEALTHY`; `None`: no reminders. From
    /// `remind_every`.
    pub remind_every: Option<Duration>,
    /// Mail to a recipient list within this time after a successful send to it is coalesced into
    /// one digest; [`COALESCE_WINDOW`] by default, zero turns coalescing off.
    pub coalesce_window: Duration,
}

impl NotifyOptions {
    /// The options of `config`, with this server's base URL.
    pub fn new(config: &Config, server_url: impl Into<String>) -> NotifyOptions {
        NotifyOptions {
            server_url: server_url.into(),
            remind_every: config.remind_every,
            coalesce_window: COALESCE_WINDOW,
        }
    }
}

/// A running notifier: a handle on its two tasks.
#[derive(Debug, Clone)]
pub struct Notifier {
    forget: mpsc::UnboundedSender<AppName>,
    wake: Arc<Notify>,
    describe: String,
}

impl Notifier {
    /// Starts the reactor and the delivery worker on `tasks`.
    ///
    /// `config` gives `smtp_url`, `mail_from`, `test_mode` and `remind_every`; `server_url` is this
    /// server's base URL as apps reach it, for the stop instructions in every mail. Mail already in
    /// the outbox (from before a restart) is sent at once. On `cancel`, the reactor enqueues the
    /// events already received, the worker tries once more to send everything pending within
    /// [`FLUSH_DEADLINE`], and both tasks end; mail that could not be sent stays in the outbox.
    ///
    /// # Errors
    ///
    /// [`NotifyError::Transport`] when lettre cannot use `smtp_url`, [`NotifyError::MailFrom`] when
    /// the sender is not a mailbox. Nothing is spawned then.
    pub fn spawn(
        config: &Config,
        store: Store,
        server_url: String,
        events: mpsc::UnboundedReceiver<TransitionEvent>,
        cancel: CancellationToken,
        tasks: &TaskTracker,
    ) -> Result<Notifier, NotifyError> {
        let options = NotifyOptions::new(config, server_url);
        Notifier::spawn_with(config, options, store, events, cancel, tasks)
    }

    /// [`Notifier::spawn`] with every option spelled out (`remind_every` is taken from `options`,
    /// not from `config`).
    ///
    /// # Errors
    ///
    /// As [`Notifier::spawn`].
    pub fn spawn_with(
        config: &Config,
        options: NotifyOptions,
        store: Store,
        events: mpsc::UnboundedReceiver<TransitionEvent>,
        cancel: CancellationToken,
        tasks: &TaskTracker,
    ) -> Result<Notifier, NotifyError> {
        let host = render::safe_host(
            &hostname::get()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        let mailer = smtp::Mailer::new(
            config.smtp_url.as_ref(),
            config.mail_from.as_deref(),
            config.test_mode,
            &host,
        )?;
        let describe = match &mailer {
            smtp::Mailer::Smtp { relay, from, .. } => format!("sent through {relay} from {from}"),
            smtp::Mailer::Log { why } => format!("written to the log ({why})"),
        };
        let wake = Arc::new(Notify::new());
        let (forget_tx, forget_rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = oneshot::channel();
        let reactor = Reactor {
            policy: Policy::new(&host, options.remind_every),
            store: store.clone(),
            wake: Arc::clone(&wake),
            server_url: options.server_url,
        };
        tasks.spawn(reactor.run(events, forget_rx, cancel.clone(), done_tx));
        let worker = delivery::Worker {
            store,
            mailer,
            wake: Arc::clone(&wake),
            host,
            window: options.coalesce_window,
            last_sent: std::collections::HashMap::new(),
        };
        tasks.spawn(worker.run(cancel, done_rx));
        Ok(Notifier {
            forget: forget_tx,
            wake,
            describe,
        })
    }

    /// Forgets the monitor `name` (removed or paused): a degrade held for it is not mailed, and no
    /// reminder follows. Its next transition starts afresh.
    pub fn forget(&self, name: &AppName) {
        let _ = self.forget.send(name.clone());
    }

    /// Makes the worker look at the outbox now (it does so by itself after every enqueue).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Where mail goes, for the start-up log: `sent through smtp://relay:25 from ...` or
    /// `written to the log (test mode)`.
    pub fn describe(&self) -> &str {
        &self.describe
    }
}

/// Receives transitions, applies the policy, enqueues mail.
struct Reactor {
    policy: Policy,
    store: Store,
    wake: Arc<Notify>,
    server_url: String,
}

impl Reactor {
    async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<TransitionEvent>,
        mut forget: mpsc::UnboundedReceiver<AppName>,
        cancel: CancellationToken,
        done: oneshot::Sender<()>,
    ) {
        if self.policy.reminds() {
            self.resume_open_incidents().await;
        }
        let (mut events_open, mut forget_open) = (true, true);
        loop {
            let deadline = self.policy.next_deadline();
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                event = events.recv(), if events_open => match event {
                    Some(event) => self.on_event(event).await,
                    None => events_open = false,
                },
                name = forget.recv(), if forget_open => match name {
                    Some(name) => self.policy.forget(&name),
                    None => forget_open = false,
                },
                () = sleep_until(deadline), if deadline.is_some() => {
                    let actions = self.policy.on_tick(Utc::now());
                    for action in actions {
                        self.act(action).await;
                    }
                }
            }
        }
        // Transitions reported before the shutdown still get their mail queued.
        while let Ok(event) = events.try_recv() {
            self.on_event(event).await;
        }
        let _ = done.send(());
    }

    /// Reopens the incidents of monitors that are `UNHEALTHY` (or recovering from it) in the store,
    /// so their reminders go on after a restart. Their next transition would find them anyway
    /// ([`Policy::needs_history`]), but an app that stays down makes no transition.
    async fn resume_open_incidents(&mut self) {
        let store = self.store.clone();
        let monitors = match tokio::task::spawn_blocking(move || store.load_monitors()).await {
            Ok(Ok(monitors)) => monitors,
            Ok(Err(error)) => {
                tracing::warn!("cannot read the monitors to resume reminders: {error}");
                return;
            }
            Err(error) => {
                tracing::warn!("cannot read the monitors to resume reminders: {error}");
                return;
            }
        };
        let now = Utc::now();
        for monitor in monitors {
            let health = monitor.health;
            let open = health.state == State::Unhealthy
                || (health.state == State::Degraded && health.recovering);
            if monitor.paused || !open {
                continue;
            }
            match self.store.transitions(&monitor.name, HISTORY).await {
                Ok(history) => {
                    if let Some(resumed) = policy::resume_from(&history) {
                        let spec = Arc::new(monitor.spec);
                        self.policy.resume(&monitor.name, &spec, resumed, now);
                        tracing::debug!(monitor = %monitor.name, "open incident resumed for reminders");
                    }
                }
                Err(error) => tracing::warn!(
                    monitor = %monitor.name,
                    "cannot read the transitions to resume reminders: {error}"
                ),
            }
        }
    }

    async fn on_event(&mut self, event: TransitionEvent) {
        let input = Input {
            name: &event.name,
            spec: &event.spec,
            transition: &event.transition,
            recent: &event.recent[..event.recent.len().min(RECENT_MAX)],
        };
        if self.policy.needs_history(&input) {
            match self.store.transitions(&event.name, HISTORY).await {
                Ok(history) => {
                    let before: Vec<Transition> = history
                        .into_iter()
                        .filter(|t| t.time < event.transition.time)
                        .collect();
                    if let Some(resumed) = policy::resume_from(&before) {
                        self.policy
                            .resume(&event.name, &event.spec, resumed, Utc::now());
                    }
                }
                Err(error) => tracing::warn!(
                    monitor = %event.name,
                    "cannot read the transitions to find an open incident: {error}"
                ),
            }
        }
        let actions = self.policy.on_transition(input, Utc::now());
        for action in actions {
            match action {
                Action::Note(note) => note_transition(&event, note),
                Action::Mail(_) => self.act(action).await,
            }
        }
    }

    async fn act(&mut self, action: Action) {
        let Action::Mail(plan) = action else {
            return;
        };
        let now = Utc::now();
        let mut recent = plan.recent;
        if plan.kind == render::MailKind::Reminder {
            // The checks since the last transition are in the store, not in the events.
            if let Ok(fresh) = self.store.log(&plan.name, RECENT_MAX).await
                && !fresh.is_empty()
            {
                recent = fresh;
            }
        }
        let check_url = plan.spec.check_url();
        let rendered = render::render(&MailContent {
            kind: plan.kind,
            app: plan.name.as_str(),
            check_url: &check_url,
            transition: &plan.transition,
            down_since: Some(plan.down_since),
            now,
            recent: &recent,
            server_url: &self.server_url,
            tz: &Local,
        });
        if plan.spec.emails.is_empty() {
            tracing::info!(
                monitor = %plan.name,
                "{} (no email address registered: not mailed)",
                rendered.subject
            );
            return;
        }
        let mail = OutgoingMail {
            monitor: plan.name.to_string(),
            recipients: plan.spec.emails.clone(),
            subject: rendered.subject,
            body: rendered.body,
            message_id: plan.message_id,
            in_reply_to: plan.in_reply_to,
            references: plan.references,
            created_at: now,
        };
        match self.store.enqueue_mail(&mail).await {
            Ok(id) => {
                tracing::debug!(monitor = %plan.name, id, "mail queued: {}", mail.subject);
                self.wake.notify_one();
            }
            Err(error) => tracing::error!(
                monitor = %plan.name,
                "cannot queue the mail \"{}\": {error}",
                mail.subject
            ),
        }
    }
}

/// Logs a transition the policy did not mail.
fn note_transition(event: &TransitionEvent, note: Note) {
    let name = &event.name;
    let t = &event.transition;
    let reason = render::one_line(&t.reason, 200);
    match note {
        Note::DegradeHeld { until } => tracing::info!(
            monitor = %name,
            "{} -> {} ({reason}): mail held until the next check ({})",
            t.from,
            t.to,
            until.format("%H:%M:%S UTC")
        ),
        Note::Blip => tracing::info!(
            monitor = %name,
            "{} -> {} within one check: a blip, not mailed",
            t.from,
            t.to
        ),
        Note::Recovering => tracing::info!(
            monitor = %name,
            "{} -> {} ({reason}): recovering, not mailed",
            t.from,
            t.to
        ),
        Note::StillInIncident => tracing::info!(
            monitor = %name,
            "{} -> {} ({reason}): same incident, already mailed",
            t.from,
            t.to
        ),
        Note::Quiet => tracing::debug!(monitor = %name, "{} -> {}: no mail", t.from, t.to),
    }
}

/// Sleeps until `at` (now when it is past), or for ever when `None`.
async fn sleep_until(at: Option<DateTime<Utc>>) {
    match at {
        Some(at) => {
            let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::time::sleep(wait).await;
        }
        None => std::future::pending().await,
    }
}
