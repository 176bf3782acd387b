//! The state-machine picture, `img/statemachine.svg`, drawn from [`TABLE`].
//!
//! A development tool, not part of the server: it is compiled only into the `diagram` test,
//! which checks that the committed picture is current and, when asked, writes it.
//!
//! The arrows and their labels come from the table, so the picture cannot drift from the code: a
//! test compares the committed file with [`state_machine_svg`]. Only the layout is by hand: where
//! each state's box sits and how the arrow between two given states runs (`route`).
//!
//! What is drawn, cell by cell: a cell that leaves its state is an arrow to each target, coloured
//! by the outcome and labelled with the outcome and its condition (the table's `when`, which
//! belongs to the last target of a cell; an earlier target is where it goes "until" then). A cell
//! that always stays is a small loop. A cell that stays only until a threshold needs no loop: its
//! leaving arrow says "once ...".

use std::borrow::Cow;
use std::fmt::Write as _;

use healthchecker_server::health::{Outcome, Rule, State, TABLE};

/// Width and height of the picture.
const WIDTH: f64 = 1200.0;
const HEIGHT: f64 = 720.0;
/// Half the width and height of a state's box.
const HALF_W: f64 = 85.0;
const HALF_H: f64 = 28.0;
/// Height of a line of label text.
const LINE: f64 = 16.0;

const FONT: &str = "DejaVu Sans, Helvetica, Arial, sans-serif";
const INK: &str = "#1f2430";
const MUTED: &str = "#5b6473";

/// The centre of a state's box: UNKNOWN on top, the other three in a row below it.
fn centre(state: State) -> (f64, f64) {
    match state {
        State::Unknown => (600.0, 170.0),
        State::Healthy => (200.0, 400.0),
        State::Degraded => (600.0, 400.0),
        State::Unhealthy => (1000.0, 400.0),
    }
}

/// Fill and stroke of a state's box.
fn state_colours(state: State) -> (&'static str, &'static str) {
    match state {
        State::Unknown => ("#eef0f4", "#8a94a6"),
        State::Healthy => ("#e6f5ec", "#2e9e5b"),
        State::Degraded => ("#fff3dc", "#cc8400"),
        State::Unhealthy => ("#fde9e9", "#d64545"),
    }
}

/// The colour of an arrow taken on `outcome`.
fn outcome_colour(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "#2e9e5b",
        Outcome::Warn => "#cc8400",
        Outcome::Fail => "#d64545",
    }
}

/// Which way a label's lines stack from its anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stack {
    /// The last line sits on the anchor (a label above its arrow).
    Up,
    /// The first line sits on the anchor (a label below its arrow).
    Down,
}

/// How an arrow runs: an SVG path, and where its label goes.
#[derive(Debug, Clone, PartialEq)]
struct Route {
    path: Cow<'static, str>,
    label: (f64, f64),
    anchor: &'static str,
    stack: Stack,
}

/// The hand-made route of the arrow from `from` to `to`, if the layout has one.
fn route(from: State, to: State) -> Option<Route> {
    use State::{Degraded, Healthy, Unhealthy, Unknown};
    let route = |path: &'static str, label, anchor, stack| {
        Some(Route {
            path: Cow::Borrowed(path),
            label,
            anchor,
            stack,
        })
    };
    match (from, to) {
        (Unknown, Healthy) => route("M 530 198 L 262 370", (380.0, 262.0), "end", Stack::Up),
        (Unknown, Degraded) => route("M 600 198 L 600 368", (612.0, 290.0), "start", Stack::Up),
        (Unknown, Unhealthy) => route("M 670 198 L 938 370", (820.0, 262.0), "start", Stack::Up),
        (Healthy, Degraded) => route("M 285 388 L 511 388", (400.0, 378.0), "middle", Stack::Up),
        (Degraded, Healthy) => route("M 515 412 L 289 412", (400.0, 434.0), "middle", Stack::Down),
        (Degraded, Unhealthy) => route("M 685 388 L 911 388", (800.0, 378.0), "middle", Stack::Up),
        (Unhealthy, Degraded) => {
            route("M 915 412 L 689 412", (800.0, 434.0), "middle", Stack::Down)
        }
        (Unhealthy, Healthy) => route(
            "M 1000 428 C 1000 610, 200 610, 200 432",
            (600.0, 588.0),
            "middle",
            Stack::Down,
        ),
        _ => None,
    }
}

