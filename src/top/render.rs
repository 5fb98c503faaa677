//! Drawing the [`Model`] with ratatui, and what the keys do to the [`Ui`].
//! Pure: a frame in, cells out (tests draw into `TestBackend`).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use super::model::{Link, Model, Row, ThrottlePeer, View};

/// What the user chose: selection, filter, help.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ui {
    /// Index into the (filtered) rows.
    pub selected: usize,
    /// Resources whose name contains this are shown (empty: all).
    pub filter: String,
    /// While `/` is being typed: the text so far.
    pub editing: Option<String>,
    pub help: bool,
    /// Colours and bold/reverse; off under `NO_COLOR`.
    pub color: bool,
}

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Up,
    Down,
    Enter,
    Esc,
    Backspace,
}

impl Ui {
    /// `NO_COLOR` set and not empty: no styles (<https://no-color.org>).
    pub fn from_env() -> Ui {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Ui {
            color: !no_color,
            ..Ui::default()
        }
    }

    /// Handles a key; `true` = quit.
    pub fn key(&mut self, key: Key, rows: usize) -> bool {
        if let Some(text) = &mut self.editing {
            match key {
                Key::Enter => {
                    self.filter = std::mem::take(text);
                    self.editing = None;
                    self.selected = 0;
                }
                Key::Esc => self.editing = None,
                Key::Backspace => {
                    text.pop();
                }
                Key::Char(c) => text.push(c),
                Key::Up | Key::Down => {}
            }
            return false;
        }
        if self.help {
            // Any key closes the help; `q` still quits.
            self.help = false;
            return key == Key::Char('q');
        }
        match key {
            Key::Char('q') => return true,
            Key::Char('?') => self.help = true,
            Key::Char('/') => self.editing = Some(self.filter.clone()),
            Key::Esc => {
                self.filter.clear();
                self.selected = 0;
            }
            Key::Up | Key::Char('k') => self.selected = self.selected.saturating_sub(1),
            Key::Down | Key::Char('j') => {
                self.selected = (self.selected + 1).min(rows.saturating_sub(1));
            }
            _ => {}
        }
        false
    }

    fn style(&self, style: Style) -> Style {
        if self.color {
            style
        } else {
            Style::default()
        }
    }
}

/// The rows the filter lets through.
pub fn visible<'a>(view: &'a View, ui: &Ui) -> Vec<&'a Row> {
    view.rows
        .iter()
        .filter(|r| ui.filter.is_empty() || r.resource.contains(&ui.filter))
        .collect()
}

/// `10.7MiB/s`, `812KiB/s`.
pub fn kib_s(kib: f64) -> String {
    if kib >= 1024.0 * 1024.0 {
        format!("{:.1}GiB/s", kib / (1024.0 * 1024.0))
    } else if kib >= 1024.0 {
        format!("{:.1}MiB/s", kib / 1024.0)
    } else {
        format!("{kib:.0}KiB/s")
    }
}

fn kib(kib: u64) -> String {
    let k = kib as f64;
    if k >= 1024.0 * 1024.0 {
        format!("{:.1}GiB", k / (1024.0 * 1024.0))
    } else if k >= 1024.0 {
        format!("{:.1}MiB", k / 1024.0)
    } else {
        format!("{kib}KiB")
    }
}

