//! How ebb's processes log: `tracing` to standard error, as text a person reads or as
//! JSON lines a collector reads.
//!
//! Text is plain where it is not read on a terminal (a file, a pipe, `kubectl logs`) or
//! where `NO_COLOR` is set (<https://no-color.org>: any non-empty value), so that `grep
//! addr=127 up.log` finds what it looks for. Values print as a person writes them:
//! `wall_ms=1.48`, not `wall_ms=1.4761710000000001`; `job=second`, not `job="second"`.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber (`RUST_LOG` filters; `info` by default).
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(use_colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            ))
            .fmt_fields(PlainFields)
            .init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Colour only for a terminal, and never when `NO_COLOR` is set to anything but "".
pub fn use_colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// A number as a person writes it: at most two decimals at or above 1, three significant
/// digits below, no trailing zeros. Integers stay integers; NaN and infinities as Rust
/// prints them.
pub fn plain_f64(v: f64) -> String {
    if !v.is_finite() || v == v.trunc() && v.abs() < 1e15 {
        return format!("{v}");
    }
    let decimals = if v.abs() >= 1.0 {
        2
    } else {
        // 0.0123 -> 4 decimals (three significant digits), capped for tiny values.
        (2 - v.abs().log10().floor() as i32).clamp(3, 9) as usize
    };
    let s = format!("{v:.decimals$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// The text format's fields: `name=value` separated by spaces, the message first and
/// bare. Strings are quoted only when they would not read as one token.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlainFields;

impl<'w> FormatFields<'w> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = PlainVisitor {
            writer,
            empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct PlainVisitor<'w> {
    writer: Writer<'w>,
    empty: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    fn write(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        let sep = if self.empty { "" } else { " " };
        self.empty = false;
        self.result = if field.name() == "message" {
            write!(self.writer, "{sep}{value}")
        } else if value.is_empty() || value.contains(char::is_whitespace) || value.contains('"') {
            write!(self.writer, "{sep}{}={value:?}", field.name())
        } else {
            write!(self.writer, "{sep}{}={value}", field.name())
        };
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.write(field, &plain_f64(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.write(field, &value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = write!(text, "{value:?}");
        if field.name() == "message" {
            // A message is written verbatim, even with spaces.
            if self.result.is_ok() {
                let sep = if self.empty { "" } else { " " };
                self.empty = false;
                self.result = write!(self.writer, "{sep}{text}");
            }
            return;
        }
        self.write(field, &text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn numbers_read_as_written() {
        assert_eq!(plain_f64(1.4761710000000001), "1.48");
        assert_eq!(plain_f64(2.0), "2");
        assert_eq!(plain_f64(1234.5678), "1234.57");
        assert_eq!(plain_f64(0.96341), "0.963");
        assert_eq!(plain_f64(0.012345), "0.0123");
        assert_eq!(plain_f64(-3.456), "-3.46");
        assert_eq!(plain_f64(0.5), "0.5");
        assert_eq!(plain_f64(f64::NAN), "NaN");
        assert_eq!(plain_f64(1e-12), "0");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn a_line_has_plain_values_and_no_escape_codes() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(PlainFields)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                wall_ms = 1.4761710000000001,
                job = "second",
                addr = %"127.0.0.1:4000",
                reason = "no room here",
                pods = 3,
                "replica serving"
            );
        });
        let line = buffer.text();
        assert!(
            line.contains(
                r#"replica serving wall_ms=1.48 job=second addr=127.0.0.1:4000 reason="no room here" pods=3"#
            ),
            "{line}"
        );
        assert!(!line.contains('\x1b'), "{line:?}");
    }
}
