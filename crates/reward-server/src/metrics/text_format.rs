//! The Prometheus text exposition format 0.0.4, made from the OpenMetrics text prometheus-client
//! writes (it writes nothing else).
//!
//! The two formats share their sample lines; what differs is around them. In OpenMetrics a family
//! is named without its suffixes (`# TYPE reward_deliveries counter` over
//! `reward_deliveries_total`), while classic parsers (`promtool`, Prometheus' text parser) take
//! HELP and TYPE to name the sample itself, and mis-type every counter otherwise. OpenMetrics also
//! has `# UNIT`, `_created` samples, exemplars, timestamps in seconds, the `info` and `stateset`
//! types and a closing `# EOF`; the classic format has none of them (timestamps are milliseconds).
//! HELP text escapes `\\` and `\n` only in the classic format (OpenMetrics also `\"`); label values
//! escape the same way in both, so label sets pass through verbatim.

use std::fmt::Write as _;

/// The content type of the classic text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The family whose samples follow, as its TYPE line named it.
struct Family<'a> {
    name: &'a str,
    kind: &'a str,
}

/// Rewrites an OpenMetrics exposition as the classic text format. Lines it cannot read (none that
/// prometheus-client writes) are kept as they are.
pub fn from_openmetrics(openmetrics: &str) -> String {
    let mut text = String::with_capacity(openmetrics.len());
    // OpenMetrics puts HELP before TYPE, and only TYPE says what the classic name is.
    let mut pending_help: Option<(&str, &str)> = None;
    let mut family: Option<Family> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" {
            break;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            flush_help(&mut text, pending_help.take());
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            pending_help = Some((name, help));
            family = None;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (classic_name, classic_kind) = classic_family(name, kind);
            match pending_help.take() {
                Some((help_name, help)) if help_name == name => {
                    write_help(&mut text, &classic_name, help);
                }
                other => flush_help(&mut text, other),
            }
            let _ = writeln!(text, "# TYPE {classic_name} {classic_kind}");
            family = Some(Family { name, kind });
        } else if line.starts_with('#') || line.is_empty() {
            // `# UNIT`, and anything else the classic format has no place for.
        } else {
            flush_help(&mut text, pending_help.take());
            if let Some(sample) = classic_sample(line, family.as_ref()) {
                text.push_str(&sample);
                text.push('\n');
            }
        }
    }
    flush_help(&mut text, pending_help);
    text
}

/// A HELP whose TYPE never came: its family is untyped, named as it was.
fn flush_help(text: &mut String, help: Option<(&str, &str)>) {
    if let Some((name, help)) = help {
        write_help(text, name, help);
    }
}

fn write_help(text: &mut String, name: &str, openmetrics_help: &str) {
    let _ = writeln!(text, "# HELP {name} {}", classic_help(openmetrics_help));
}

/// The classic name and type of an OpenMetrics family.
fn classic_family(name: &str, kind: &str) -> (String, &'static str) {
    match kind {
        "counter" => (format!("{name}_total"), "counter"),
        "info" => (format!("{name}_info"), "gauge"),
        "gauge" | "stateset" => (name.to_owned(), "gauge"),
        "histogram" => (name.to_owned(), "histogram"),
        "summary" => (name.to_owned(), "summary"),
        // `gaugehistogram` (`_gcount`, `_gsum`) and `unknown` have no classic type.
        _ => (name.to_owned(), "untyped"),
    }
}

/// OpenMetrics HELP escapes `\\`, `\n` and `\"`; the classic format only the first two, and a
/// classic parser refuses `\"`.
fn classic_help(openmetrics_help: &str) -> String {
    let mut help = String::with_capacity(openmetrics_help.len());
    let mut chars = openmetrics_help.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('"') => help.push('"'),
                Some('n') => help.push_str("\\n"),
                Some('\\') | None => help.push_str("\\\\"),
                // Not an escape at all (prometheus-client writes HELP as given): a literal
                // backslash.
                Some(other) => {
                    help.push_str("\\\\");
                    help.push(other);
                }
            },
            other => help.push(other),
        }
    }
    help
}