/// `1m48s`, `2h05m`, `9s`.
pub fn eta(seconds: u64) -> String {
    match seconds {
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

/// `[██████░░░░]` of `width` cells inside the brackets.
pub fn bar(percent: f64, width: usize) -> String {
    let filled = ((percent.clamp(0.0, 100.0) / 100.0) * width as f64).round() as usize;
    format!(
        "[{}{}]",
        "█".repeat(filled),
        "░".repeat(width - filled.min(width))
    )
}

/// Samples as `▁▂▃▄▅▆▇█`, the top at `top` (the last `width` samples).
pub fn sparkline<'a>(
    samples: impl DoubleEndedIterator<Item = &'a f64>,
    top: f64,
    width: usize,
) -> String {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let mut last: Vec<f64> = samples.rev().take(width).copied().collect();
    last.reverse();
    last.iter()
        .map(|&v| {
            let level = if top > 0.0 {
                (v / top * 8.0).ceil() as usize
            } else {
                0
            };
            LEVELS[level.clamp(1, 8) - 1]
        })
        .collect()
}

fn short_role(role: &str) -> &str {
    match role {
        "Primary" => "Pri",
        "Secondary" => "Sec",
        "Unknown" => "?",
        other => other,
    }
}

fn pad(text: &str, width: usize) -> String {
    let mut out: String = text.chars().take(width).collect();
    let len = out.chars().count();
    out.extend(std::iter::repeat_n(' ', width - len));
    out
}

fn state_color(state: &str) -> Color {
    match state {
        "UpToDate" | "Established" | "Connected" | "Primary" => Color::Green,
        s if s.starts_with("Sync") || s.starts_with("Paused") || s.starts_with("WF") => {
            Color::Yellow
        }
        "Inconsistent" | "Outdated" | "Connecting" => Color::Yellow,
        "-" | "Secondary" => Color::Reset,
        _ => Color::Red,
    }
}

fn resource_lines(model: &Model, ui: &Ui) -> (Vec<Line<'static>>, usize) {
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "  {}{}{}{}{}{}{}{}",
            pad("RESOURCE", 11),
            pad("ROLE", 5),
            pad("V", 3),
            pad("DISK", 13),
            pad("PEER", 10),
            pad("PEER", 5),
            pad("REPLICATION", 13),
            "PEER-DISK"
        ),
        ui.style(Style::default().add_modifier(Modifier::BOLD)),
    ))];
    let Some(view) = &model.view else {
        lines.push(Line::from(match &model.link {
            Link::Lost(why) => format!("  no answer from the agent: {why}"),
            _ => "  waiting for the agent...".to_owned(),
        }));
        return (lines, 0);
    };
    let rows = visible(view, ui);
    if rows.is_empty() {
        lines.push(Line::from(format!("  no resource matches '{}'", ui.filter)));
    }
    let mut selected_line = 0;
    for (i, row) in rows.iter().enumerate() {
        let selected = i == ui.selected.min(rows.len().saturating_sub(1));
        if selected {
            selected_line = lines.len();
        }
        // Not connected: the connection state stands for the replication.
        let replication = if row.connection != "Connected" && row.connection != "-" {
            &row.connection
        } else {
            &row.replication
        };
        let cell =
            |text: String, color: Color| Span::styled(text, ui.style(Style::default().fg(color)));
        let mut spans = vec![
            Span::raw(if selected { "> " } else { "  " }),
            Span::styled(
                pad(&row.resource, 11),
                ui.style(Style::default().add_modifier(Modifier::BOLD)),
            ),
            cell(pad(short_role(&row.role), 5), state_color(&row.role)),
            Span::raw(pad(&row.volume, 3)),
            cell(pad(&row.disk, 13), state_color(&row.disk)),
            Span::raw(pad(&row.peer, 10)),
            cell(
                pad(short_role(&row.peer_role), 5),
                state_color(&row.peer_role),
            ),
            cell(pad(replication, 13), state_color(replication)),
            cell(row.peer_disk.clone(), state_color(&row.peer_disk)),
        ];
        if selected && ui.color {
            for span in &mut spans {
                span.style = span.style.bg(Color::DarkGray);
            }
        }
        lines.push(Line::from(spans));
        if let Some(resync) = &row.resync {
            let mut text = format!("    {} {:5.1}%", bar(resync.done, 24), resync.done);
            if let Some(rate) = resync.rate_mib_s {
                text.push_str(&format!("  {}", kib_s(rate * 1024.0)));
            }
            if let Some(seconds) = resync.eta_s {
                text.push_str(&format!("  ETA {}", eta(seconds)));
            }
            if let Some(oos) = resync.out_of_sync_kib {
                text.push_str(&format!("  left {}", kib(oos)));
            }
            lines.push(Line::from(Span::styled(
                text,
                ui.style(Style::default().fg(Color::Cyan)),
            )));
        }
    }
    (lines, selected_line)
}