/// Where the loop of a state that stays goes: an SVG path and its label.
fn self_loop(state: State) -> Route {
    let (x, y) = centre(state);
    // A loop on the outer side of the box: left for HEALTHY, right for UNHEALTHY, under the
    // others (above is where UNKNOWN's arrows arrive).
    let (path, label, anchor) = match state {
        State::Healthy => (
            format!(
                "M {} {} C {} {}, {} {}, {} {}",
                x - HALF_W,
                y - 12.0,
                x - HALF_W - 55.0,
                y - 40.0,
                x - HALF_W - 55.0,
                y + 40.0,
                x - HALF_W - 4.0,
                y + 14.0
            ),
            (x - HALF_W - 50.0, y + 5.0),
            "end",
        ),
        State::Unhealthy => (
            format!(
                "M {} {} C {} {}, {} {}, {} {}",
                x + HALF_W,
                y - 12.0,
                x + HALF_W + 55.0,
                y - 40.0,
                x + HALF_W + 55.0,
                y + 40.0,
                x + HALF_W + 4.0,
                y + 14.0
            ),
            (x + HALF_W + 50.0, y + 5.0),
            "start",
        ),
        State::Unknown | State::Degraded => (
            format!(
                "M {} {} C {} {}, {} {}, {} {}",
                x - 14.0,
                y + HALF_H,
                x - 40.0,
                y + HALF_H + 55.0,
                x + 40.0,
                y + HALF_H + 55.0,
                x + 16.0,
                y + HALF_H + 4.0
            ),
            (x + 38.0, y + HALF_H + 44.0),
            "start",
        ),
    };
    Route {
        path: Cow::Owned(path),
        label,
        anchor,
        stack: Stack::Down,
    }
}

/// One arrow: from, to, and the (outcome, condition) of each cell that takes it.
#[derive(Debug, Clone, PartialEq)]
struct Edge {
    from: State,
    to: State,
    causes: Vec<(Outcome, String)>,
}

/// The arrows of `table`, one per pair of states, in the order of the table.
fn edges(table: &[Rule]) -> Vec<Edge> {
    let mut edges: Vec<Edge> = Vec::new();
    for rule in table {
        let last = rule.to.len().saturating_sub(1);
        for (index, &to) in rule.to.iter().enumerate() {
            if to == rule.from {
                continue;
            }
            let when = rule.when.trim();
            // "fails reach unhealthy" is a threshold: "once" it is reached, the arrow is taken;
            // an earlier target of the same cell is where the monitor goes "until" then.
            let threshold = when.contains(" reach ");
            let condition = if rule.to.len() > 1 && index < last && threshold {
                format!("until {when}")
            } else if rule.to.len() > 1 && threshold {
                format!("once {when}")
            } else if when == rule.on.as_str() {
                String::new()
            } else {
                when.to_owned()
            };
            match edges
                .iter_mut()
                .find(|edge| edge.from == rule.from && edge.to == to)
            {
                Some(edge) => edge.causes.push((rule.on, condition)),
                None => edges.push(Edge {
                    from: rule.from,
                    to,
                    causes: vec![(rule.on, condition)],
                }),
            }
        }
    }
    edges
}

/// The states that stay put on an outcome whatever the counters, with those outcomes.
fn loops(table: &[Rule]) -> Vec<(State, Vec<Outcome>)> {
    let mut loops: Vec<(State, Vec<Outcome>)> = Vec::new();
    for rule in table.iter().filter(|rule| rule.to == [rule.from]) {
        match loops.iter_mut().find(|(state, _)| *state == rule.from) {
            Some((_, outcomes)) => outcomes.push(rule.on),
            None => loops.push((rule.from, vec![rule.on])),
        }
    }
    loops
}

/// Escapes text for SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Splits a long condition at its commas, so a label stays narrow.
fn wrap(condition: &str) -> Vec<String> {
    if condition.chars().count() <= 26 {
        return vec![condition.to_owned()];
    }
    let parts: Vec<&str> = condition.split(", ").collect();
    let last = parts.len() - 1;
    parts
        .iter()
        .enumerate()
        .map(|(index, part)| {
            if index < last {
                format!("{part},")
            } else {
                (*part).to_owned()
            }
        })
        .collect()
}

