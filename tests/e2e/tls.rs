//! gRPC over TLS, with a certificate made for the test.

use palaver_proto::v1 as pb;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::harness::{Clients, Server, query};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_serves_over_tls_when_given_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let server = Server::start_in(
        dir,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let port = server.grpc.rsplit(':').next().unwrap().to_owned();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(certified.cert.pem()))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut clients = Clients::new(channel, &server.admin_token);
    let page = clients
        .inbox
        .list_inbox(pb::ListInboxRequest {
            options: query("0192f0e3-0000-7000-8000-00000000000a", 0),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(page.rows.is_empty());

    // Plain text is refused on a TLS port.
    let plain = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await;
    if let Ok(plain) = plain {
        let mut clients = Clients::new(plain, &server.admin_token);
        assert!(
            clients
                .inbox
                .list_inbox(pb::ListInboxRequest::default())
                .await
                .is_err()
        );
    }
}
