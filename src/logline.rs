//! The text log line: `TIME LEVEL TARGET: MESSAGE key=value ...`, one event a line.
//!
//! tracing-subscriber's own text format spends more instructions on a request's line than
//! the request itself costs (field names styled even with colours off, every value through
//! `Debug`, the date recomputed each time; README "Performance"). This one writes integers
//! and plain strings as they are, quotes a string only when it holds a space, a quote, `=`
//! or a control character, and formats the date once a second per thread.
//!
//! The one line per request is dearer still through tracing (dispatch, field visiting), so
//! [`RequestLine`] writes the same text straight into the log buffer when the binary installed
//! one with [`direct_requests`] (text logs only); otherwise it goes out as a tracing event.

use std::cell::RefCell;
use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::logsink::LogSink;

/// The target of request lines: `--log info,arrayd::request=warn` turns them off.
pub const REQUEST_TARGET: &str = "arrayd::request";

/// Where request lines go directly, when the binary said so.
static DIRECT: OnceLock<LogSink> = OnceLock::new();

/// Sends [`RequestLine`]s straight into `sink` (the sink the text format writes to), so that
/// they skip tracing's dispatch; the filter still decides whether they are written.
pub fn direct_requests(sink: LogSink) {
    let _ = DIRECT.set(sink);
}

/// One answered request, as logged when its body is done.
#[derive(Debug, Clone, Copy)]
pub struct RequestLine<'a> {
    /// `GET`, `HEAD`, ...
    pub method: &'static str,
    /// The route template, or `unmatched`.
    pub route: &'static str,
    /// The status code.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// Whether the body reached its end (not cut or dropped).
    pub complete: bool,
    /// Microseconds from the request head to the end of the body.
    pub us: u64,
    /// The request id, as echoed.
    pub request_id: &'a str,
}

impl RequestLine<'_> {
    /// Logs the line at INFO under [`REQUEST_TARGET`]: the same text as the tracing event
    /// through [`LineFormat`] (a test holds them equal).
    pub fn log(&self) {
        if !tracing::enabled!(target: REQUEST_TARGET, tracing::Level::INFO) {
            return;
        }
        match DIRECT.get() {
            Some(sink) => sink.append(|buffer| {
                // Writing into a Vec cannot fail.
                let _ = self.write(&mut ToBytes(buffer));
            }),
            None => tracing::info!(
                target: REQUEST_TARGET,
                method = self.method,
                route = self.route,
                status = self.status,
                bytes = self.bytes,
                complete = self.complete,
                us = self.us,
                request_id = self.request_id,
                "request"
            ),
        }
    }

    /// The whole line, newline included, as [`LineFormat`] writes the event.
    fn write(&self, out: &mut impl Write) -> fmt::Result {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        write_time(out, now.as_secs(), now.subsec_micros())?;
        let mut int = itoa::Buffer::new();
        out.write_str("  INFO arrayd::request: request method=")?;
        out.write_str(self.method)?;
        out.write_str(" route=")?;
        out.write_str(self.route)?;
        out.write_str(" status=")?;
        out.write_str(int.format(self.status))?;
        out.write_str(" bytes=")?;
        out.write_str(int.format(self.bytes))?;
        out.write_str(if self.complete {
            " complete=true us="
        } else {
            " complete=false us="
        })?;
        out.write_str(int.format(self.us))?;
        out.write_str(" request_id=")?;
        if needs_quotes(self.request_id) {
            write!(out, "{:?}", self.request_id)?;
        } else {
            out.write_str(self.request_id)?;
        }
        out.write_char('\n')
    }
}

/// `fmt::Write` into a byte buffer.
struct ToBytes<'a>(&'a mut Vec<u8>);

impl Write for ToBytes<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The [`FormatEvent`] of text logs.
#[derive(Debug, Default, Clone, Copy)]
pub struct LineFormat;

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        write_time(&mut writer, now.as_secs(), now.subsec_micros())?;
        let meta = event.metadata();
        let level = meta.level().as_str();
        writer.write_str(&"      "[..6 - level.len()])?;
        writer.write_str(level)?;
        writer.write_char(' ')?;
        writer.write_str(meta.target())?;
        writer.write_char(':')?;
        let mut fields = Fields {
            out: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// Writes `2026-12-02T10:05:28.105195Z`; the part up to the seconds is kept per thread and
/// redone when the second changes.
fn write_time(out: &mut impl Write, secs: u64, micros: u32) -> fmt::Result {
    thread_local! {
        static CACHED: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != secs {
            let (date, time) = (secs / 86_400, secs % 86_400);
            let (y, m, d) = civil_from_days(date);
            cached.1.clear();
            write!(
                cached.1,
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
                time / 3600,
                time / 60 % 60,
                time % 60
            )?;
            cached.0 = secs;
        }
        out.write_str(&cached.1)
    })?;
    let mut frac = *b".000000Z";
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(micros % 1_000_000).as_bytes();
    frac[7 - digits.len()..7].copy_from_slice(digits);
    // Only ASCII digits went in.
    out.write_str(std::str::from_utf8(&frac).unwrap_or(".000000Z"))
}

