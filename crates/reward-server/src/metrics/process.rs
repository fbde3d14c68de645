//! The standard process metrics every Prometheus client exports (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_start_time_seconds`), read from `/proc/self` at scrape time. Linux only: elsewhere
//! the collector is not registered, and a file that cannot be read leaves its metrics out rather
//! than failing the scrape.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// What one scrape reads of the process; `None` where the file could not be read.
#[derive(Clone, Debug, Default, PartialEq)]
struct ProcessSample {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<i64>,
    start_time_seconds: Option<f64>,
    open_fds: Option<i64>,
    max_fds: Option<i64>,
}

/// The fields of `/proc/self/stat` these metrics use, in the kernel's units.
#[derive(Debug, PartialEq)]
struct Stat {
    /// utime + stime, in clock ticks.
    cpu_ticks: u64,
    /// Since boot, in clock ticks.
    start_ticks: u64,
    resident_pages: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may hold spaces
/// and parentheses itself, so fields are counted after its last `)`.
fn parse_stat(stat: &str) -> Option<Stat> {
    let (_, after_name) = stat.rsplit_once(')')?;
    // After the name: field 3 (state) is index 0, so field N is index N - 3.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |number: usize| -> Option<u64> { fields.get(number - 3)?.parse().ok() };
    Some(Stat {
        cpu_ticks: field(14)? + field(15)?,
        start_ticks: field(22)?,
        resident_pages: field(24)?,
    })
}

/// The boot time (`btime`, Unix seconds) from `/proc/stat`.
fn parse_boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|seconds| seconds.trim().parse().ok())
}

/// The soft limit on open files from `/proc/<pid>/limits`; `None` when unlimited.
fn parse_max_fds(limits: &str) -> Option<i64> {
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| soft.parse().ok())
}

#[cfg(target_os = "linux")]
fn read_sample() -> ProcessSample {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let ticks_per_second = rustix::param::clock_ticks_per_second() as f64;
    let page_size = i64::try_from(rustix::param::page_size()).unwrap_or(4096);
    let stat = read("/proc/self/stat").and_then(|stat| parse_stat(&stat));
    let boot_time = read("/proc/stat").and_then(|proc_stat| parse_boot_time(&proc_stat));
    ProcessSample {
        cpu_seconds: stat
            .as_ref()
            .map(|stat| stat.cpu_ticks as f64 / ticks_per_second),
        resident_bytes: stat.as_ref().map(|stat| {
            i64::try_from(stat.resident_pages)
                .unwrap_or(i64::MAX)
                .saturating_mul(page_size)
        }),
        start_time_seconds: stat
            .as_ref()
            .zip(boot_time)
            .map(|(stat, boot)| boot as f64 + stat.start_ticks as f64 / ticks_per_second),
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| i64::try_from(entries.count()).unwrap_or(i64::MAX)),
        max_fds: read("/proc/self/limits").and_then(|limits| parse_max_fds(&limits)),
    }
}

/// Reads the process' figures on each scrape.
#[derive(Debug)]
pub struct ProcessCollector;

impl ProcessCollector {
    /// The collector where `/proc/self` exists; `None` elsewhere.
    pub fn for_this_platform() -> Option<Self> {
        cfg!(target_os = "linux").then_some(Self)
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        #[cfg(target_os = "linux")]
        {
            encode_sample(&read_sample(), encoder)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = encoder;
            Ok(())
        }
    }
}

fn encode_sample(
    sample: &ProcessSample,
    mut encoder: DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    if let Some(seconds) = sample.cpu_seconds {
        let counter = ConstCounter::new(seconds);
        // Registered as `process_cpu_seconds`: the encoders add `_total`.
        counter.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            counter.metric_type(),
        )?)?;
    }
    let gauges = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            sample.resident_bytes.map(|bytes| bytes as f64),
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            sample.start_time_seconds,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            sample.open_fds.map(|fds| fds as f64),
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            sample.max_fds.map(|fds| fds as f64),
        ),
    ];
    for (name, help, value) in gauges {
        if let Some(value) = value {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A name with spaces and parentheses, as a process may give itself.
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    250 75 0 0 20 0 9 0 123456 987654321 2048 18446744073709551615 \
                    1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(stat),
            Some(Stat {
                cpu_ticks: 325,
                start_ticks: 123456,
                resident_pages: 2048,
            })
        );
        assert_eq!(parse_stat("4242 (cut short) S 1 2"), None);
        assert_eq!(parse_stat("no parentheses at all"), None);
    }

    #[test]
    fn boot_time_and_open_file_limit() {
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_boot_time("cpu 1\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        assert_eq!(
            parse_max_fds(
                "Max open files            unlimited            unlimited            files\n"
            ),
            None
        );
    }

    fn encoded(sample: &ProcessSample) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(Fixed(sample.clone())));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap_or_default();
        text
    }

    #[derive(Debug)]
    struct Fixed(ProcessSample);

    impl Collector for Fixed {
        fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            encode_sample(&self.0, encoder)
        }
    }

    #[test]
    fn metrics_are_named_as_every_client_names_them_and_missing_ones_left_out() {
        let text = encoded(&ProcessSample {
            cpu_seconds: Some(3.25),
            resident_bytes: Some(8_388_608),
            start_time_seconds: Some(1_700_000_000.5),
            open_fds: Some(12),
            max_fds: None,
        });
        assert!(
            text.contains("# TYPE process_cpu_seconds counter\nprocess_cpu_seconds_total 3.25\n"),
            "{text}"
        );
        assert!(
            text.contains("process_resident_memory_bytes 8388608"),
            "{text}"
        );
        assert!(
            text.contains("process_start_time_seconds 1700000000.5"),
            "{text}"
        );
        assert!(text.contains("process_open_fds 12"), "{text}");
        assert!(!text.contains("process_max_fds"), "{text}");
        assert_eq!(
            encoded(&ProcessSample::default()),
            "# EOF\n",
            "nothing read, nothing said"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reads_plausibly() {
        let sample = read_sample();
        assert!(sample.cpu_seconds.is_some_and(|seconds| seconds >= 0.0));
        assert!(sample
            .resident_bytes
            .is_some_and(|bytes| bytes > 1024 * 1024));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since.as_secs_f64())
            .unwrap_or_default();
        assert!(sample
            .start_time_seconds
            .is_some_and(|start| start <= now + 1.0 && start > now - 3600.0));
        assert!(sample.open_fds.is_some_and(|fds| fds >= 3));
        assert!(sample.max_fds.is_none_or(|max| max >= 3));
    }
}
