//! Numbers in words for advise's text: thousands separators, the precision a figure's size
//! deserves, bytes in binary units, `1 node` / `2 nodes`. Used by every part of advise that
//! writes a figure; depends on nothing of it.

/// `1 node`, `2 nodes`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", int(n), if n == 1 { one } else { many })
}

/// An integer with thousands separators.
pub fn int(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A number with the precision its size deserves (whole numbers with separators).
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    let sign = if v < 0.0 { "-" } else { "" };
    if a >= 100.0 || a.fract() == 0.0 {
        format!("{sign}{}", int(a.round() as u64))
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Bytes in binary units.
pub fn bytes(v: f64) -> String {
    const KIB: f64 = 1024.0;
    if v >= KIB * KIB * KIB {
        format!("{:.2} GiB", v / (KIB * KIB * KIB))
    } else if v >= KIB * KIB {
        format!("{:.1} MiB", v / (KIB * KIB))
    } else if v >= KIB {
        format!("{:.1} KiB", v / KIB)
    } else {
        format!("{v:.0} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_easily() {
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1_000), "1,000");
        assert_eq!(int(20_000_000), "20,000,000");
        assert_eq!(num(20.0), "20");
        assert_eq!(num(3.375), "3.38");
        assert_eq!(num(96.571), "96.6");
        assert_eq!(num(1234.5), "1,235");
        assert_eq!(num(0.7), "0.70");
        assert_eq!(bytes(553e6), "527.4 MiB");
        assert_eq!(bytes(1065e6), "1015.7 MiB");
        assert_eq!(bytes(2e9), "1.86 GiB");
        assert_eq!(bytes(512.0), "512 B");
    }
}
