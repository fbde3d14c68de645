//! A webhook's health as an SVG chart drawn on the server (issue 16): per bucket of time, the
//! attempts that succeeded and failed as stacked bars against the left axis, and the p99 latency
//! as a line against the right one. Pure: buckets in, SVG text out, so pages need no script and
//! the drawing is unit-tested.
//!
//! The SVG goes inline into a page, so it is styled by presentation attributes only (the
//! dashboard's CSP refuses inline styles); its colours are the stylesheet's (`assets/app.css`).
//! Every bar carries a `<title>` with its numbers, and the chart a `<title>`/`<desc>` summary,
//! so a screen reader gets what the picture shows. Times are UTC.
//!
//! It draws the store's buckets as `GET /v1/webhooks/{id}/stats` returns them
//! ([`HealthBucket`] is the store's `StatsBucket`).

use std::fmt::Write;

use reward_core::time::Timestamp;

/// One bucket of a webhook's attempts: when it starts (an hour or a day, see [`Period`]), its
/// attempts, succeeded and failed, and latency percentiles (`None` without attempts).
pub use reward_store::records::StatsBucket as HealthBucket;

/// What the buckets span: it decides how their starts are labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// 24 hourly buckets.
    Day,
    /// 7 daily buckets.
    Week,
}

impl Period {
    fn bucket_word(self) -> &'static str {
        match self {
            Period::Day => "hourly",
            Period::Week => "daily",
        }
    }

    /// A bucket's start as its axis label: `15:00` for hours, `12-14` for days.
    fn label(self, start: Timestamp) -> String {
        let iso = start.to_rfc3339();
        let range = match self {
            Period::Day => 11..16,
            Period::Week => 5..10,
        };
        iso.get(range).unwrap_or(&iso).to_owned()
    }

    /// Label every n-th bucket, so labels never overlap.
    fn label_every(self, buckets: usize) -> usize {
        (buckets / 8).max(1)
    }
}

// The stylesheet's colours (`assets/app.css`, `:root`).
const GOOD: &str = "#05603a";
const BAD: &str = "#b42318";
const ACCENT: &str = "#4338ca";
const TEXT: &str = "#18202c";
const MUTED: &str = "#586173";
const BORDER: &str = "#e2e5ea";
const SURFACE: &str = "#ffffff";
const FONT: &str = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif";

// The drawing's geometry, in SVG user units.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 280.0;
const PLOT_LEFT: f64 = 56.0;
const PLOT_RIGHT: f64 = 656.0;
const PLOT_TOP: f64 = 48.0;
const PLOT_BOTTOM: f64 = 232.0;
/// The share of a bucket's slot its bar fills.
const BAR_SHARE: f64 = 0.7;

/// The smallest of 1, 2, 5 × 10ⁿ at or above `value` (at least 1): round axis maxima.
fn nice_ceiling(value: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for factor in [1, 2, 5] {
            let candidate = step.saturating_mul(factor);
            if candidate >= value || candidate == u64::MAX {
                return candidate;
            }
        }
        step = step.saturating_mul(10);
    }
}

/// Text made safe for XML content and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// The height in the plot of `value` on an axis whose top is `max`.
fn scaled(value: u64, max: u64) -> f64 {
    (PLOT_BOTTOM - PLOT_TOP) * value as f64 / max.max(1) as f64
}

fn plural(count: u64, word: &str) -> String {
    if count == 1 {
        format!("1 {word}")
    } else {
        format!("{count} {word}s")
    }
}

/// The chart's summary for its `<desc>`: what a reader would take from the picture.
fn summary(period: Period, buckets: &[HealthBucket]) -> String {
    let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
        return "No attempts in this period.".into();
    };
    let attempts: u64 = buckets.iter().map(|bucket| bucket.attempts).sum();
    let succeeded: u64 = buckets.iter().map(|bucket| bucket.succeeded).sum();
    let failed: u64 = buckets.iter().map(|bucket| bucket.failed).sum();
    let span = format!(
        "{} {} buckets from {} to {} UTC",
        buckets.len(),
        period.bucket_word(),
        period.label(first.start),
        period.label(last.start)
    );
    if attempts == 0 {
        return format!("{span}: no attempts in this period.");
    }
    let worst = buckets.iter().filter_map(|bucket| bucket.p99_ms).max();
    let latency = worst.map_or_else(String::new, |ms| format!("; highest p99 latency {ms} ms"));
    format!(
        "{span}: {}, {succeeded} succeeded, {failed} failed{latency}.",
        plural(attempts, "attempt")
    )
}

