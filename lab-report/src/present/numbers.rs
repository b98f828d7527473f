//! How numbers are written, in one place: every table, warning and verdict uses these.

/// A figure that was not measured (per message with no message…): never written as 0.
pub const MISSING: &str = "–";

/// [`significant`], or [`MISSING`] for a figure that was not measured.
pub fn significant_or_missing(v: Option<f64>) -> String {
    v.map_or_else(|| MISSING.to_owned(), significant)
}

/// A number in a few characters with 3 significant digits: `12.3k`, `1.05M`, `427`, `3.25`,
/// `0.0123` (2 below 0.001: `0.00088`). Whole numbers below 10 000 are shown whole (`4`, not `4.00`).
pub fn compact(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        return v.to_string();
    }
    if a == 0.0 {
        return "0".into();
    }
    if a >= 1e9 {
        return format!("{}G", significant(v / 1e9));
    }
    if a >= 1e6 {
        return format!("{}M", significant(v / 1e6));
    }
    if a >= 1e4 {
        return format!("{}k", significant(v / 1e3));
    }
    if v.fract() == 0.0 || a >= 100.0 {
        return format!("{v:.0}");
    }
    if a < 1e-5 {
        return format!("{v:.1e}");
    }
    if a < 0.001 {
        let digits = 1 - a.log10().floor() as i32;
        return format!("{v:.*}", digits as usize);
    }
    significant(v)
}

/// Three significant digits, without scientific notation: `1.00`, `0.0476`, `0.000033`, `427`.
pub fn significant(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = 2 - v.abs().log10().floor() as i32;
    format!("{v:.*}", digits.max(0) as usize)
}

/// Ratio with a sensible number of digits for a table cell.
pub fn ratio(n: f64, d: f64) -> String {
    if d == 0.0 {
        return "-".into();
    }
    let r = n / d;
    match r {
        0.0 => "0".into(),
        r if r >= 100.0 => format!("{r:.0}"),
        r if r >= 10.0 => format!("{r:.1}"),
        r if r >= 0.01 => format!("{r:.2}"),
        r => format!("{r:.4}"),
    }
}
