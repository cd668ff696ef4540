//! What ebbctl says when a call fails: the server's refusal as it gave it, and a failure
//! to reach the server with the endpoint, the context it came from, and the likely fix.
//!
//! tonic reports transport failures as a `Status` whose message is the innermost error
//! ("tcp connect error", "transport error", "received corrupt message of type
//! InvalidContentType"): true, but a newcomer cannot act on it.

use super::config::Context;
use tonic::{Code, Status};

/// A spec refused before it was sent (a TrainingJob file that does not parse, a dataset
/// path that cannot be resolved): exit 3, like a spec the server refuses.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SpecRefused(pub String);

/// A combination of flags clap cannot refuse by itself: exit 2, like clap's own.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Why the endpoint string itself cannot be used, before any connection is tried.
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let Some((scheme, rest)) = endpoint.split_once("://") else {
        return Err(format!(
            "endpoint {endpoint:?} has no scheme: write http://{endpoint} (plaintext) or \
             https://{endpoint} (TLS)"
        ));
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "endpoint {endpoint:?}: scheme {scheme:?} is neither http nor https"
        ));
    }
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("endpoint {endpoint:?} names no host"));
    }
    Ok(())
}

/// Whether the call never reached the server's handler: the connection, TLS or HTTP/2
/// failed (the server answers every refusal of its own with a message of its own).
pub fn is_transport(status: &Status) -> bool {
    let lower = status.message().to_ascii_lowercase();
    status.code() == Code::Unavailable
        || [
            "transport error",
            "connect error",
            "connection",
            "corrupt message",
            "invalidcontenttype",
            "tls",
            "certificate",
            "h2 protocol",
            "broken pipe",
        ]
        .iter()
        .any(|m| lower.contains(m))
}

/// The one line ebbctl prints for a failed call.
pub fn describe_failure(status: &Status, context: &Context) -> String {
    let at = format!(
        "endpoint {} from context {}",
        context.endpoint, context.name
    );
    let message = status.message();
    let tls = context.endpoint.starts_with("https://");
    let lower = message.to_ascii_lowercase();
    if !is_transport(status) {
        return format!("{:?}: {message}", status.code());
    }
    let hint = if tls && (lower.contains("corrupt message") || lower.contains("invalidcontenttype"))
    {
        "the server speaks plaintext, not TLS: use http:// in the endpoint".to_string()
    } else if tls && lower.contains("certificate") {
        "the server's certificate is not trusted: set the context's `ca` to the PEM of the \
         CA that signed it"
            .to_string()
    } else if !tls && (lower.contains("h2 protocol") || lower.contains("frame")) {
        "the server may expect TLS: use https:// in the endpoint".to_string()
    } else if status.code() == Code::Unavailable || lower.contains("connect error") {
        "nothing answers there: is `ebb up` (or `ebb controller --control-addr`) running? \
         `--context` or the config file picks another endpoint"
            .to_string()
    } else {
        "the connection failed".to_string()
    };
    format!("cannot reach the control API at {at} ({message}): {hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(endpoint: &str) -> Context {
        Context {
            name: "local".into(),
            endpoint: endpoint.into(),
            token: "t".into(),
            ca: None,
        }
    }

    #[test]
    fn endpoints_without_a_usable_scheme_are_refused_by_name() {
        assert!(check_endpoint("http://127.0.0.1:7160").is_ok());
        assert!(check_endpoint("https://ebb.example:443").is_ok());
        let e = check_endpoint("127.0.0.1:7160").unwrap_err();
        assert!(
            e.contains("no scheme") && e.contains("http://127.0.0.1:7160"),
            "{e}"
        );
        assert!(
            check_endpoint("grpc://x:1")
                .unwrap_err()
                .contains("\"grpc\"")
        );
        assert!(check_endpoint("http://").unwrap_err().contains("no host"));
    }

    #[test]
    fn a_refused_connection_names_endpoint_context_and_fix() {
        let s = Status::unavailable("tcp connect error");
        let line = describe_failure(&s, &context("http://127.0.0.1:7160"));
        assert!(
            line.contains("endpoint http://127.0.0.1:7160 from context local"),
            "{line}"
        );
        assert!(line.contains("is `ebb up`"), "{line}");
    }

    #[test]
    fn tls_to_a_plaintext_server_says_so() {
        let s = Status::unknown("received corrupt message of type InvalidContentType");
        let line = describe_failure(&s, &context("https://127.0.0.1:7160"));
        assert!(line.contains("use http://"), "{line}");
    }

    #[test]
    fn refusals_by_the_server_pass_through() {
        let s = Status::not_found("job default/x not found");
        assert_eq!(
            describe_failure(&s, &context("http://h:1")),
            "NotFound: job default/x not found"
        );
    }
}
