//! The overview's charts, drawn by the server as inline SVG (no script, no image request):
//! checkouts per hour by outcome, the authorisation rate, MSP latency p50/p99, the webhook
//! success rate and the outbox's age, over the last 24 hours, one slot per hour.
//!
//! The SVG holds numbers and the console's own words only, and those are escaped anyway.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::view::escape;

/// One hour of the gateway's own figures.
#[derive(Clone, Debug, Default)]
pub struct Hour {
    pub start: DateTime<Utc>,
    /// Checkouts that reached an outcome in the hour, by outcome.
    pub outcomes: BTreeMap<String, u64>,
    pub auth_attempts: u64,
    pub auth_successes: u64,
    pub msp_p50_ms: Option<f64>,
    pub msp_p99_ms: Option<f64>,
    pub webhook_ok: u64,
    pub webhook_failed: u64,
    pub outbox_age_max_s: Option<u64>,
}

/// A chart and what it says in words (for those who cannot see it, and as its caption).
pub struct Chart {
    pub title: &'static str,
    pub summary: String,
    pub svg: String,
    /// `(colour class, word)` for the legend.
    pub legend: Vec<(&'static str, String)>,
}

const W: f64 = 480.0;
const H: f64 = 200.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

const GREEN: &str = "#1a7f37";
const RED: &str = "#c62828";
const AMBER: &str = "#b26a00";
const GREY: &str = "#8a8f98";
const BLUE: &str = "#1f5fbf";
const PURPLE: &str = "#7b3fb5";

/// The colour of an outcome, and its legend class.
fn outcome_colour(outcome: &str) -> (&'static str, &'static str) {
    match outcome {
        "succeeded" | "partially_refunded" | "refunded" | "requires_capture" => (GREEN, "sw-ok"),
        "failed" | "charged_back" => (RED, "sw-bad"),
        "canceled" | "expired" => (GREY, "sw-muted"),
        _ => (AMBER, "sw-warn"),
    }
}

/// Outcomes grouped as the chart draws them, in its order.
const GROUPS: [(&str, &str); 4] = [
    ("Succeeded", "sw-ok"),
    ("Failed", "sw-bad"),
    ("Canceled or expired", "sw-muted"),
    ("Other", "sw-warn"),
];

fn group_of(outcome: &str) -> usize {
    match outcome_colour(outcome).1 {
        "sw-ok" => 0,
        "sw-bad" => 1,
        "sw-muted" => 2,
        _ => 3,
    }
}

fn group_colour(g: usize) -> &'static str {
    [GREEN, RED, GREY, AMBER][g.min(3)]
}

fn frame(label: &str, max_label: &str, hours: &[Hour]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg viewBox="0 0 {W} {H}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">"#,
        escape(label)
    );
    let bottom = H - BOTTOM;
    let mid = TOP + (bottom - TOP) / 2.0;
    for y in [TOP, mid] {
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#e3e6ea" stroke-width="1"/>"##,
            W - RIGHT
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="#9aa1ab" stroke-width="1"/>"##,
        W - RIGHT
    );
    let _ = write!(
        s,
        r##"<text x="{}" y="{}" font-size="14" text-anchor="end" fill="#59606b">{}</text>"##,
        LEFT - 6.0,
        TOP + 4.0,
        escape(max_label)
    );
    let _ = write!(
        s,
        r##"<text x="{}" y="{}" font-size="14" text-anchor="end" fill="#59606b">0</text>"##,
        LEFT - 6.0,
        bottom + 4.0
    );
    if !hours.is_empty() {
        let middle = LEFT + (W - LEFT - RIGHT) / 2.0;
        for (x, anchor, text) in [
            (LEFT, "start", "24 h ago"),
            (middle, "middle", "12 h ago"),
            (W - RIGHT, "end", "now"),
        ] {
            let _ = write!(
                s,
                r##"<text x="{x:.1}" y="{}" font-size="14" text-anchor="{anchor}" fill="#59606b">{text}</text>"##,
                H - 6.0
            );
        }
    }
    s
}

/// `90 s`, `20 min`, `4 h`: a number of seconds as an axis label.
fn duration_label(seconds: f64) -> String {
    if seconds >= 7_200.0 {
        format!("{:.0} h", seconds / 3_600.0)
    } else if seconds >= 120.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{seconds:.0} s")
    }
}

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if v <= m * mag {
            return m * mag;
        }
    }
    10.0 * mag
}

fn y_of(v: f64, max: f64) -> f64 {
    let bottom = H - BOTTOM;
    bottom - (v / max).clamp(0.0, 1.0) * (bottom - TOP)
}