/// A sample line in the classic format: `_created` dropped, exemplar dropped, timestamp in
/// milliseconds. `None` for a line to leave out.
fn classic_sample(line: &str, family: Option<&Family>) -> Option<String> {
    let Some((name_and_labels, rest)) = split_name_and_labels(line) else {
        return Some(line.to_owned());
    };
    let name = name_and_labels
        .split_once('{')
        .map_or(name_and_labels, |(name, _)| name);
    if let Some(family) = family {
        let has_created = matches!(
            family.kind,
            "counter" | "histogram" | "summary" | "gaugehistogram"
        );
        if has_created && name.strip_suffix("_created") == Some(family.name) {
            return None;
        }
    }
    let mut fields = rest.split_whitespace().take_while(|field| *field != "#");
    let Some(value) = fields.next() else {
        return Some(line.to_owned());
    };
    let mut sample = format!("{name_and_labels} {value}");
    if let Some(seconds) = fields.next() {
        if let Some(millis) = timestamp_millis(seconds) {
            let _ = write!(sample, " {millis}");
        }
    }
    Some(sample)
}

/// Splits `name{labels} rest` after the label set, reading quoted label values with their
/// escapes, so that a `}` or ` # ` inside a value ends nothing.
fn split_name_and_labels(line: &str) -> Option<(&str, &str)> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    if !line[name_end..].starts_with('{') {
        return Some((&line[..name_end], &line[name_end..]));
    }
    let mut in_quotes = false;
    let mut escaped = false;
    for (offset, c) in line[name_end..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => {
                let end = name_end + offset + 1;
                return Some((&line[..end], &line[end..]));
            }
            _ => {}
        }
    }
    None
}

