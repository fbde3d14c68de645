//! Which traces to export where, from the standard OpenTelemetry variables. Tracing is off unless
//! an OTLP endpoint is set (and `OTEL_SDK_DISABLED` is not `true`).
//!
//! Only OTLP over HTTP with protobuf bodies is built in; asking for another protocol is refused at
//! start, so an operator never believes spans are going somewhere they are not.

use std::time::Duration;

/// How spans are exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSettings {
    /// `OTEL_SERVICE_NAME`, default `reward`.
    pub service_name: String,
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as it is, or `OTEL_EXPORTER_OTLP_ENDPOINT` with
    /// `/v1/traces` appended (as the OTLP specification says).
    pub endpoint: String,
    /// `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds), default 10 s: one export's limit.
    pub export_timeout: Duration,
    /// `OTEL_BSP_SCHEDULE_DELAY` (milliseconds), default 5 s: how long finished spans wait to be
    /// exported together.
    pub schedule_delay: Duration,
    /// `OTEL_BSP_MAX_QUEUE_SIZE`, default 2048: finished spans waiting for export at most; past
    /// it they are dropped (and counted), never waited for.
    pub max_queue: usize,
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, default 512: spans in one export at most.
    pub max_batch: usize,
}

/// A variable that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceSettingsError {
    #[error("{variable}={value:?}: only http/protobuf is built in (grpc and http/json are not); unset it or set it to http/protobuf")]
    UnsupportedProtocol {
        variable: &'static str,
        value: String,
    },
    #[error("{variable}={value:?}: not an http:// or https:// URL")]
    BadEndpoint {
        variable: &'static str,
        value: String,
    },
    #[error("{variable}={value:?}: {expected}")]
    BadNumber {
        variable: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl TraceSettings {
    /// From `lookup` (a variable's value by name, empty counting as unset).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, TraceSettingsError> {
        let var = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        if var("OTEL_SDK_DISABLED").is_some_and(|value| value.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let endpoint = match (
            var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            var("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(traces), _) => http_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces)?,
            (None, Some(base)) => {
                let base = http_url("OTEL_EXPORTER_OTLP_ENDPOINT", base)?;
                format!("{}/v1/traces", base.trim_end_matches('/'))
            }
            (None, None) => return Ok(None),
        };
        for variable in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(value) = var(variable) {
                if value.trim() != "http/protobuf" {
                    return Err(TraceSettingsError::UnsupportedProtocol { variable, value });
                }
            }
        }
        let number = |variable: &'static str, default: u64, least: u64| {
            let Some(value) = var(variable) else {
                return Ok(default);
            };
            match value.trim().parse::<u64>() {
                Ok(number) if number >= least => Ok(number),
                _ => Err(TraceSettingsError::BadNumber {
                    variable,
                    value,
                    expected: if least == 0 {
                        "a whole number"
                    } else {
                        "a whole number, at least 1"
                    },
                }),
            }
        };
        let count = |variable, default| {
            number(variable, default, 1).map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        };
        Ok(Some(Self {
            service_name: var("OTEL_SERVICE_NAME").unwrap_or_else(|| "reward".to_owned()),
            endpoint,
            export_timeout: Duration::from_millis(number("OTEL_EXPORTER_OTLP_TIMEOUT", 10_000, 1)?),
            schedule_delay: Duration::from_millis(number("OTEL_BSP_SCHEDULE_DELAY", 5_000, 0)?),
            max_queue: count("OTEL_BSP_MAX_QUEUE_SIZE", 2048)?,
            max_batch: count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)?,
        }))
    }
}

fn http_url(variable: &'static str, value: String) -> Result<String, TraceSettingsError> {
    match url::Url::parse(value.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
            Ok(value.trim().to_owned())
        }
        _ => Err(TraceSettingsError::BadEndpoint { variable, value }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Option<TraceSettings>, TraceSettingsError> {
        TraceSettings::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn off_unless_an_endpoint_is_set() {
        assert_eq!(settings(&[]), Ok(None));
        assert_eq!(settings(&[("OTEL_SERVICE_NAME", "x")]), Ok(None));
        assert_eq!(settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "")]), Ok(None));
        let disabled = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_SDK_DISABLED", "true"),
        ];
        assert_eq!(settings(&disabled), Ok(None));
    }

    #[test]
    fn the_endpoint_follows_the_otlp_rules() {
        let base = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")])
            .expect("valid")
            .expect("on");
        assert_eq!(base.endpoint, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(base.service_name, "reward");
        assert_eq!(base.schedule_delay, Duration::from_secs(5));
        let exact = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://c.example/t"),
            ("OTEL_SERVICE_NAME", "reward-eu"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ])
        .expect("valid")
        .expect("on");
        assert_eq!(exact.endpoint, "https://c.example/t");
        assert_eq!(exact.service_name, "reward-eu");
        assert_eq!(exact.schedule_delay, Duration::from_millis(100));
    }

    #[test]
    fn what_cannot_be_honoured_is_refused() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        for protocol in ["grpc", "http/json"] {
            let refused = settings(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)]);
            assert!(
                matches!(refused, Err(TraceSettingsError::UnsupportedProtocol { .. })),
                "{protocol}"
            );
        }
        let protobuf = settings(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]);
        assert!(matches!(protobuf, Ok(Some(_))));
        assert!(settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318")]).is_err());
        assert!(settings(&[endpoint, ("OTEL_BSP_MAX_QUEUE_SIZE", "0")]).is_err());
        assert!(settings(&[endpoint, ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")]).is_err());
    }
}
