//! Only Meta's payloads and Meta's subscription checks are accepted.

use palaver_whatsapp::handshake::{self, SubscriptionQuery, verify_subscription};
use palaver_whatsapp::signature::{self, Error};

const SECRET: &[u8] = b"app-secret-for-tests";

fn body() -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/text.json")).expect("fixture")
}

#[test]
fn a_signed_body_is_accepted() {
    let body = body();
    let header = signature::sign(SECRET, &body);
    assert!(header.starts_with("sha256="));
    assert_eq!(header.len(), "sha256=".len() + 64);
    assert_eq!(signature::verify(SECRET, &body, Some(&header)), Ok(()));
    // Upper-case hex and surrounding whitespace are still the same digest.
    let upper = format!(" sha256={} ", header["sha256=".len()..].to_uppercase());
    assert_eq!(signature::verify(SECRET, &body, Some(&upper)), Ok(()));
}

#[test]
fn a_known_vector_matches() {
    // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"),
    // the example of RFC 2104's Wikipedia page.
    assert_eq!(
        signature::sign(b"key", b"The quick brown fox jumps over the lazy dog"),
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    );
}

#[test]
fn a_missing_signature_is_refused() {
    assert_eq!(signature::verify(SECRET, &body(), None), Err(Error::Missing));
}

#[test]
fn a_malformed_signature_is_refused() {
    let body = body();
    let digest = &signature::sign(SECRET, &body)["sha256=".len()..];
    for header in [
        "",
        "sha256=",
        digest,                                // no prefix
        &format!("sha1={digest}"),             // wrong algorithm
        &format!("sha256={}", &digest[1..]),   // too short
        &format!("sha256={}zz", &digest[2..]), // not hex
    ] {
        assert_eq!(
            signature::verify(SECRET, &body, Some(header)),
            Err(Error::Malformed),
            "{header}"
        );
    }
}

#[test]
fn a_wrong_secret_or_a_tampered_body_is_refused() {
    let body = body();
    let header = signature::sign(SECRET, &body);
    assert_eq!(
        signature::verify(b"another-secret", &body, Some(&header)),
        Err(Error::Mismatch)
    );
    let mut tampered = body.clone();
    let at = tampered
        .iter()
        .position(|b| *b == b'H')
        .expect("an H in the body");
    tampered[at] = b'J';
    assert_eq!(
        signature::verify(SECRET, &tampered, Some(&header)),
        Err(Error::Mismatch)
    );
    let forged = format!("sha256={}", "0".repeat(64));
    assert_eq!(
        signature::verify(SECRET, &body, Some(&forged)),
        Err(Error::Mismatch)
    );
}

fn query(mode: Option<&str>, token: Option<&str>, challenge: Option<&str>) -> SubscriptionQuery {
    SubscriptionQuery {
        mode: mode.map(str::to_owned),
        verify_token: token.map(str::to_owned),
        challenge: challenge.map(str::to_owned),
    }
}

#[test]
fn the_handshake_echoes_the_challenge() {
    let q = query(Some("subscribe"), Some("s3cret-verify"), Some("1158201444"));
    assert_eq!(
        verify_subscription(&q, "s3cret-verify"),
        Ok("1158201444".to_owned())
    );
}

#[test]
fn the_handshake_refuses_wrong_requests() {
    use handshake::Error;
    let refuse = |q: SubscriptionQuery| verify_subscription(&q, "s3cret-verify").expect_err("refused");
    assert_eq!(
        refuse(query(Some("subscribe"), Some("guess"), Some("1"))),
        Error::TokenMismatch
    );
    assert_eq!(
        refuse(query(Some("subscribe"), Some("s3cret-verif"), Some("1"))),
        Error::TokenMismatch
    );
    assert_eq!(
        refuse(query(Some("subscribe"), None, Some("1"))),
        Error::TokenMismatch
    );
    assert_eq!(
        refuse(query(Some("unsubscribe"), Some("s3cret-verify"), Some("1"))),
        Error::WrongMode(Some("unsubscribe".to_owned()))
    );
    assert_eq!(
        refuse(query(None, Some("s3cret-verify"), Some("1"))),
        Error::WrongMode(None)
    );
    assert_eq!(
        refuse(query(Some("subscribe"), Some("s3cret-verify"), Some(""))),
        Error::MissingChallenge
    );
    // An unset configured token never matches, not even an empty one.
    assert_eq!(
        verify_subscription(&query(Some("subscribe"), Some(""), Some("1")), ""),
        Err(Error::TokenMismatch)
    );
}

#[test]
fn the_handshake_query_reads_metas_parameter_names() {
    let q: SubscriptionQuery = serde_json::from_value(serde_json::json!({
        "hub.mode": "subscribe",
        "hub.verify_token": "t",
        "hub.challenge": "42",
    }))
    .expect("deserializes");
    assert_eq!(q, query(Some("subscribe"), Some("t"), Some("42")));
}
