//! The one tracing setup of every hookline binary: structured events to
//! standard error, filtered by `RUST_LOG` or the binary's default, written as
//! JSON lines for a log collector or as text for a person at a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How events are written: every binary's `--log-format`
/// (`HOOKLINE_LOG_FORMAT`), taken as `Option<LogFormat>` so that "not given"
/// can follow where the output goes (see [`output`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, the event's fields at the top level: what
    /// Loki, Elasticsearch or Cloud Logging parse without a pattern.
    Json,
    /// Lines for a person; coloured only on a terminal.
    Text,
}

/// What [`init`] installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    pub format: LogFormat,
    /// ANSI colour codes.
    pub ansi: bool,
}

/// The format and colouring of the logs, from the flag and from whether the
/// stream the events go to (standard error) is a terminal.
///
/// Without a flag: text on a terminal, JSON anywhere else, since off a
/// terminal (a pod, a systemd unit, a pipe into a file) a collector reads the
/// lines, not a person. Colour only for text on a terminal, and never with
/// `NO_COLOR` set (no-color.org): escape codes in `kubectl logs` or in a file
/// are noise a person has to strip, and break JSON for a parser.
pub fn output(flag: Option<LogFormat>, terminal: bool, no_color: bool) -> Output {
    let format = flag.unwrap_or(if terminal {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    Output {
        format,
        ansi: format == LogFormat::Text && terminal && !no_color,
    }
}

/// Installs the subscriber with the format `--log-format` chose, or the one
/// [`output`] picks for where standard error goes when it chose none.
/// `default` is the filter when `RUST_LOG` is unset or unreadable (e.g.
/// `"info"`, `"info,sqlx=error"`). Call it once, at startup.
pub fn init_with_format(default: &str, format: Option<LogFormat>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    let output = output(format, std::io::stderr().is_terminal(), no_color);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(output.ansi);
    match output.format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

/// [`init_with_format`] without a flag: for tools that have no
/// `--log-format` of their own (the benchmarks).
pub fn init(default: &str) {
    init_with_format(default, None);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn without_a_flag_a_terminal_gets_coloured_text() {
        let out = output(None, true, false);
        assert_eq!(out.format, LogFormat::Text);
        assert!(out.ansi);
    }

    #[test]
    fn without_a_flag_anything_but_a_terminal_gets_json_without_colour() {
        assert_eq!(
            output(None, false, false),
            Output {
                format: LogFormat::Json,
                ansi: false
            }
        );
    }

    #[test]
    fn the_flag_wins_over_the_terminal() {
        assert_eq!(
            output(Some(LogFormat::Json), true, false),
            Output {
                format: LogFormat::Json,
                ansi: false
            }
        );
        assert_eq!(
            output(Some(LogFormat::Text), false, false),
            Output {
                format: LogFormat::Text,
                ansi: false
            },
            "text off a terminal (kubectl logs) carries no escape codes"
        );
    }

    #[test]
    fn no_color_turns_colour_off_on_a_terminal() {
        assert!(!output(None, true, true).ansi);
        assert!(!output(Some(LogFormat::Text), true, true).ansi);
    }

    /// The flag as every binary declares it.
    #[derive(Debug, Parser)]
    struct Flags {
        #[arg(long, env = "HOOKLINE_LOG_FORMAT")]
        log_format: Option<LogFormat>,
    }

    #[test]
    fn the_flag_reads_json_and_text_and_refuses_anything_else() {
        let parse = |value: &str| Flags::try_parse_from(["bin", "--log-format", value]);
        assert_eq!(
            parse("json").ok().and_then(|f| f.log_format),
            Some(LogFormat::Json)
        );
        assert_eq!(
            parse("text").ok().and_then(|f| f.log_format),
            Some(LogFormat::Text)
        );
        assert!(parse("pretty").is_err());
    }

    /// Set in the child process of
    /// `piped_stderr_gets_json_lines_without_escape_codes`.
    const CHILD: &str = "HOOKLINE_TELEMETRY_TEST_CHILD";

    /// The child's half: the real `init`, as a binary's startup calls it, then
    /// one event. A no-op in a normal test run, where a global subscriber
    /// would leak into the other tests.
    #[test]
    fn child_logs_one_event() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        init_with_format("info", None);
        tracing::info!(event_id = "e-1", partition = 3, "an event");
        tracing::warn!("a warning");
    }

    /// A real process whose standard error is a pipe, as in a pod: the
    /// default (no flag, `HOOKLINE_LOG_FORMAT` unset) must be JSON lines
    /// without ANSI escapes, fields at the top level.
    #[test]
    fn piped_stderr_gets_json_lines_without_escape_codes() {
        let exe = std::env::current_exe().expect("the test binary's path");
        let output = std::process::Command::new(exe)
            .args(["--exact", "telemetry::tests::child_logs_one_event"])
            .env(CHILD, "1")
            .env_remove("HOOKLINE_LOG_FORMAT")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("running the test binary");
        assert!(output.status.success(), "{output:?}");
        let stderr = String::from_utf8(output.stderr).expect("UTF-8 logs");
        assert!(!stderr.contains('\u{1b}'), "ANSI escape in {stderr:?}");
        let lines: Vec<serde_json::Value> = stderr
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
            .collect();
        assert_eq!(lines.len(), 2, "{stderr}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "an event");
        assert_eq!(lines[0]["event_id"], "e-1");
        assert_eq!(lines[0]["partition"], 3);
        assert!(lines[0]["timestamp"].is_string(), "{}", lines[0]);
        assert_eq!(lines[1]["level"], "WARN");
    }
}