/// Draws the chart. `id` prefixes the element ids the accessible name points at (unique on
/// the page); `title` is shown above the chart and is its accessible name.
pub fn draw(id: &str, title: &str, period: Period, buckets: &[HealthBucket]) -> String {
    let id = escape(id);
    let title = escape(title);
    let mut svg = String::with_capacity(4096);
    // `write!` to a String cannot fail.
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id}-title {id}-desc" font-family="{FONT}" font-size="12">"#
    );
    let _ = write!(
        svg,
        r#"<title id="{id}-title">{title}</title><desc id="{id}-desc">{}</desc>"#,
        escape(&summary(period, buckets))
    );
    let _ = write!(
        svg,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="{SURFACE}"/><text x="{PLOT_LEFT}" y="22" fill="{TEXT}" font-size="15" font-weight="600">{title}</text>"#
    );
    legend(&mut svg);

    // An axis without data has no scale to label: `None`.
    let most_attempts = buckets
        .iter()
        .map(|bucket| bucket.succeeded + bucket.failed)
        .max()
        .filter(|most| *most > 0);
    let most_latency = buckets.iter().filter_map(|bucket| bucket.p99_ms).max();
    let max_attempts = nice_ceiling(most_attempts.unwrap_or(0));
    let max_latency = nice_ceiling(most_latency.unwrap_or(0));
    axes(
        &mut svg,
        most_attempts.map(|_| max_attempts),
        most_latency.map(|_| max_latency),
    );

    if buckets.iter().all(|bucket| bucket.attempts == 0) {
        let middle_x = (PLOT_LEFT + PLOT_RIGHT) / 2.0;
        let middle_y = (PLOT_TOP + PLOT_BOTTOM) / 2.0;
        let _ = write!(
            svg,
            r#"<text class="empty-note" x="{middle_x}" y="{middle_y}" text-anchor="middle" fill="{MUTED}" font-size="14">No attempts in this period.</text>"#
        );
    }
    bars(&mut svg, period, buckets, max_attempts);
    latency_line(&mut svg, buckets, max_latency);
    svg.push_str("</svg>");
    svg
}

fn legend(svg: &mut String) {
    let items = [
        (GOOD, "Succeeded", false),
        (BAD, "Failed", false),
        (ACCENT, "p99 latency", true),
    ];
    let mut x = PLOT_RIGHT - 280.0;
    for (colour, label, is_line) in items {
        if is_line {
            let _ = write!(
                svg,
                r#"<line x1="{x}" y1="17" x2="{}" y2="17" stroke="{colour}" stroke-width="2"/>"#,
                x + 12.0
            );
        } else {
            let _ = write!(
                svg,
                r#"<rect x="{x}" y="11" width="12" height="12" rx="2" fill="{colour}"/>"#
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{}" y="21" fill="{MUTED}">{label}</text>"#,
            x + 17.0
        );
        x += 88.0;
    }
}

/// Grid lines at 0, half and the top, with both axes' labels (where the axis has data; the
/// half only when it is a whole number) and titles.
fn axes(svg: &mut String, max_attempts: Option<u64>, max_latency: Option<u64>) {
    let label_at = |max: Option<u64>, share: u64| {
        max.filter(|max| share != 1 || max % 2 == 0)
            .map(|max| (max * share / 2).to_string())
    };
    // Shares of the axis in halves: 0, 1 (the middle), 2 (the top).
    for share in [0u64, 1, 2] {
        let y = PLOT_BOTTOM - (PLOT_BOTTOM - PLOT_TOP) * share as f64 / 2.0;
        let _ = write!(
            svg,
            r#"<line x1="{PLOT_LEFT}" y1="{y}" x2="{PLOT_RIGHT}" y2="{y}" stroke="{BORDER}"/>"#
        );
        if let Some(attempts) = label_at(max_attempts, share) {
            let _ = write!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="end" fill="{MUTED}">{attempts}</text>"#,
                PLOT_LEFT - 8.0,
                y + 4.0
            );
        }
        if let Some(latency) = label_at(max_latency, share) {
            let _ = write!(
                svg,
                r#"<text x="{}" y="{}" fill="{MUTED}">{latency}</text>"#,
                PLOT_RIGHT + 8.0,
                y + 4.0
            );
        }
    }
    let middle = (PLOT_TOP + PLOT_BOTTOM) / 2.0;
    let _ = write!(
        svg,
        r#"<text x="14" y="{middle}" transform="rotate(-90 14 {middle})" text-anchor="middle" fill="{MUTED}">Attempts</text>"#
    );
    let right = WIDTH - 12.0;
    let _ = write!(
        svg,
        r#"<text x="{right}" y="{middle}" transform="rotate(90 {right} {middle})" text-anchor="middle" fill="{MUTED}">p99 latency (ms)</text>"#
    );
}

fn slot_width(buckets: usize) -> f64 {
    (PLOT_RIGHT - PLOT_LEFT) / buckets.max(1) as f64
}