/// OpenMetrics timestamps are seconds (a float); classic ones are integer milliseconds.
fn timestamp_millis(seconds: &str) -> Option<i64> {
    let seconds: f64 = seconds.parse().ok()?;
    let millis = (seconds * 1000.0).round();
    // In range, the cast is exact; out of it (or NaN) there is no timestamp to give.
    (millis.is_finite() && millis.abs() < 9.0e15).then_some(millis as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_described_under_their_sample_name() {
        let openmetrics = "# HELP reward_deliveries Deliveries.\n\
                           # TYPE reward_deliveries counter\n\
                           reward_deliveries_total{outcome=\"succeeded\"} 3\n\
                           reward_deliveries_total{outcome=\"failed\"} 1\n\
                           # EOF\n";
        assert_eq!(
            from_openmetrics(openmetrics),
            "# HELP reward_deliveries_total Deliveries.\n\
             # TYPE reward_deliveries_total counter\n\
             reward_deliveries_total{outcome=\"succeeded\"} 3\n\
             reward_deliveries_total{outcome=\"failed\"} 1\n"
        );
    }

    #[test]
    fn gauges_and_histograms_keep_their_names_and_samples() {
        let openmetrics = "# HELP q Pending.\n\
                           # TYPE q gauge\n\
                           q 7\n\
                           # HELP d Durations.\n\
                           # TYPE d histogram\n\
                           d_sum 0.5\n\
                           d_count 2\n\
                           d_bucket{le=\"0.1\"} 1\n\
                           d_bucket{le=\"+Inf\"} 2\n\
                           # EOF\n";
        assert_eq!(
            from_openmetrics(openmetrics),
            "# HELP q Pending.\n\
             # TYPE q gauge\n\
             q 7\n\
             # HELP d Durations.\n\
             # TYPE d histogram\n\
             d_sum 0.5\n\
             d_count 2\n\
             d_bucket{le=\"0.1\"} 1\n\
             d_bucket{le=\"+Inf\"} 2\n"
        );
    }

    #[test]
    fn info_becomes_a_gauge_named_as_its_sample() {
        let openmetrics = "# HELP reward_build Build.\n\
                           # TYPE reward_build info\n\
                           reward_build_info{version=\"1.2.3\"} 1\n\
                           # EOF\n";
        assert_eq!(
            from_openmetrics(openmetrics),
            "# HELP reward_build_info Build.\n\
             # TYPE reward_build_info gauge\n\
             reward_build_info{version=\"1.2.3\"} 1\n"
        );
    }

    #[test]
    fn units_created_samples_exemplars_and_eof_are_left_out() {
        let openmetrics = "# HELP t_seconds Time.\n\
                           # TYPE t_seconds counter\n\
                           # UNIT t_seconds seconds\n\
                           t_seconds_total 2.5 # {trace_id=\"a # b}\"} 1.0 1700000000.5\n\
                           t_seconds_created 1700000000.25\n\
                           # HELP h Hist.\n\
                           # TYPE h histogram\n\
                           h_bucket{le=\"+Inf\"} 1 # {id=\"x\"} 0.3\n\
                           h_created 1700000000\n\
                           # EOF\n\
                           after 1\n";
        assert_eq!(
            from_openmetrics(openmetrics),
            "# HELP t_seconds_total Time.\n\
             # TYPE t_seconds_total counter\n\
             t_seconds_total 2.5\n\
             # HELP h Hist.\n\
             # TYPE h histogram\n\
             h_bucket{le=\"+Inf\"} 1\n"
        );
    }

    #[test]
    fn a_gauge_may_end_in_created() {
        let openmetrics = "# TYPE job_created gauge\njob_created 5\n# EOF\n";
        assert_eq!(
            from_openmetrics(openmetrics),
            "# TYPE job_created gauge\njob_created 5\n"
        );
    }

    #[test]
    fn timestamps_become_milliseconds() {
        let openmetrics = "# TYPE g gauge\ng 1 1700000000.123\ng{a=\"b\"} 2 17\n# EOF\n";
        assert_eq!(
            from_openmetrics(openmetrics),
            "# TYPE g gauge\ng 1 1700000000123\ng{a=\"b\"} 2 17000\n"
        );
    }

    #[test]
    fn label_values_pass_through_with_their_escapes() {
        let line = r#"c_total{route="/a}\"b # {c}",path="x\\y\nz"} 4"#;
        let openmetrics = format!("# TYPE c counter\n{line}\n# EOF\n");
        assert_eq!(
            from_openmetrics(&openmetrics),
            format!("# TYPE c_total counter\n{line}\n")
        );
    }

    #[test]
    fn help_is_escaped_as_the_classic_format_wants() {
        let openmetrics = "# HELP a Say \\\"hi\\\" on\\nTwo lines, a \\\\ and a raw \\d.\n\
                           # TYPE a gauge\n\
                           a 1\n";
        assert_eq!(
            from_openmetrics(openmetrics),
            "# HELP a Say \"hi\" on\\nTwo lines, a \\\\ and a raw \\\\d.\n\
             # TYPE a gauge\n\
             a 1\n"
        );
    }

    #[test]
    fn other_types_are_mapped_to_the_classic_ones() {
        let openmetrics = "# TYPE s stateset\ns{s=\"a\"} 1\n\
                           # TYPE u unknown\nu 1\n\
                           # TYPE y summary\ny_count 1\ny_sum 2\ny_created 3\n\
                           # EOF\n";
        assert_eq!(
            from_openmetrics(openmetrics),
            "# TYPE s gauge\ns{s=\"a\"} 1\n\
             # TYPE u untyped\nu 1\n\
             # TYPE y summary\ny_count 1\ny_sum 2\n"
        );
    }

    #[test]
    fn a_help_without_a_type_stays_as_it_was() {
        assert_eq!(
            from_openmetrics("# HELP x Lonely.\nx 1\n# HELP y Last.\n# EOF\n"),
            "# HELP x Lonely.\nx 1\n# HELP y Last.\n"
        );
    }

    #[test]
    fn unreadable_lines_are_kept() {
        assert_eq!(
            from_openmetrics("# TYPE z gauge\nz{a=\"open 1\nlonely\n"),
            "# TYPE z gauge\nz{a=\"open 1\nlonely\n"
        );
    }

    #[test]
    fn the_real_registry_converts_without_openmetrics_left() {
        let metrics = super::super::Metrics::new();
        metrics.attempt("succeeded", Some(200), std::time::Duration::from_millis(5));
        let openmetrics = metrics.encode_openmetrics();
        let text = from_openmetrics(&openmetrics);
        assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
        assert!(!text.contains("# EOF"), "{text}");
        assert!(!text.contains("_created"), "{text}");
        assert!(!text.contains("# UNIT"), "{text}");
        assert!(
            text.contains("# TYPE reward_deliveries_total counter\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE reward_build_info gauge\n"), "{text}");
        // Every sample line is preceded by a TYPE naming it or the family it belongs to.
        let mut typed = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed = rest.split(' ').next().unwrap_or_default().to_owned();
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .unwrap_or(name);
                assert!(name == typed || base == typed, "{name} under {typed}");
            }
        }
    }
}