/// The throttled peer device to show: the selected row's, else the first.
fn throttle_peer<'a>(model: &'a Model, ui: &Ui) -> Option<&'a ThrottlePeer> {
    let view = model.view.as_ref()?;
    let rows = visible(view, ui);
    let key = rows
        .get(ui.selected.min(rows.len().saturating_sub(1)))
        .and_then(|r| r.throttle_key());
    let peers = &view.throttle.peers;
    key.and_then(|k| peers.iter().find(|p| p.key == k))
        .or_else(|| {
            peers
                .iter()
                .find(|p| ui.filter.is_empty() || p.resource.contains(&ui.filter))
        })
}

fn throttle_lines(model: &Model, ui: &Ui, width: usize) -> Vec<Line<'static>> {
    let Some(view) = &model.view else {
        return vec![];
    };
    let t = &view.throttle;
    let bold = ui.style(Style::default().add_modifier(Modifier::BOLD));
    let mut lines = Vec::new();
    let footer = Line::from(format!(
        "pressure {}   linstor {}   drbd {}",
        t.pressure,
        view.linstor,
        if view.drbd_reachable {
            "reachable"
        } else {
            "NOT reachable"
        }
    ));
    if !t.enabled {
        lines.push(Line::from(vec![
            Span::styled("throttle ", bold),
            Span::raw("disabled (DRBD's own pacer)"),
        ]));
        lines.push(footer);
        return lines;
    }
    let Some(peer) = throttle_peer(model, ui) else {
        lines.push(Line::from(vec![
            Span::styled(format!("throttle {}", t.mode), bold),
            Span::raw("  no resync to pace"),
        ]));
        if let Some(error) = &t.last_error {
            lines.push(Line::from(format!("last error: {error}")));
        }
        lines.push(footer);
        return lines;
    };
    lines.push(Line::from(vec![
        Span::styled(format!("throttle {}", t.mode), bold),
        Span::raw(format!(
            "  {}/{}/{}  {}  {}  signal {}",
            peer.resource, peer.peer, peer.volume, peer.state, peer.model, peer.signal
        )),
    ]));
    lines.push(Line::from(vec![
        Span::raw("setpoint "),
        Span::styled(
            peer.setpoint_kib
                .map_or_else(|| "-".to_owned(), |k| kib_s(k as f64)),
            ui.style(
                Style::default()
                    .fg(Color::Cyan)
                    .add_modifier(Modifier::BOLD),
            ),
        ),
        Span::raw(format!("  floor {}  ceiling {}", peer.floor, peer.ceiling)),
    ]));
    let latency = peer
        .latency_ms
        .map_or_else(|| "-".to_owned(), |l| format!("{l:.2}ms"));
    let target = peer.target_ms.unwrap_or(0.0);
    let over = peer
        .latency_ms
        .is_some_and(|l| target > 0.0 && l > 1.3 * target);
    let head = format!("latency {latency:>8} / target {target:.2}ms  ");
    let samples = model.latency.get(&peer.key);
    let spark_width = width.saturating_sub(head.chars().count()).min(60);
    let top = samples
        .map(|s| s.iter().copied().fold(1.5 * target, f64::max))
        .unwrap_or(1.5 * target);
    let spark = samples.map_or_else(String::new, |s| sparkline(s.iter(), top, spark_width));
    lines.push(Line::from(vec![
        Span::styled(
            head,
            ui.style(Style::default().fg(if over { Color::Red } else { Color::Green })),
        ),
        Span::styled(spark, ui.style(Style::default().fg(Color::Magenta))),
    ]));
    lines.push(footer);
    lines
}

fn event_lines(model: &Model, height: usize) -> Vec<Line<'static>> {
    let skip = model.events.len().saturating_sub(height);
    model
        .events
        .iter()
        .skip(skip)
        .map(|e| Line::from(format!("{} {} {}", e.time, e.what, e.text)))
        .collect()
}

