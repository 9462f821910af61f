//! `?1` to `$1`: the one difference between the SQL the projectors and
//! queries write and what PostgreSQL reads. Text inside quotes ('…', "…")
//! and comments is copied as it is.

/// Rewrites SQLite's numbered placeholders (`?1`, `?2`, …) as PostgreSQL's
/// (`$1`, `$2`, …). A bare `?` has no PostgreSQL spelling and is refused.
pub(crate) fn translate(sql: &str) -> Result<String, String> {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                // Quoted text or identifier; a doubled quote stays inside.
                out.push(c);
                for inner in chars.by_ref() {
                    out.push(inner);
                    if inner == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for inner in chars.by_ref() {
                    out.push(inner);
                    if inner == '\n' {
                        break;
                    }
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some(digit) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(digit);
                    chars.next();
                }
                if digits.is_empty() {
                    return Err(format!("an unnumbered ? in {sql:?}: number every parameter (?1)"));
                }
                out.push('$');
                out.push_str(&digits);
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn numbered_placeholders_become_dollars() {
        assert_eq!(
            translate("UPDATE t SET a = ?2, b = ?10 WHERE id = ?1").unwrap(),
            "UPDATE t SET a = $2, b = $10 WHERE id = $1"
        );
        assert_eq!(translate("SELECT 1").unwrap(), "SELECT 1");
    }

    #[test]
    fn quotes_and_comments_are_left_alone() {
        assert_eq!(
            translate("SELECT '?1', 'it''s ?2', \"?3\" -- ?4\n, ?5").unwrap(),
            "SELECT '?1', 'it''s ?2', \"?3\" -- ?4\n, $5"
        );
        assert_eq!(translate("SELECT a - ?1").unwrap(), "SELECT a - $1");
    }

    #[test]
    fn unnumbered_placeholders_are_refused() {
        assert!(translate("SELECT ?").is_err());
        assert!(translate("SELECT ?, ?1").is_err());
    }
}
