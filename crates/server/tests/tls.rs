//! HTTPS with a certificate file: the API answers over TLS, plain HTTP on the same port does
//! not get through, and bad certificate files are one-line errors naming the file.

use osprey_server::{Options, TlsFiles, bootstrap, serve, start, tls_config};
use osprey_store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let files = TlsFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();

    let store = Store::open_sqlite(&dir.path().join("data")).await.unwrap();
    let token_file = bootstrap(&store, &dir.path().join("data"))
        .await
        .unwrap()
        .unwrap();
    let admin = std::fs::read_to_string(token_file)
        .unwrap()
        .trim()
        .to_string();
    let running = start(store, Options::default()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = tls_config(&files).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        running,
        async {
            let _ = rx.await;
        },
        Some(config),
    ));

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap())
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let r = client
        .get(format!("https://localhost:{port}/v1/tenants"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["tenants"][0]["name"], "admin");
    // Plain HTTP to the TLS port gets no API answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);

    tx.send(()).unwrap();
    task.await.unwrap().unwrap();

    // Bad files: the error names the file.
    let missing = TlsFiles {
        cert: dir.path().join("nope.crt"),
        key: files.key.clone(),
    };
    let e = tls_config(&missing).await.unwrap_err();
    assert!(
        matches!(e, osprey_server::error::ServerError::Io { .. }),
        "{e:?}"
    );
    let e = e.to_string();
    assert!(e.contains("nope.crt") && !e.contains('\n'), "{e}");
    std::fs::write(dir.path().join("junk.crt"), "not a certificate").unwrap();
    let junk = TlsFiles {
        cert: dir.path().join("junk.crt"),
        key: files.key.clone(),
    };
    let e = tls_config(&junk).await.unwrap_err();
    assert!(
        matches!(e, osprey_server::error::ServerError::Invalid(_)),
        "{e:?}"
    );
    assert!(e.to_string().contains("junk.crt"), "{e}");
}