const HELP: &[&str] = &[
    "drbd-agent top: a live view of the agent at --url, refreshed every second",
    "",
    "  q          quit",
    "  ↑ ↓  j k   select a peer device (the throttle panel follows it)",
    "  /          filter by resource name (Enter applies, Esc cancels)",
    "  Esc        clear the filter",
    "  ?          this help (any key closes it)",
    "",
    "Resync rows show progress, rate, ETA and what is left; the throttle",
    "panel the setpoint (the c-max-rate the agent set), its floor and",
    "ceiling, and the latency signal against its target (sparkline: the",
    "last minute, top = 1.5 × the target). NO_COLOR turns colours off.",
];

/// Draws one frame.
pub fn draw(frame: &mut Frame, model: &Model, ui: &Ui) {
    let area = frame.area();
    let events_height = ((area.height.saturating_sub(13)) / 3).max(4) + 2;
    let [resources, throttle, events, footer] = Layout::vertical([
        Constraint::Min(5),
        Constraint::Length(6),
        Constraint::Length(events_height),
        Constraint::Length(1),
    ])
    .areas(area);

    let (status, status_style) = match &model.link {
        Link::Connecting => ("connecting".to_owned(), Color::Yellow),
        Link::Up => (
            format!("up {}", model.updated.as_deref().unwrap_or("")),
            Color::Green,
        ),
        // The reason is in the event log (and below, before any answer).
        Link::Lost(_) => ("LOST, retrying".to_owned(), Color::Red),
    };
    let node = model.view.as_ref().map_or("-", |v| v.node.as_str());
    let title = Line::from(vec![
        Span::styled(
            " drbd-agent top ",
            ui.style(Style::default().add_modifier(Modifier::BOLD)),
        ),
        Span::raw(format!("─ {node} ─ {} ─ ", model.url)),
        Span::styled(status, ui.style(Style::default().fg(status_style))),
        Span::raw(" "),
    ]);
    let (lines, selected_line) = resource_lines(model, ui);
    let inner_height = resources.height.saturating_sub(2) as usize;
    // Keep the selected row (and its progress bar) in view.
    let scroll = (selected_line + 2).saturating_sub(inner_height);
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(title))
            .scroll((scroll as u16, 0)),
        resources,
    );
    let width = throttle.width.saturating_sub(2) as usize;
    frame.render_widget(
        Paragraph::new(throttle_lines(model, ui, width))
            .block(Block::bordered().title(" throttle ")),
        throttle,
    );
    frame.render_widget(
        Paragraph::new(event_lines(model, events.height.saturating_sub(2) as usize))
            .block(Block::bordered().title(" events ")),
        events,
    );
    let keys = match &ui.editing {
        Some(text) => format!(" filter: {text}▏ (Enter applies, Esc cancels)"),
        None if ui.filter.is_empty() => " q quit  ↑↓ j k select  / filter  ? help".to_owned(),
        None => format!(
            " q quit  ↑↓ j k select  / filter [{}]  Esc all  ? help",
            ui.filter
        ),
    };
    frame.render_widget(
        Paragraph::new(Span::styled(
            keys,
            ui.style(Style::default().add_modifier(Modifier::REVERSED)),
        )),
        footer,
    );
    if ui.help {
        let height = (HELP.len() as u16 + 2).min(area.height);
        let width = 76.min(area.width);
        let popup = Rect {
            x: area.x + (area.width - width) / 2,
            y: area.y + (area.height - height) / 2,
            width,
            height,
        };
        frame.render_widget(Clear, popup);
        frame.render_widget(
            Paragraph::new(HELP.iter().map(|l| Line::from(*l)).collect::<Vec<_>>())
                .block(Block::bordered().title(" help ")),
            popup,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn model() -> Model {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/top-status.json")).expect("json");
        let mut model = Model::new("http://127.0.0.1:9943");
        model.update(&doc, "10:00:00");
        model.update(&doc, "10:00:01");
        model
    }

    fn screen(
        model: &Model,
        ui: &Ui,
        width: u16,
        height: u16,
    ) -> (Vec<String>, ratatui::buffer::Buffer) {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
        terminal.draw(|f| draw(f, model, ui)).expect("draw");
        let buffer = terminal.backend().buffer().clone();
        let lines = (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol().to_owned())
                    .collect::<String>()
            })
            .collect();
        (lines, buffer)
    }

    #[test]
    fn an_80x24_frame_shows_the_resync_bar_and_the_setpoint() {
        let ui = Ui {
            color: true,
            ..Ui::default()
        };
        let (lines, _) = screen(&model(), &ui, 80, 24);
        let text = lines.join("\n");
        assert!(text.contains("[█████"), "{text}");
        assert!(text.contains("44.6%"), "{text}");
        assert!(text.contains("ETA 1m48s"), "{text}");
        assert!(text.contains("setpoint 10.7MiB/s"), "{text}");
        assert!(text.contains("ceiling 100MiB/s"), "{text}");
        assert!(text.contains("target 5.00ms"), "{text}");
        assert!(
            lines[0].starts_with("┌ drbd-agent top ─ alpha"),
            "{}",
            lines[0]
        );
        assert!(lines[23].contains("q quit"), "{}", lines[23]);
        assert!(lines.iter().all(|l| l.chars().count() == 80));
    }

    #[test]
    fn no_color_means_no_styles() {
        let ui = Ui::default();
        assert!(!ui.color);
        let (_, buffer) = screen(&model(), &ui, 80, 24);
        for cell in buffer.content() {
            assert_eq!(cell.fg, Color::Reset, "{cell:?}");
            assert_eq!(cell.bg, Color::Reset, "{cell:?}");
            assert!(cell.modifier.is_empty(), "{cell:?}");
        }
        let colored = Ui {
            color: true,
            ..Ui::default()
        };
        let (_, buffer) = screen(&model(), &colored, 80, 24);
        assert!(buffer.content().iter().any(|c| c.fg != Color::Reset));
    }

    #[test]
    fn keys_select_filter_help_and_quit() {
        let mut ui = Ui::default();
        assert!(!ui.key(Key::Down, 3));
        assert!(!ui.key(Key::Char('j'), 3));
        assert!(!ui.key(Key::Char('j'), 3));
        assert_eq!(ui.selected, 2);
        assert!(!ui.key(Key::Char('k'), 3));
        assert_eq!(ui.selected, 1);
        assert!(!ui.key(Key::Char('/'), 3));
        for c in "webq".chars() {
            assert!(
                !ui.key(Key::Char(c), 3),
                "typing q into the filter does not quit"
            );
        }
        ui.key(Key::Backspace, 3);
        ui.key(Key::Enter, 3);
        assert_eq!(ui.filter, "web");
        assert_eq!(ui.selected, 0);
        let model = model();
        let rows = visible(model.view.as_ref().expect("view"), &ui);
        assert!(!rows.is_empty() && rows.iter().all(|r| r.resource == "web"));
        ui.key(Key::Char('?'), 3);
        assert!(ui.help);
        let (lines, _) = screen(&model, &ui, 80, 24);
        assert!(lines.join("\n").contains("filter by resource name"));
        assert!(!ui.key(Key::Char('x'), 3));
        assert!(!ui.help);
        assert!(ui.key(Key::Char('q'), 3));
    }

    #[test]
    fn a_lost_agent_shows_in_the_title() {
        let mut model = model();
        model.lost("connection refused".into(), "10:00:02");
        let (lines, _) = screen(&model, &Ui::default(), 80, 24);
        assert!(lines[0].contains("LOST, retrying"), "{}", lines[0]);
        assert!(lines.join("\n").contains("agent lost: connection refused"));
    }

    #[test]
    fn bars_sparklines_and_units() {
        assert_eq!(bar(50.0, 4), "[██░░]");
        assert_eq!(bar(150.0, 2), "[██]");
        assert_eq!(sparkline([1.0, 5.0, 10.0].iter(), 10.0, 2), "▄█");
        assert_eq!(kib_s(10906.0), "10.7MiB/s");
        assert_eq!(kib_s(500.0), "500KiB/s");
        assert_eq!(eta(108), "1m48s");
        assert_eq!(eta(7500), "2h05m");
    }
}