fn slot_centre(index: usize, buckets: usize) -> f64 {
    PLOT_LEFT + slot_width(buckets) * (index as f64 + 0.5)
}

/// A stacked bar per bucket (succeeded below, failed above), each with its numbers as a
/// `<title>`, and the time labels under them.
fn bars(svg: &mut String, period: Period, buckets: &[HealthBucket], max_attempts: u64) {
    let width = slot_width(buckets.len()) * BAR_SHARE;
    let every = period.label_every(buckets.len());
    for (index, bucket) in buckets.iter().enumerate() {
        let centre = slot_centre(index, buckets.len());
        let x = centre - width / 2.0;
        let label = period.label(bucket.start);
        let succeeded = scaled(bucket.succeeded, max_attempts);
        let failed = scaled(bucket.failed, max_attempts);
        let latency = bucket
            .p99_ms
            .map_or_else(String::new, |ms| format!(", p99 {ms} ms"));
        let _ = write!(
            svg,
            r#"<g class="bucket"><title>{label} UTC: {}, {} succeeded, {} failed{latency}</title>"#,
            plural(bucket.attempts, "attempt"),
            bucket.succeeded,
            bucket.failed
        );
        if bucket.succeeded > 0 {
            let _ = write!(
                svg,
                r#"<rect class="succeeded" x="{x:.2}" y="{:.2}" width="{width:.2}" height="{succeeded:.2}" fill="{GOOD}"/>"#,
                PLOT_BOTTOM - succeeded
            );
        }
        if bucket.failed > 0 {
            let _ = write!(
                svg,
                r#"<rect class="failed" x="{x:.2}" y="{:.2}" width="{width:.2}" height="{failed:.2}" fill="{BAD}"/>"#,
                PLOT_BOTTOM - succeeded - failed
            );
        }
        svg.push_str("</g>");
        if index % every == 0 {
            let _ = write!(
                svg,
                r#"<text x="{centre:.2}" y="{}" text-anchor="middle" fill="{MUTED}">{label}</text>"#,
                PLOT_BOTTOM + 18.0
            );
        }
    }
}

