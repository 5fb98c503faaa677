//! The terminal side of `top`: raw mode and the alternate screen, the key
//! loop, and a task fetching `/v1/status` every second.

use std::sync::mpsc;
use std::time::Duration;

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use super::model::Model;
use super::render::{draw, visible, Key, Ui};
use super::TopError;

/// How often the agent is asked.
pub const REFRESH: Duration = Duration::from_secs(1);

/// One look at the agent: the document, or why there is none.
type Look = Result<serde_json::Value, String>;

/// The innermost cause ("Connection refused (os error 111)"): short
/// enough for the title line; reqwest's outer layers only repeat the URL.
fn chain(error: &dyn std::error::Error) -> String {
    let mut innermost = error;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    innermost.to_string()
}

async fn look(client: &reqwest::Client, url: &str) -> Look {
    let response = client.get(url).send().await.map_err(|e| chain(&e))?;
    let code = response.status();
    if !code.is_success() {
        return Err(format!("answered {code}"));
    }
    response.json().await.map_err(|e| chain(&e))
}

/// Looks waiting for the view: it drains them every 100 ms, and while it
/// cannot (a stalled terminal) newer looks are dropped, not queued.
const PENDING_LOOKS: usize = 2;

/// Fetches every [`REFRESH`] until the receiver is gone.
async fn fetch_loop(url: String, sender: mpsc::SyncSender<Look>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            let _ = sender.try_send(Err(chain(&e)));
            return;
        }
    };
    let mut ticker = tokio::time::interval(REFRESH);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match sender.try_send(look(&client, &url).await) {
            Ok(()) | Err(mpsc::TrySendError::Full(_)) => {}
            Err(mpsc::TrySendError::Disconnected(_)) => return,
        }
    }
}

fn key(code: KeyCode, modifiers: KeyModifiers) -> Option<Key> {
    match code {
        KeyCode::Char('c') if modifiers.contains(KeyModifiers::CONTROL) => Some(Key::Char('q')),
        KeyCode::Char(c) => Some(Key::Char(c)),
        KeyCode::Up => Some(Key::Up),
        KeyCode::Down => Some(Key::Down),
        KeyCode::Enter => Some(Key::Enter),
        KeyCode::Esc => Some(Key::Esc),
        KeyCode::Backspace => Some(Key::Backspace),
        _ => None,
    }
}

fn now() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

/// Runs the view on the terminal until `q` (or Ctrl-C); the terminal is
/// restored whatever happens (also on a panic: ratatui's hook).
pub fn run(base_url: &str) -> Result<(), TopError> {
    let base = base_url.trim_end_matches('/').to_owned();
    let status_url = format!("{base}/v1/status");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let (sender, receiver) = mpsc::sync_channel(PENDING_LOOKS);
    runtime.spawn(fetch_loop(status_url, sender));

    let mut terminal = ratatui::try_init()?;
    let result = event_loop(&mut terminal, &base, &receiver);
    let restored = ratatui::try_restore();
    runtime.shutdown_background();
    result?;
    restored?;
    Ok(())
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    base: &str,
    receiver: &mpsc::Receiver<Look>,
) -> Result<(), TopError> {
    let mut model = Model::new(base);
    let mut ui = Ui::from_env();
    loop {
        while let Ok(look) = receiver.try_recv() {
            match look {
                Ok(document) => model.update(&document, &now()),
                Err(why) => model.lost(why, &now()),
            }
        }
        terminal.draw(|frame| draw(frame, &model, &ui))?;
        if !event::poll(Duration::from_millis(100))? {
            continue;
        }
        if let Event::Key(k) = event::read()? {
            if k.kind != KeyEventKind::Press {
                continue;
            }
            let Some(key) = key(k.code, k.modifiers) else {
                continue;
            };
            let rows = model.view.as_ref().map_or(0, |v| visible(v, &ui).len());
            if ui.key(key, rows) {
                return Ok(());
            }
        }
    }
}
