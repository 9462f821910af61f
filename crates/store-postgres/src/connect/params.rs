//! Taking the TLS parameters out of a connection string before
//! tokio-postgres parses it: it knows `sslmode` only as `disable`, `prefer`
//! or `require`, and refuses `sslrootcert` as an unknown option. Both
//! syntaxes are read the way tokio-postgres (and libpq) read them: a
//! `postgres://` URL, whose parameters are percent-encoded, or `key=value`
//! pairs separated by spaces, values optionally in single quotes with `\`
//! escaping.

/// A connection string split in two.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Split {
    /// The string without `sslmode` and `sslrootcert`, for tokio-postgres.
    pub rest: String,
    /// The last value of each, decoded.
    pub ssl_mode: Option<String>,
    pub root_cert: Option<String>,
}

/// Splits `url`. A string this cannot read is returned whole, for
/// tokio-postgres to report what is wrong with it.
pub(super) fn split(url: &str) -> Result<Split, String> {
    let split = match ["postgres://", "postgresql://"]
        .iter()
        .find(|prefix| url.starts_with(**prefix))
    {
        Some(prefix) => split_url(url, prefix.len())?,
        None => split_key_value(url),
    };
    Ok(split.unwrap_or_else(|| Split {
        rest: url.to_owned(),
        ssl_mode: None,
        root_cert: None,
    }))
}

/// `postgres://[user[:password]@]host[:port][/db][?key=value&...]`: the
/// parameters start at the first `?` after the credentials (which end at
/// the first `@`). `None` when there are no TLS parameters to take out.
fn split_url(url: &str, prefix_len: usize) -> Result<Option<Split>, String> {
    let after_prefix = &url[prefix_len..];
    let credentials = after_prefix.find('@').map_or(0, |at| at + 1);
    let Some(question) = after_prefix[credentials..].find('?') else {
        return Ok(None);
    };
    let query_start = prefix_len + credentials + question;
    let (head, query) = (&url[..query_start], &url[query_start + 1..]);
    let mut kept = Vec::new();
    let (mut ssl_mode, mut root_cert) = (None, None);
    for pair in query.split('&') {
        let Some((key, value)) = pair.split_once('=') else {
            // Malformed: tokio-postgres will say so.
            return Ok(None);
        };
        match decode(key)?.as_str() {
            "sslmode" => ssl_mode = Some(decode(value)?),
            "sslrootcert" => root_cert = Some(decode(value)?),
            _ => kept.push(pair),
        }
    }
    if ssl_mode.is_none() && root_cert.is_none() {
        return Ok(None);
    }
    let rest = if kept.is_empty() {
        head.to_owned()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    Ok(Some(Split {
        rest,
        ssl_mode,
        root_cert,
    }))
}

fn decode(text: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| format!("{text:?} is not UTF-8 once percent-decoded"))
}

/// `key=value key='quoted value'`. `None` when there are no TLS parameters
/// to take out, or the string cannot be read.
fn split_key_value(text: &str) -> Option<Split> {
    let pairs = key_value_pairs(text)?;
    let (mut ssl_mode, mut root_cert) = (None, None);
    let mut kept = Vec::new();
    for (key, value) in pairs {
        match key {
            "sslmode" => ssl_mode = Some(value),
            "sslrootcert" => root_cert = Some(value),
            _ => kept.push(format!(
                "{key}='{}'",
                value.replace('\\', "\\\\").replace('\'', "\\'")
            )),
        }
    }
    if ssl_mode.is_none() && root_cert.is_none() {
        return None;
    }
    Some(Split {
        rest: kept.join(" "),
        ssl_mode,
        root_cert,
    })
}

/// The pairs of a key/value string, values unescaped.
fn key_value_pairs(text: &str) -> Option<Vec<(&str, String)>> {
    let mut pairs = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let key_len = rest.find(|c: char| c.is_whitespace() || c == '=')?;
        let key = &rest[..key_len];
        if key.is_empty() {
            return None;
        }
        rest = rest[key_len..].trim_start().strip_prefix('=')?.trim_start();
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let quoted = rest.starts_with('\'');
        if quoted {
            chars.next();
        }
        let mut end = None;
        while let Some((at, c)) = chars.next() {
            match c {
                '\\' => value.push(chars.next()?.1),
                '\'' if quoted => {
                    end = Some(at + 1);
                    break;
                }
                c if c.is_whitespace() && !quoted => {
                    end = Some(at);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = match end {
            Some(end) => end,
            None if quoted => return None,
            None => rest.len(),
        };
        if !quoted && value.is_empty() {
            return None;
        }
        pairs.push((key, value));
        rest = rest[end..].trim_start();
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_ok(url: &str) -> Split {
        split(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn urls_without_tls_parameters_pass_unchanged() {
        for url in [
            "postgres://u:p@h:5432/db",
            "postgresql://h/db?application_name=x&connect_timeout=3",
            "postgres://u:pa?ss@h/db",
            "postgres://h/db?",
            "host=h dbname=db",
            "not a url at all=",
        ] {
            assert_eq!(
                split_ok(url),
                Split {
                    rest: url.to_owned(),
                    ssl_mode: None,
                    root_cert: None,
                },
                "{url}"
            );
        }
    }

    #[test]
    fn tls_parameters_are_taken_out_of_urls() {
        let parts = split_ok(
            "postgres://u:p%3Fw@h:5432/db?application_name=x&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fca%20dir%2Froot.pem&connect_timeout=3",
        );
        assert_eq!(
            parts,
            Split {
                rest: "postgres://u:p%3Fw@h:5432/db?application_name=x&connect_timeout=3".to_owned(),
                ssl_mode: Some("verify-full".to_owned()),
                root_cert: Some("/etc/ca dir/root.pem".to_owned()),
            }
        );
        // The last value wins, as in libpq; no parameters left, no `?`.
        let parts = split_ok("postgres://h/db?sslmode=require&sslmode=disable");
        assert_eq!(parts.rest, "postgres://h/db");
        assert_eq!(parts.ssl_mode.as_deref(), Some("disable"));
        // A `?` in the password is not where the parameters start.
        let parts = split_ok("postgresql://u:a?b@h/db?sslmode=require");
        assert_eq!(parts.rest, "postgresql://u:a?b@h/db");
        assert_eq!(parts.ssl_mode.as_deref(), Some("require"));
        assert!(split("postgres://h/db?sslrootcert=%FF").is_err());
    }

    #[test]
    fn tls_parameters_are_taken_out_of_key_value_strings() {
        let parts = split_ok(
            r"host=h  password='it\'s a \\secret' sslmode = verify-ca sslrootcert='/ca dir/root.pem' dbname=db",
        );
        assert_eq!(
            parts,
            Split {
                rest: r"host='h' password='it\'s a \\secret' dbname='db'".to_owned(),
                ssl_mode: Some("verify-ca".to_owned()),
                root_cert: Some("/ca dir/root.pem".to_owned()),
            }
        );
        let reparsed: tokio_postgres::Config = parts.rest.parse().unwrap();
        assert_eq!(reparsed.get_password(), Some(&b"it's a \\secret"[..]));
        // Unreadable: passed on whole for tokio-postgres to refuse.
        for bad in ["host='h sslmode=require", "host=h sslmode", "=x sslmode=require"] {
            assert_eq!(split_ok(bad).rest, bad);
        }
    }
}