/// A piece of a label line: text, colour, bold.
type Span = (String, &'static str, bool);

/// A label, line by line.
type Lines = Vec<Vec<Span>>;

/// An arrow's label: the outcomes that take it (those without a condition on one line, `warn or
/// fail`), each condition on lines of its own under its outcome.
fn edge_lines(edge: &Edge) -> Lines {
    let mut lines = Lines::new();
    let mut bare: Vec<Span> = Vec::new();
    let flush = |bare: &mut Vec<Span>, lines: &mut Lines| {
        if !bare.is_empty() {
            lines.push(std::mem::take(bare));
        }
    };
    for (outcome, condition) in &edge.causes {
        let word = (outcome.as_str().to_owned(), outcome_colour(*outcome), true);
        if condition.is_empty() {
            if !bare.is_empty() {
                bare.push((" or ".to_owned(), MUTED, false));
            }
            bare.push(word);
            continue;
        }
        flush(&mut bare, &mut lines);
        lines.push(vec![word]);
        for part in wrap(condition) {
            lines.push(vec![(part, MUTED, false)]);
        }
    }
    flush(&mut bare, &mut lines);
    lines
}

fn write_label(svg: &mut String, route: &Route, lines: &Lines) {
    let (x, y) = route.label;
    let first = match route.stack {
        Stack::Up => y - LINE * (lines.len() as f64 - 1.0),
        Stack::Down => y,
    };
    for (index, spans) in lines.iter().enumerate() {
        let _ = write!(
            svg,
            // `xml:space`: keep the spaces at the edges of a `tspan` (" or ").
            r#"  <text x="{x}" y="{}" text-anchor="{}" class="label" xml:space="preserve">"#,
            first + LINE * index as f64,
            route.anchor,
        );
        for (text, colour, bold) in spans {
            let weight = if *bold { "bold" } else { "normal" };
            let _ = write!(
                svg,
                r#"<tspan fill="{colour}" font-weight="{weight}">{}</tspan>"#,
                escape(text)
            );
        }
        svg.push_str("</text>\n");
    }
}

/// The colour of an arrow: its outcome's, or a neutral one when several outcomes take it.
fn edge_colour(edge: &Edge) -> (&'static str, &'static str) {
    let first = edge.causes[0].0;
    if edge.causes.iter().all(|(outcome, _)| *outcome == first) {
        (outcome_colour(first), first.as_str())
    } else {
        (MUTED, "mixed")
    }
}

/// `img/statemachine.svg`: the transition table [`TABLE`] as a picture.
pub(crate) fn state_machine_svg() -> String {
    render(TABLE)
}

/// Draws `table`. Arrows between two states the layout has no route for are drawn straight,
/// centre to centre (the tests make sure [`TABLE`] needs none).
fn render(table: &[Rule]) -> String {
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="{FONT}">"#
    );
    svg.push_str("  <title>healthchecker: the states of a monitor</title>\n");
    svg.push_str("  <style>\n");
    svg.push_str("    .label { font-size: 13px; paint-order: stroke; stroke: #ffffff; stroke-width: 4px; stroke-linejoin: round; }\n");
    svg.push_str("    .note { font-size: 13px; fill: #5b6473; }\n");
    svg.push_str("  </style>\n");
    svg.push_str("  <defs>\n");
    for (name, colour) in [
        ("pass", outcome_colour(Outcome::Pass)),
        ("warn", outcome_colour(Outcome::Warn)),
        ("fail", outcome_colour(Outcome::Fail)),
        ("mixed", MUTED),
    ] {
        let _ = writeln!(
            svg,
            r#"    <marker id="arrow-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{colour}"/></marker>"#
        );
    }
    svg.push_str("  </defs>\n");
    svg.push_str(r##"  <rect width="100%" height="100%" fill="#ffffff"/>"##);
    svg.push('\n');
    let _ = writeln!(
        svg,
        r#"  <text x="{}" y="52" text-anchor="middle" font-size="24" font-weight="bold" fill="{INK}">The states of a monitor</text>"#,
        WIDTH / 2.0
    );
    let _ = writeln!(
        svg,
        r#"  <text x="{}" y="78" text-anchor="middle" class="note">Each check's outcome (pass, warn or fail) moves the monitor along an arrow; unhealthy and healthy are its thresholds.</text>"#,
        WIDTH / 2.0
    );

    for edge in edges(table) {
        let (colour, marker) = edge_colour(&edge);
        let route = match route(edge.from, edge.to) {
            Some(route) => route,
            None => {
                let (x1, y1) = centre(edge.from);
                let (x2, y2) = centre(edge.to);
                Route {
                    path: Cow::Owned(format!("M {x1} {y1} L {x2} {y2}")),
                    label: ((x1 + x2) / 2.0, (y1 + y2) / 2.0),
                    anchor: "middle",
                    stack: Stack::Up,
                }
            }
        };
        let _ = writeln!(
            svg,
            r#"  <path d="{}" fill="none" stroke="{colour}" stroke-width="2" marker-end="url(#arrow-{marker})"/>"#,
            route.path
        );
        write_label(&mut svg, &route, &edge_lines(&edge));
    }

    for (state, outcomes) in loops(table) {
        let route = self_loop(state);
        let colour = if outcomes.len() == 1 {
            outcome_colour(outcomes[0])
        } else {
            MUTED
        };
        let marker = if outcomes.len() == 1 {
            outcomes[0].as_str()
        } else {
            "mixed"
        };
        let _ = writeln!(
            svg,
            r#"  <path d="{}" fill="none" stroke="{colour}" stroke-width="1.5" marker-end="url(#arrow-{marker})"/>"#,
            route.path
        );
        let words: Vec<&str> = outcomes.iter().map(|outcome| outcome.as_str()).collect();
        let lines = vec![vec![(words.join(", "), colour, true)]];
        write_label(&mut svg, &route, &lines);
    }

    for state in State::ALL {
        let (x, y) = centre(state);
        let (fill, stroke) = state_colours(state);
        let _ = writeln!(
            svg,
            r#"  <rect x="{}" y="{}" width="{}" height="{}" rx="10" fill="{fill}" stroke="{stroke}" stroke-width="2"/>"#,
            x - HALF_W,
            y - HALF_H,
            2.0 * HALF_W,
            2.0 * HALF_H
        );
        let _ = writeln!(
            svg,
            r#"  <text x="{x}" y="{}" text-anchor="middle" font-size="16" font-weight="bold" fill="{INK}">{}</text>"#,
            y + 6.0,
            state.as_str()
        );
    }
    let _ = writeln!(
        svg,
        r#"  <text x="{}" y="{}" text-anchor="middle" font-size="12" fill="{MUTED}">(initial)</text>"#,
        centre(State::Unknown).0,
        centre(State::Unknown).1 - HALF_H - 8.0
    );

    let notes = [
        "Back to HEALTHY from DEGRADED: 1 pass after a blip (not UNHEALTHY since it was last HEALTHY),",
        "healthy passes in a row after a recovery (it was UNHEALTHY). A loop: the state stays on that outcome.",
        "A pass resets the count of fails, a fail the count of passes, a warn both.",
    ];
    for (index, note) in notes.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"  <text x="{}" y="{}" text-anchor="middle" class="note">{}</text>"#,
            WIDTH / 2.0,
            HEIGHT - 78.0 + 20.0 * index as f64,
            escape(note)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_arrow_of_the_table_has_a_route_and_a_label() {
        let svg = state_machine_svg();
        let edges = edges(TABLE);
        for rule in TABLE {
            for &to in rule.to.iter().filter(|&&to| to != rule.from) {
                let edge = edges
                    .iter()
                    .find(|edge| edge.from == rule.from && edge.to == to)
                    .expect("an arrow for every leaving cell");
                assert!(edge.causes.iter().any(|(on, _)| *on == rule.on));
                let route = route(rule.from, to)
                    .unwrap_or_else(|| panic!("no hand route from {} to {to}", rule.from));
                assert!(svg.contains(route.path.as_ref()));
            }
            for part in wrap(rule.when) {
                assert!(svg.contains(&escape(&part)), "label {part:?} missing");
            }
        }
    }

    #[test]
    fn conditions_read_as_once_and_until() {
        let edges = edges(TABLE);
        let find = |from, to| {
            edges
                .iter()
                .find(|edge| edge.from == from && edge.to == to)
                .expect("edge")
                .causes
                .clone()
        };
        assert_eq!(
            find(State::Unhealthy, State::Healthy),
            [(Outcome::Pass, "once passes reach healthy".to_owned())]
        );
        assert_eq!(
            find(State::Unhealthy, State::Degraded),
            [
                (Outcome::Pass, "until passes reach healthy".to_owned()),
                (Outcome::Warn, String::new())
            ]
        );
        assert_eq!(
            find(State::Healthy, State::Degraded),
            [
                (Outcome::Warn, String::new()),
                (Outcome::Fail, String::new())
            ]
        );
        assert_eq!(
            loops(TABLE),
            [
                (State::Healthy, vec![Outcome::Pass]),
                (State::Degraded, vec![Outcome::Warn]),
                (State::Unhealthy, vec![Outcome::Fail]),
            ]
        );
    }

    #[test]
    fn the_picture_is_well_formed_enough() {
        let svg = state_machine_svg();
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        for state in State::ALL {
            assert!(svg.contains(&format!(">{}</text>", state.as_str())));
        }
        assert_eq!(svg, state_machine_svg(), "deterministic");
    }
}