/// Year, month and day of a count of days since 1970-01-01 (proleptic Gregorian), after
/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Writes the message, then ` key=value` for every other field.
struct Fields<'a, 'w> {
    out: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    /// Writes ` name=` (or ` ` for the message), then the value `write` writes; plain
    /// `write_str` calls, since `write!` through the formatter's `dyn Write` costs several
    /// times as much for a short value.
    fn field(&mut self, field: &Field, write: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let out = &mut *self.out;
        self.result = (|| {
            out.write_char(' ')?;
            if field.name() != "message" {
                out.write_str(field.name())?;
                out.write_char('=')?;
            }
            write(out)
        })();
    }
}

impl Visit for Fields<'_, '_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |out| {
            out.write_str(itoa::Buffer::new().format(value))
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |out| {
            out.write_str(itoa::Buffer::new().format(value))
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |out| {
            out.write_str(if value { "true" } else { "false" })
        });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" || !needs_quotes(value) {
            self.field(field, |out| out.write_str(value));
        } else {
            self.field(field, |out| write!(out, "{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // The message (`format_args!`) and `%x` fields arrive here, already as Display.
        if field.name() == "message" {
            return self.field(field, |out| write!(out, "{value:?}"));
        }
        let text = format!("{value:?}");
        self.record_str(field, &text);
    }
}

/// Whether `value` must be quoted to stay one `key=value` token.
fn needs_quotes(value: &str) -> bool {
    value.is_empty()
        || value
            .bytes()
            .any(|b| b <= b' ' || b == b'"' || b == b'=' || b == 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log output the test reads back.
    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    /// What `log` writes through [`LineFormat`], as text.
    fn logged(log: impl FnOnce()) -> String {
        let buf = Buf::default();
        let subscriber = tracing_subscriber::fmt()
            .event_format(LineFormat)
            .with_writer(buf.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        // 2000-02-29, a leap day of a century year divisible by 400.
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_789), (2026, 12, 2));
    }

    #[test]
    fn the_time_is_rfc3339_utc_with_microseconds() {
        let mut out = String::new();
        write_time(&mut out, 1_796_205_928, 105_195).unwrap();
        assert_eq!(out, "2026-12-02T10:05:28.105195Z");
        out.clear();
        write_time(&mut out, 1_796_205_929, 7).unwrap();
        assert_eq!(out, "2026-12-02T10:05:29.000007Z");
    }

    #[test]
    fn strings_are_quoted_only_when_they_would_split_the_line() {
        assert!(!needs_quotes("/v1/datasets/{name}/data"));
        assert!(
            needs_quotes("a b") && needs_quotes("a=b") && needs_quotes("\"") && needs_quotes("")
        );
        assert!(needs_quotes("line\nbreak"));
    }

    #[test]
    fn a_line_has_the_level_target_message_and_fields() {
        let text = logged(|| {
            tracing::info!(target: "arrayd::request", status = 200u16, route = "/x", id = "a b", ok = true, "request");
            tracing::warn!(path = %"p q", "skipped {}", 3);
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].ends_with(
                r#"  INFO arrayd::request: request status=200 route=/x id="a b" ok=true"#
            ),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].ends_with(r#" WARN arrayd::logline::tests: skipped 3 path="p q""#),
            "{}",
            lines[1]
        );
        assert_eq!(lines[0].as_bytes()[10], b'T');
    }

    /// The line written straight into the buffer is the tracing event's line, time aside.
    #[test]
    fn a_direct_request_line_is_the_events_line() {
        for (request_id, complete) in [("0a1b-2", true), ("with space", false)] {
            let line = RequestLine {
                method: "GET",
                route: "/v1/datasets/{name}/data",
                status: 206,
                bytes: 4096,
                complete,
                us: 57,
                request_id,
            };
            // No direct sink in this process: `log` sends the event.
            let event = logged(|| line.log());
            let mut direct = String::new();
            line.write(&mut direct).unwrap();
            // The first 27 bytes are the time.
            assert_eq!(event[27..], direct[27..], "{event}{direct}");
            assert!(direct.ends_with(if complete {
                "complete=true us=57 request_id=0a1b-2\n"
            } else {
                "complete=false us=57 request_id=\"with space\"\n"
            }));
        }
    }
}