/// A line per series (`None` breaks it), with a dot at every value.
fn lines(hours: &[Hour], series: &[(&str, Vec<Option<f64>>)], max: f64, s: &mut String) {
    let n = hours.len().max(1);
    let slot = (W - LEFT - RIGHT) / n as f64;
    for (colour, values) in series {
        let mut d = String::new();
        let mut pen_down = false;
        for (i, v) in values.iter().enumerate() {
            let x = LEFT + slot * (i as f64 + 0.5);
            match v {
                Some(v) => {
                    let y = y_of(*v, max);
                    let _ = write!(d, "{}{x:.1} {y:.1} ", if pen_down { "L" } else { "M" });
                    let _ = write!(
                        s,
                        r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{colour}"/>"#
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        if !d.is_empty() {
            let _ = write!(
                s,
                r#"<path d="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                d.trim_end()
            );
        }
    }
}

fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

fn total_rate(
    hours: &[Hour],
    part: impl Fn(&Hour) -> u64,
    whole: impl Fn(&Hour) -> u64,
) -> Option<f64> {
    rate(
        hours.iter().map(&part).sum(),
        hours.iter().map(&whole).sum(),
    )
}

fn outcomes_chart(hours: &[Hour]) -> Chart {
    let totals: Vec<[u64; 4]> = hours
        .iter()
        .map(|h| {
            let mut g = [0u64; 4];
            for (k, v) in &h.outcomes {
                g[group_of(k)] += v;
            }
            g
        })
        .collect();
    let peak = totals
        .iter()
        .map(|g| g.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    let max = nice_max(peak as f64);
    let mut s = frame("Checkouts per hour by outcome", &format!("{max}"), hours);
    let n = hours.len().max(1);
    let slot = (W - LEFT - RIGHT) / n as f64;
    for (i, g) in totals.iter().enumerate() {
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let mut base = 0u64;
        for (group, count) in g.iter().enumerate() {
            if *count == 0 {
                continue;
            }
            let y_top = y_of((base + count) as f64, max);
            let y_bottom = y_of(base as f64, max);
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y_top:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {count}</title></rect>"#,
                slot * 0.7,
                (y_bottom - y_top).max(0.5),
                group_colour(group),
                escape(GROUPS[group].0)
            );
            base += count;
        }
    }
    s.push_str("</svg>");
    let sums: Vec<u64> = (0..4).map(|g| totals.iter().map(|t| t[g]).sum()).collect();
    let all: u64 = sums.iter().sum();
    Chart {
        title: "Checkouts per hour",
        summary: format!(
            "{all} checkouts reached an outcome in the last 24 hours: {} succeeded, {} failed, {} canceled or expired, {} other.",
            sums[0], sums[1], sums[2], sums[3]
        ),
        svg: s,
        legend: GROUPS.iter().map(|(w, c)| (*c, (*w).to_owned())).collect(),
    }
}

fn percent_chart(
    title: &'static str,
    hours: &[Hour],
    values: Vec<Option<f64>>,
    summary: String,
    colour: &'static str,
    class: &'static str,
    word: &str,
) -> Chart {
    let mut s = frame(title, "100%", hours);
    lines(hours, &[(colour, values)], 100.0, &mut s);
    s.push_str("</svg>");
    Chart {
        title,
        summary,
        svg: s,
        legend: vec![(class, word.to_owned())],
    }
}

fn latency_chart(hours: &[Hour]) -> Chart {
    let p50: Vec<Option<f64>> = hours.iter().map(|h| h.msp_p50_ms).collect();
    let p99: Vec<Option<f64>> = hours.iter().map(|h| h.msp_p99_ms).collect();
    let peak = p99
        .iter()
        .chain(p50.iter())
        .flatten()
        .fold(0.0f64, |a, b| a.max(*b));
    let max = nice_max(peak);
    let mut s = frame(
        "MultiSafepay latency p50 and p99",
        &format!("{max} ms"),
        hours,
    );
    lines(
        hours,
        &[(BLUE, p50.clone()), (PURPLE, p99.clone())],
        max,
        &mut s,
    );
    s.push_str("</svg>");
    let last = |v: &[Option<f64>]| v.iter().rev().flatten().next().copied();
    let summary = match (last(&p50), last(&p99)) {
        (Some(a), Some(b)) => format!("Latest hour with calls: p50 {a:.0} ms, p99 {b:.0} ms."),
        _ => "No MultiSafepay calls in the last 24 hours.".to_owned(),
    };
    Chart {
        title: "MultiSafepay latency",
        summary,
        svg: s,
        legend: vec![
            ("sw-blue", "p50".to_owned()),
            ("sw-purple", "p99".to_owned()),
        ],
    }
}

fn outbox_chart(hours: &[Hour]) -> Chart {
    let values: Vec<Option<f64>> = hours
        .iter()
        .map(|h| h.outbox_age_max_s.map(|v| v as f64))
        .collect();
    let peak = values.iter().flatten().fold(0.0f64, |a, b| a.max(*b));
    let max = nice_max(peak);
    let mut s = frame(
        "Oldest undelivered event, per hour",
        &duration_label(max),
        hours,
    );
    lines(hours, &[(AMBER, values.clone())], max, &mut s);
    s.push_str("</svg>");
    let summary = match values.iter().rev().flatten().next() {
        Some(v) => format!(
            "Latest: the oldest undelivered event had waited {}.",
            duration_label(*v)
        ),
        None => "No undelivered events were seen in the last 24 hours.".to_owned(),
    };
    Chart {
        title: "Outbox age",
        summary,
        svg: s,
        legend: vec![("sw-warn", "oldest event waiting, seconds".to_owned())],
    }
}

/// Every chart of the overview, from 24 hours (oldest first).
pub fn charts(hours: &[Hour]) -> Vec<Chart> {
    let auth: Vec<Option<f64>> = hours
        .iter()
        .map(|h| rate(h.auth_successes, h.auth_attempts))
        .collect();
    let auth_summary = match total_rate(hours, |h| h.auth_successes, |h| h.auth_attempts) {
        Some(r) => format!(
            "{r:.1}% of {} authorisation attempts succeeded in the last 24 hours.",
            hours.iter().map(|h| h.auth_attempts).sum::<u64>()
        ),
        None => "No authorisation attempts in the last 24 hours.".to_owned(),
    };
    let hooks: Vec<Option<f64>> = hours
        .iter()
        .map(|h| rate(h.webhook_ok, h.webhook_ok + h.webhook_failed))
        .collect();
    let hooks_summary =
        match total_rate(hours, |h| h.webhook_ok, |h| h.webhook_ok + h.webhook_failed) {
            Some(r) => format!(
                "{r:.1}% of {} webhook attempts succeeded in the last 24 hours.",
                hours
                    .iter()
                    .map(|h| h.webhook_ok + h.webhook_failed)
                    .sum::<u64>()
            ),
            None => "No webhook attempts in the last 24 hours.".to_owned(),
        };
    vec![
        outcomes_chart(hours),
        percent_chart(
            "Authorisation rate",
            hours,
            auth,
            auth_summary,
            GREEN,
            "sw-ok",
            "authorised, % of attempts",
        ),
        latency_chart(hours),
        percent_chart(
            "Webhook success rate",
            hours,
            hooks,
            hooks_summary,
            BLUE,
            "sw-blue",
            "delivered, % of attempts",
        ),
        outbox_chart(hours),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> Vec<Hour> {
        let now = Utc::now();
        (0..24)
            .map(|i| Hour {
                start: now - chrono::TimeDelta::hours(24 - i),
                outcomes: BTreeMap::from([
                    ("succeeded".to_owned(), i as u64),
                    ("failed".to_owned(), 1),
                ]),
                auth_attempts: 10,
                auth_successes: 9,
                msp_p50_ms: Some(40.0),
                msp_p99_ms: (i % 3 != 0).then_some(180.0),
                webhook_ok: 5,
                webhook_failed: i as u64 % 2,
                outbox_age_max_s: None,
            })
            .collect()
    }

    #[test]
    fn charts_are_svg_with_a_summary_in_words() {
        let charts = charts(&day());
        assert_eq!(charts.len(), 5);
        for c in &charts {
            assert!(
                c.svg.starts_with("<svg") && c.svg.ends_with("</svg>"),
                "{}",
                c.title
            );
            assert!(
                !c.svg.contains("<script") && !c.svg.contains("href"),
                "{}",
                c.title
            );
            assert!(!c.summary.is_empty());
        }
        assert!(
            charts[0].summary.contains("24 succeeded")
                || charts[0].summary.contains("276 succeeded")
        );
        assert!(charts[1].summary.starts_with("90.0%"));
    }

    #[test]
    fn an_empty_day_draws_empty_charts() {
        let hours: Vec<Hour> = (0..24).map(|_| Hour::default()).collect();
        for c in charts(&hours) {
            assert!(c.svg.ends_with("</svg>"));
        }
    }
}
