//! Times as `accel logs --start-time/--end-time` (spec §4.5) and
//! `sync.toml`'s legacy timestamps take them: relative forms ("10m ago",
//! "5mins ago", "1 minute", "yesterday", "now") and absolute ones
//! ("2018-01-01 10:10:10", ISO-8601 with `Z` or an offset, a bare date).
//! Naive absolute times are UTC, as in sam. All values are epoch
//! milliseconds.

/// Epoch ms now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Parses `text` relative to `now_ms`.
pub(crate) fn parse(text: &str, now_ms: i64) -> Option<i64> {
    let text = text.trim().to_ascii_lowercase();
    match text.as_str() {
        "now" | "today" => return Some(now_ms),
        "yesterday" => return Some(now_ms - DAY),
        "tomorrow" => return Some(now_ms + DAY),
        _ => {}
    }
    relative(&text, now_ms).or_else(|| absolute(&text))
}

const SECOND: i64 = 1000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// `<n><unit> [ago]`, `<n> <unit>s ago`, `in <n> <unit>`: a bare duration
/// means that long ago, as dateparser reads it.
fn relative(text: &str, now_ms: i64) -> Option<i64> {
    let (future, rest) = match text.strip_prefix("in ") {
        Some(rest) => (true, rest),
        None => (false, text.strip_suffix(" ago").unwrap_or(text)),
    };
    let rest = rest.trim();
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let amount: f64 = digits.parse().ok()?;
    let unit = rest[digits.len()..].trim();
    let unit_ms = match unit.trim_end_matches('s') {
        "" | "sec" | "second" => SECOND,
        "m" | "min" | "minute" => MINUTE,
        "h" | "hr" | "hour" => HOUR,
        "d" | "day" => DAY,
        "w" | "week" => 7 * DAY,
        _ => return None,
    };
    // A bare number means seconds only when a unit was written ("10s"); "10" alone is not a time.
    if unit.is_empty() {
        return None;
    }
    let delta = (amount * unit_ms as f64) as i64;
    Some(if future { now_ms + delta } else { now_ms - delta })
}

/// `YYYY-MM-DD[( |T)HH:MM[:SS[.fff]]][Z|±HH:MM]` (lower case) as epoch ms.
pub(crate) fn absolute(text: &str) -> Option<i64> {
    let (date, time) = match text.split_once(['t', ' ']) {
        Some((date, time)) => (date, time.trim()),
        None => (text, ""),
    };
    let mut parts = date.split(['-', '/']);
    let (year, month, day): (i64, i64, i64) =
        (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    if parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset_ms) = split_offset(time)?;
    let mut fields = clock.split(':');
    let hour: i64 = fields.next().filter(|h| !h.is_empty()).map_or(Some(0), |h| h.parse().ok())?;
    let minute: i64 = fields.next().map_or(Some(0), |m| m.parse().ok())?;
    let second: f64 = fields.next().map_or(Some(0.0), |s| s.parse().ok())?;
    if hour > 23 || minute > 59 || second >= 61.0 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * DAY + hour * HOUR + minute * MINUTE + (second * 1000.0).round() as i64 - offset_ms)
}

/// Splits a trailing `z` or `±HH[:MM]` offset off a clock time.
fn split_offset(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix('z') {
        return Some((clock, 0));
    }
    if let Some(at) = time.rfind(['+', '-']) {
        let (clock, offset) = time.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let digits: String = offset[1..].chars().filter(char::is_ascii_digit).collect();
        let (h, m) = match digits.len() {
            2 => (digits.parse::<i64>().ok()?, 0),
            4 => (digits[..2].parse::<i64>().ok()?, digits[2..].parse::<i64>().ok()?),
            _ => return None,
        };
        return Some((clock.trim(), sign * (h * HOUR + m * MINUTE)));
    }
    Some((time, 0))
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// sam's timestamp text (Python's `isoformat()` of a UTC datetime):
/// `2024-01-02T12:53:20.123000+00:00`, or without the fraction at 0 ms.
pub(crate) fn iso(ms: i64) -> String {
    let (days, rest) = (ms.div_euclid(DAY), ms.rem_euclid(DAY));
    let (year, month, day) = civil_from_days(days);
    let (h, m, s, millis) = (rest / HOUR, rest % HOUR / MINUTE, rest % MINUTE / SECOND, rest % SECOND);
    let fraction = if millis == 0 { String::new() } else { format!(".{:06}", millis * 1000) };
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}{fraction}+00:00")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_514_400_000; // 2026-11-24T10:00:00Z

    #[test]
    fn relative_forms() {
        assert_eq!(parse("10m ago", NOW), Some(NOW - 10 * MINUTE));
        assert_eq!(parse("5mins ago", NOW), Some(NOW - 5 * MINUTE));
        assert_eq!(parse("1 minute", NOW), Some(NOW - MINUTE));
        assert_eq!(parse("2 hours ago", NOW), Some(NOW - 2 * HOUR));
        assert_eq!(parse("30s ago", NOW), Some(NOW - 30 * SECOND));
        assert_eq!(parse("3 days ago", NOW), Some(NOW - 3 * DAY));
        assert_eq!(parse("1 week ago", NOW), Some(NOW - 7 * DAY));
        assert_eq!(parse("in 1 hour", NOW), Some(NOW + HOUR));
        assert_eq!(parse("yesterday", NOW), Some(NOW - DAY));
        assert_eq!(parse("tomorrow", NOW), Some(NOW + DAY));
        assert_eq!(parse("now", NOW), Some(NOW));
        assert_eq!(parse("Now", NOW), Some(NOW));
    }

    #[test]
    fn absolute_forms() {
        let base = days_from_civil(2018, 1, 1) * DAY + 10 * HOUR + 10 * MINUTE + 10 * SECOND;
        assert_eq!(parse("2018-01-01 10:10:10", NOW), Some(base), "naive is UTC");
        assert_eq!(parse("2018-01-01T10:10:10Z", NOW), Some(base));
        assert_eq!(parse("2018-01-01T12:10:10+02:00", NOW), Some(base));
        assert_eq!(parse("2018-01-01T05:10:10-0500", NOW), Some(base));
        assert_eq!(parse("2018-01-01T10:10:10.250Z", NOW), Some(base + 250));
        assert_eq!(parse("2018-01-01", NOW), Some(days_from_civil(2018, 1, 1) * DAY));
        assert_eq!(parse("2018/01/01 10:10", NOW), Some(base - 10 * SECOND));
    }

    #[test]
    fn nonsense_is_refused() {
        for text in ["", "soon", "10", "2018-13-01", "2018-01-01T25:00:00", "ten minutes ago"] {
            assert_eq!(parse(text, NOW), None, "{text}");
        }
    }

    #[test]
    fn iso_like_python() {
        assert_eq!(iso(1704199999000 + 1000), "2024-01-02T12:53:20+00:00");
        assert_eq!(iso(1704200000123), "2024-01-02T12:53:20.123000+00:00");
        assert_eq!(parse(&iso(NOW + 5), NOW), Some(NOW + 5));
    }
}
