//! Which exposition format a scrape gets, from its `Accept` header. The classic text format is
//! the default because every Prometheus tool reads it; OpenMetrics only for a scraper that names
//! it (Prometheus itself does, preferring it).

/// The formats `/metrics` speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text exposition format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the header names `application/openmetrics-text` with a quality no lower
    /// than the best it gives the text format (`text/plain` or a wildcard); otherwise text.
    pub fn from_accept(accept: Option<&str>) -> Self {
        let mut openmetrics = 0.0_f32;
        let mut text = 0.0_f32;
        for range in accept.unwrap_or_default().split(',') {
            let mut parts = range.split(';');
            let media_type = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|parameter| parameter.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, value)| value.trim().parse().unwrap_or(1.0));
            match media_type.as_str() {
                "application/openmetrics-text" => openmetrics = openmetrics.max(quality),
                "text/plain" | "text/*" | "*/*" => text = text.max(quality),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            Self::OpenMetrics
        } else {
            Self::Text
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text => super::text_format::CONTENT_TYPE,
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Format::{self, OpenMetrics, Text};

    #[test]
    fn text_unless_openmetrics_is_asked_for() {
        assert_eq!(Format::from_accept(None), Text);
        assert_eq!(Format::from_accept(Some("")), Text);
        assert_eq!(Format::from_accept(Some("*/*")), Text);
        assert_eq!(Format::from_accept(Some("text/plain")), Text);
        assert_eq!(Format::from_accept(Some("text/plain; version=0.0.4")), Text);
        assert_eq!(Format::from_accept(Some("application/json")), Text);
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text")),
            OpenMetrics
        );
        assert_eq!(
            Format::from_accept(Some("Application/OpenMetrics-Text; Version=1.0.0")),
            OpenMetrics
        );
    }

    #[test]
    fn what_prometheus_sends_gets_openmetrics() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::from_accept(Some(prometheus)), OpenMetrics);
    }

    #[test]
    fn qualities_decide() {
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;q=0.5, text/plain")),
            Text
        );
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;q=0.5, */*;q=0.4")),
            OpenMetrics
        );
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;q=0")),
            Text
        );
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;q=nonsense")),
            OpenMetrics
        );
    }
}