/// The p99 line through the buckets that have one; a bucket without attempts breaks it.
fn latency_line(svg: &mut String, buckets: &[HealthBucket], max_latency: u64) {
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (index, bucket) in buckets.iter().enumerate() {
        match bucket.p99_ms {
            Some(ms) => {
                let point = (
                    slot_centre(index, buckets.len()),
                    PLOT_BOTTOM - scaled(ms, max_latency),
                );
                if let Some(run) = runs.last_mut() {
                    run.push(point);
                }
            }
            None => runs.push(Vec::new()),
        }
    }
    for run in runs.iter().filter(|run| !run.is_empty()) {
        let points: Vec<String> = run.iter().map(|(x, y)| format!("{x:.2},{y:.2}")).collect();
        let _ = write!(
            svg,
            r#"<polyline class="p99" points="{}" fill="none" stroke="{ACCENT}" stroke-width="2" stroke-linejoin="round"/>"#,
            points.join(" ")
        );
        for (x, y) in run {
            let _ = write!(
                svg,
                r#"<circle cx="{x:.2}" cy="{y:.2}" r="2.5" fill="{ACCENT}"/>"#
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: i64 = 3_600_000;

    fn bucket(hour: i64, succeeded: u64, failed: u64, p99_ms: Option<u64>) -> HealthBucket {
        HealthBucket {
            start: Timestamp::from_millis(1_733_961_600_000 + hour * HOUR_MS),
            attempts: succeeded + failed,
            succeeded,
            failed,
            p50_ms: p99_ms.map(|ms| ms / 2),
            p99_ms,
        }
    }

    fn day(buckets: &[HealthBucket]) -> String {
        draw("day", "Last 24 hours", Period::Day, buckets)
    }

    /// The heights of the bars of class `class`, in bucket order.
    fn heights(svg: &str, class: &str) -> Vec<f64> {
        let document = roxmltree::Document::parse(svg).expect("valid XML");
        document
            .descendants()
            .filter(|node| node.has_tag_name("rect") && node.attribute("class") == Some(class))
            .map(|node| {
                node.attribute("height")
                    .and_then(|height| height.parse().ok())
                    .expect("a height")
            })
            .collect()
    }

    #[test]
    fn the_chart_is_valid_svg_with_an_accessible_name() {
        let buckets: Vec<HealthBucket> = (0..24)
            .map(|hour| {
                bucket(
                    hour,
                    10 + hour as u64,
                    hour as u64 % 3,
                    Some(100 + hour as u64),
                )
            })
            .collect();
        let svg = day(&buckets);
        let document = roxmltree::Document::parse(&svg).expect("valid XML");
        let root = document.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://www.w3.org/2000/svg")
        );
        assert_eq!(root.attribute("role"), Some("img"));
        assert_eq!(
            root.attribute("aria-labelledby"),
            Some("day-title day-desc")
        );
        let mut elements = root.children().filter(|node| node.is_element());
        let title = elements.next().expect("title");
        assert_eq!(
            (title.tag_name().name(), title.text()),
            ("title", Some("Last 24 hours"))
        );
        let desc = elements.next().expect("desc");
        assert_eq!(desc.tag_name().name(), "desc");
        let summary = desc.text().expect("summary");
        assert!(
            summary.starts_with("24 hourly buckets from 00:00 to 23:00 UTC: 540 attempts, 516 succeeded, 24 failed;"),
            "{summary}"
        );
        assert!(summary.contains("highest p99 latency 123 ms"), "{summary}");
        assert_eq!(heights(&svg, "succeeded").len(), 24);
        assert!(svg.contains(">Attempts</text>") && svg.contains(">p99 latency (ms)</text>"));
    }

    #[test]
    fn bars_scale_with_their_counts_and_stack() {
        let svg = day(&[
            bucket(0, 50, 0, Some(80)),
            bucket(1, 25, 25, Some(40)),
            bucket(2, 10, 0, None),
        ]);
        let succeeded = heights(&svg, "succeeded");
        let failed = heights(&svg, "failed");
        let plot = PLOT_BOTTOM - PLOT_TOP;
        // The axis tops at 50: a bucket of 50 fills the plot, half of it half.
        assert_eq!(succeeded, [plot, plot / 2.0, plot / 5.0]);
        assert_eq!(failed, [plot / 2.0]);
        // The failed part sits on the succeeded one: both end where the other starts.
        let document = roxmltree::Document::parse(&svg).expect("valid XML");
        let second: Vec<(f64, f64)> = document
            .descendants()
            .filter(|node| node.has_tag_name("g"))
            .nth(1)
            .expect("the second bucket")
            .children()
            .filter(|node| node.has_tag_name("rect"))
            .map(|rect| {
                let number = |name| rect.attribute(name).and_then(|v| v.parse().ok());
                (number("y").expect("y"), number("height").expect("height"))
            })
            .collect();
        let [(succeeded_y, _), (failed_y, failed_height)] = second[..] else {
            panic!("two rects in {second:?}")
        };
        assert!(
            (failed_y + failed_height - succeeded_y).abs() < 0.01,
            "{second:?}"
        );
        // One line of p99, broken where a bucket has none: two points, one run.
        let lines: Vec<_> = document
            .descendants()
            .filter(|node| node.attribute("class") == Some("p99"))
            .collect();
        assert_eq!(lines.len(), 1);
        assert_eq!(
            lines[0]
                .attribute("points")
                .map(|points| points.split(' ').count()),
            Some(2)
        );
    }

    #[test]
    fn an_empty_period_draws_an_empty_chart_with_a_note() {
        for buckets in [
            Vec::new(),
            (0..7).map(|day| bucket(day * 24, 0, 0, None)).collect(),
        ] {
            let svg = draw("week", "Last 7 days", Period::Week, &buckets);
            roxmltree::Document::parse(&svg).expect("valid XML");
            assert!(svg.contains("No attempts in this period."), "{svg}");
            assert!(heights(&svg, "succeeded").is_empty());
            assert!(heights(&svg, "failed").is_empty());
            assert!(!svg.contains("class=\"p99\""));
            assert!(!svg.contains(">0</text>"), "no scale without data");
        }
    }

    #[test]
    fn days_are_labelled_by_date_and_text_is_escaped() {
        let svg = draw(
            "a\"b",
            "<Orders & co>",
            Period::Week,
            &[bucket(0, 1, 0, Some(5))],
        );
        let document = roxmltree::Document::parse(&svg).expect("valid XML");
        let title = document
            .descendants()
            .find(|node| node.has_tag_name("title"))
            .and_then(|node| node.text());
        assert_eq!(title, Some("<Orders & co>"));
        assert!(svg.contains(">12-12</text>"), "{svg}");
        assert!(svg.contains("12-12 UTC: 1 attempt, 1 succeeded, 0 failed, p99 5 ms"));
    }

    #[test]
    fn the_middle_of_an_axis_is_labelled_only_when_whole() {
        let svg = day(&[bucket(0, 5, 0, Some(20))]);
        // Attempts top at 5 (no middle label), latency at 20 (10 in the middle).
        for label in [">0</text>", ">5</text>", ">20</text>", ">10</text>"] {
            assert!(svg.contains(label), "{label}");
        }
        assert!(!svg.contains(">2</text>"));
    }

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(51), 100);
        assert_eq!(nice_ceiling(120), 200);
        assert_eq!(nice_ceiling(u64::MAX), u64::MAX);
    }
}
